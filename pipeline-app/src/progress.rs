//! A progress bar on stderr for long transcriptions of files.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use steno_core::{Progress, Result, SAMPLE_RATE, Segment, Sink};

/// Shows how much of the input has been transcribed (seconds of audio whose text is written),
/// when stderr is a terminal and the length is known; indicatif's ETA then says when the text
/// will be done. Dropping it clears the bar.
pub(crate) struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    bar: Option<ProgressBar>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts a display for an input of `total_samples`, if it makes sense here.
    pub(crate) fn start(progress: Progress, total_samples: Option<u64>, label: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let bar = total_samples
            .filter(|_| std::io::stderr().is_terminal())
            .map(|total| ProgressBar::new(total / u64::from(SAMPLE_RATE)));
        let thread = bar.clone().map(|bar| {
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
                    bar.set_position(progress.samples_transcribed() / u64::from(SAMPLE_RATE));
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            })
        });
        ProgressDisplay { stop, bar, thread }
    }

    /// `sink` for stdout: while the bar is shown on the same terminal, each write hides the
    /// bar, prints, and redraws it below, so no stale copy of the bar is left between lines.
    pub(crate) fn around_stdout(&self, sink: Box<dyn Sink>) -> Box<dyn Sink> {
        match &self.bar {
            Some(bar) if std::io::stdout().is_terminal() => Box::new(BelowTheBar {
                inner: sink,
                bar: bar.clone(),
            }),
            _ => sink,
        }
    }
}

/// A sink whose writes hide the progress bar while they print.
struct BelowTheBar {
    inner: Box<dyn Sink>,
    bar: ProgressBar,
}

impl Sink for BelowTheBar {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        let Self { inner, bar } = self;
        bar.suspend(|| inner.write(segment))
    }

    fn finish(&mut self) -> Result<()> {
        let Self { inner, bar } = self;
        bar.suspend(|| inner.finish())
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
