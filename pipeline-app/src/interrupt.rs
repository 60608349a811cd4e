//! Ctrl-C and SIGTERM during `transcribe`: the run stops, nothing partial is left behind, and
//! steno exits with status 130.
//!
//! The first signal cancels every run (their cancel tokens are children of one root); each run
//! then returns `Cancelled`, its output's temporary file is dropped, and `main` exits 130. A
//! second signal exits at once, after removing the temporary files still pending.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use steno_core::CancelToken;

/// Set by the first signal.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit status after an interruption: 128 + SIGINT, as shells report a Ctrl-C.
pub(crate) const EXIT_STATUS: u8 = 130;

/// Installs the handler; cancelling `root` stops every run whose token is its child.
pub(crate) fn cancel_on_signal(root: CancelToken) -> anyhow::Result<()> {
    ctrlc::set_handler(move || {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            crate::output::remove_pending_files();
            std::process::exit(i32::from(EXIT_STATUS));
        }
        eprintln!("steno: interrupted; stopping, nothing will be written (again to quit at once)");
        root.cancel();
    })
    .context("cannot install the Ctrl-C handler")
}

/// Whether a signal interrupted the command.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
