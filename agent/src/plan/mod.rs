//! Plan = pure function of profile × inventory; apply engine, journal, undo. Owners: issues 2, 5.
