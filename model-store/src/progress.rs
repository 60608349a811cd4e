//! Progress bars on stderr for conversion and quantization (hidden when stderr is not a
//! terminal: indicatif draws nothing then).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` steps of `what`.
pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    styled(len, what, "{msg} [{bar:30}] {pos}/{len} tensors")
}

/// A bar over `len` bytes of `what`.
pub(crate) fn bytes_bar(len: u64, what: &str) -> ProgressBar {
    styled(len, what, "{msg} [{bar:30}] {bytes}/{total_bytes}")
}

fn styled(len: u64, what: &str, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}
