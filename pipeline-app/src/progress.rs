//! A progress bar on stderr for long transcriptions of files.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use steno_core::{Progress, SAMPLE_RATE};

/// Shows how much of the input has been read, when stderr is a terminal and the length is
/// known. Dropping it clears the bar.
pub(crate) struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts a display for an input of `total_samples`, if it makes sense here.
    pub(crate) fn start(progress: Progress, total_samples: Option<u64>, label: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = total_samples
            .filter(|_| std::io::stderr().is_terminal())
            .map(|total| {
                let bar = ProgressBar::new(total / u64::from(SAMPLE_RATE));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {pos}/{len} s of audio ({elapsed}, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(label.to_owned());
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        bar.set_position(progress.samples_read() / u64::from(SAMPLE_RATE));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    bar.finish_and_clear();
                })
            });
        ProgressDisplay { stop, thread }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
