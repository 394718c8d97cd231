//! Interrupt handling for apply (the only unsafe code of this room): the first SIGINT/SIGTERM
//! sets a flag that the engine checks between steps (the run stops cleanly at a step boundary,
//! exit 4, resumable); `SA_RESETHAND` makes a second signal act as the default (stop now).

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Install the handlers (once per process; harmless to call again).
pub fn install_interrupt_handlers() {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe, and it
        // does not touch any state the interrupted code could hold a lock on.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

/// True once SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// For tests: pretend a signal arrived (or clear it).
pub fn set_interrupted(v: bool) {
    INTERRUPTED.store(v, Ordering::SeqCst);
}
