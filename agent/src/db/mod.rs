//! Database engines: find datadir/unit, relocate (hot pass + delta pass), verify, switch config.
//! Owner: issue 5.
