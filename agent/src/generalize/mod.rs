//! Image generalization: idempotent deprovision operations and a leftover scanner. Owner: issue 7.
