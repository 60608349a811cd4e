//! Upstream whisper.cpp's beam search, for the anchor that measures whisper-cli itself.
//!
//! The vendored whisper.cpp takes each beam's likeliest tokens at temperature 0, as beam
//! search is defined; upstream draws them from the decoders' random generators, so its text is
//! random and depends on what the state decoded before (`vendor/README.md`). The anchor must be
//! upstream's whisper-cli, so it switches the draws back on while it decodes.

/// Upstream's random beam candidates, process-wide, until dropped.
pub(super) struct UpstreamBeamSearch(());

impl UpstreamBeamSearch {
    /// Switches beam search to upstream's draws.
    #[allow(
        unsafe_code,
        reason = "the vendored whisper.cpp's one added function has no safe wrapper"
    )]
    pub(super) fn on() -> Self {
        // SAFETY: sets an atomic flag in whisper.cpp; no pointer crosses.
        unsafe { whisper_rs::whisper_rs_sys::whisper_steno_sample_beams(true) };
        UpstreamBeamSearch(())
    }
}

impl Drop for UpstreamBeamSearch {
    #[allow(
        unsafe_code,
        reason = "the vendored whisper.cpp's one added function has no safe wrapper"
    )]
    fn drop(&mut self) {
        // SAFETY: as in `on`.
        unsafe { whisper_rs::whisper_rs_sys::whisper_steno_sample_beams(false) };
    }
}
