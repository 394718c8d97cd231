//! Tuning knobs as data: target, value, reason, persistence. Owner: issue 6.
