//! Live capture: audio from a device callback, through the ring, to 16 kHz mono blocks.
//!
//! A capture device (a microphone through `cpal`) calls back with interleaved samples at its own
//! rate, channel count and sample format. The callback only converts them to `f32` and pushes
//! whole frames into the lock-free [`ring`](crate::ring()) with [`push_captured`] (feature
//! `capture`): no allocation, no lock, no logging, no blocking; what does not fit is dropped and
//! counted. On the pipeline side, [`CaptureSource`] drains the ring, downmixes and resamples to
//! 16 kHz with a [`Conditioner`], and ends the stream when its [`CaptureControl`] says stop
//! (Ctrl-C), when a duration limit is reached, or with an error when the device fails or is
//! not a live device at all (it delivers audio much faster than real time).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{Conditioner, Error, Result, RingReader, SAMPLE_RATE, Source};

/// How long [`CaptureSource::next_block`] sleeps when the ring is empty: a few device buffers.
const POLL: Duration = Duration::from_millis(5);

/// How long [`CaptureSource::next_block`] waits for audio before it hands out an empty block.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// The most channels a capture device may have (more is refused as unsupported).
pub const MAX_CAPTURE_CHANNELS: usize = 64;

/// A live device delivers audio at the pace it is spoken, give or take its buffering; one that
/// has delivered more than `UNPACED_RATIO` times the wall time since the source was created,
/// plus `UNPACED_SLACK_SECS`, is a generator (ALSA's `null`, a file plugin). Its overflow of
/// the ring would be counted as dropped audio, a number that means nothing, so the source
/// ends with an error instead. The margins are far above any device's clock drift or burst.
const UNPACED_RATIO: f64 = 2.0;
const UNPACED_SLACK_SECS: f64 = 2.0;

/// Samples converted per step on the callback's stack: 4 KiB, a multiple of every channel count
/// up to 64 rounded down to whole frames.
#[cfg(feature = "capture")]
const CONVERT_STEP: usize = 1024;

/// Converts one callback buffer of interleaved samples (any `cpal` sample type) to `f32` and
/// pushes the whole frames that fit into the ring; the rest are dropped and counted by the
/// writer. `channels` is at most [`MAX_CAPTURE_CHANNELS`].
///
/// This is the whole body of a capture callback: it never allocates (it converts through a
/// buffer on the stack), locks, logs or blocks. Returns the samples pushed.
#[cfg(feature = "capture")]
pub fn push_captured<T>(data: &[T], channels: usize, writer: &mut crate::RingWriter) -> usize
where
    T: cpal::Sample,
    f32: cpal::FromSample<T>,
{
    let channels = channels.clamp(1, MAX_CAPTURE_CHANNELS);
    let mut buffer = [0.0_f32; CONVERT_STEP];
    let piece = CONVERT_STEP / channels * channels;
    let mut pushed = 0;
    for frames in data.chunks(piece) {
        let out = &mut buffer[..frames.len()];
        for (to, &from) in out.iter_mut().zip(frames) {
            *to = from.to_sample::<f32>();
        }
        pushed += writer.push_frames_or_drop(out, channels);
    }
    pushed
}

/// Stops a [`CaptureSource`] from another thread (a Ctrl-C handler), or ends it with the
/// device's failure (a stream error callback). Cloning shares the control.
#[derive(Debug, Clone, Default)]
pub struct CaptureControl {
    inner: Arc<ControlState>,
}

#[derive(Debug, Default)]
struct ControlState {
    stop: AtomicBool,
    fault: Mutex<Option<String>>,
}

impl CaptureControl {
    /// A control that has not been stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the capture cleanly: the audio captured so far is still delivered, then the
    /// stream ends, so the utterance in progress is transcribed.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }

    /// Ends the capture with an error (the device was lost): the source returns
    /// [`Error::Input`] with `problem` after the audio captured before it. The first fault
    /// is kept. Not for the data callback: this locks.
    pub fn fail(&self, problem: impl Into<String>) {
        let mut fault = self
            .inner
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        fault.get_or_insert_with(|| problem.into());
    }

    fn fault(&self) -> Option<String> {
        self.inner
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A [`Source`] over audio captured into a ring at the device's rate and channel count:
/// converted to 16 kHz mono here, on the pipeline side.
///
/// ```
/// use steno_core::{CaptureSource, Source, ring};
/// let (mut writer, reader) = ring(48_000);
/// let mut source = CaptureSource::new("mic", reader, 48_000, 2)?;
/// writer.push_frames_or_drop(&[0.25; 9_600], 2); // 0.1 s of stereo at 48 kHz
/// source.control().stop();
/// let mut samples = 0;
/// while let Some(block) = source.next_block()? {
///     samples += block.len();
/// }
/// assert!(samples.abs_diff(1_600) <= 1); // 0.1 s at 16 kHz
/// # Ok::<(), steno_core::Error>(())
/// ```
pub struct CaptureSource {
    name: String,
    reader: RingReader,
    conditioner: Conditioner,
    rate: u32,
    channels: usize,
    control: CaptureControl,
    /// Most 16 kHz samples to deliver (`--duration`).
    limit: Option<u64>,
    delivered: u64,
    raw: Vec<f32>,
    ended: bool,
    /// The device's failure, returned once the audio captured before it is delivered.
    failure: Option<String>,
    /// When the source was made (just before the device opens): the start of the wall time
    /// captured audio is compared with.
    created: Instant,
    /// Device frames taken out of the ring so far.
    popped_frames: u64,
}

impl std::fmt::Debug for CaptureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureSource")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl CaptureSource {
    /// A source reading interleaved `channels`-channel audio at `rate` Hz from `reader`,
    /// named `name` (the device) in messages.
    ///
    /// # Errors
    /// [`Error::Input`] when the rate or channel count is zero, the channel count is above
    /// [`MAX_CAPTURE_CHANNELS`], or the rate cannot be resampled.
    pub fn new(
        name: impl Into<String>,
        reader: RingReader,
        rate: u32,
        channels: usize,
    ) -> Result<Self> {
        let name = name.into();
        if channels > MAX_CAPTURE_CHANNELS {
            return Err(Error::input_named(
                name,
                format!(
                    "{channels} channels: at most {MAX_CAPTURE_CHANNELS} are supported; pick \
                     another device or configuration"
                ),
                None,
            ));
        }
        let conditioner = Conditioner::new(rate, channels)
            .map_err(|problem| Error::input_named(name.clone(), problem, None))?;
        Ok(CaptureSource {
            name,
            reader,
            conditioner,
            rate,
            channels,
            control: CaptureControl::new(),
            limit: None,
            delivered: 0,
            raw: Vec::new(),
            ended: false,
            failure: None,
            created: Instant::now(),
            popped_frames: 0,
        })
    }

    /// Ends the stream after `duration` of captured audio.
    #[must_use]
    pub fn with_duration_limit(mut self, duration: Duration) -> Self {
        self.limit = Some((duration.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as u64);
        self
    }

    /// The control that stops this source or reports a device failure to it.
    pub fn control(&self) -> CaptureControl {
        self.control.clone()
    }

    /// The problem, when the device has delivered (into the ring or past it) much more audio
    /// than the wall time since the source was made.
    fn unpaced(&self) -> Option<String> {
        let frames = self.popped_frames + self.reader.dropped() / self.channels as u64;
        let audio = frames as f64 / f64::from(self.rate);
        let wall = self.created.elapsed().as_secs_f64();
        (audio > UNPACED_RATIO * wall + UNPACED_SLACK_SECS).then(|| {
            format!(
                "not a live capture device: it delivered {audio:.1} s of audio in {wall:.2} s, \
                 far faster than real time (a generator such as ALSA's `null` device); pick a \
                 microphone or another capture device"
            )
        })
    }
}

impl Source for CaptureSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_live(&self) -> bool {
        true
    }

    /// Waits (sleeping a few milliseconds at a time) for captured audio and returns it as
    /// 16 kHz mono; `None` once stopped, past the duration limit, or when the capture side
    /// has gone, after delivering everything captured before. When nothing arrives for
    /// 20 ms, an empty block: a run reading several devices in turn goes on to the
    /// next, so a device that stalls (a suspended monitor, a stuck Bluetooth headset) never
    /// holds the others back.
    ///
    /// # Errors
    /// [`Error::Input`] with the device's failure, after the audio captured before it; at
    /// once when the device delivers audio much faster than real time (it is no live device).
    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        let waiting_since = Instant::now();
        loop {
            if self.ended {
                return match self.failure.take() {
                    Some(problem) => Err(Error::input_named(self.name.clone(), problem, None)),
                    None => Ok(None),
                };
            }
            // Read the end conditions before draining, so nothing captured before them is lost.
            let fault = self.control.fault();
            let ending =
                fault.is_some() || self.control.is_stopped() || self.reader.is_writer_gone();
            self.raw.clear();
            self.reader.pop_into(&mut self.raw);
            self.popped_frames += (self.raw.len() / self.channels) as u64;
            if let Some(problem) = self.unpaced() {
                self.ended = true;
                return Err(Error::input_named(self.name.clone(), problem, None));
            }
            let mut out = Vec::new();
            self.conditioner.push(&self.raw, &mut out);
            if ending {
                self.conditioner.finish(&mut out);
                self.ended = true;
            }
            if let Some(limit) = self.limit {
                let room =
                    usize::try_from(limit.saturating_sub(self.delivered)).unwrap_or(usize::MAX);
                if out.len() >= room {
                    out.truncate(room);
                    self.ended = true;
                }
            }
            self.delivered += out.len() as u64;
            if fault.is_some() {
                self.failure = fault;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
            if self.ended {
                continue;
            }
            if waiting_since.elapsed() >= MAX_WAIT {
                return Ok(Some(Vec::new()));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Captured samples lost because the ring was full, counted in 16 kHz mono samples.
    fn dropped_samples(&self) -> u64 {
        let frames = self.reader.dropped() / self.channels as u64;
        frames * u64::from(SAMPLE_RATE) / u64::from(self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring;

    fn drain(source: &mut CaptureSource) -> Result<usize> {
        let mut total = 0;
        while let Some(block) = source.next_block()? {
            total += block.len();
        }
        Ok(total)
    }

    #[test]
    fn the_duration_limit_ends_the_stream_on_the_sample() {
        let (mut writer, reader) = ring(100_000);
        let mut source = CaptureSource::new("mic", reader, 16_000, 1)
            .unwrap()
            .with_duration_limit(Duration::from_millis(500));
        writer.push_frames_or_drop(&[0.1; 20_000], 1);
        assert_eq!(drain(&mut source).unwrap(), 8_000);
    }

    #[test]
    fn a_device_failure_comes_after_the_audio_captured_before_it() {
        let (mut writer, reader) = ring(100_000);
        let mut source = CaptureSource::new("mic", reader, 16_000, 1).unwrap();
        writer.push_frames_or_drop(&[0.1; 3_000], 1);
        source.control().fail("device lost");
        assert_eq!(source.next_block().unwrap().map(|b| b.len()), Some(3_000));
        let err = source.next_block().unwrap_err();
        assert_eq!(err.to_string(), "mic: device lost");
    }

    #[test]
    fn the_stream_ends_when_the_capture_side_goes() {
        let (mut writer, reader) = ring(100_000);
        let mut source = CaptureSource::new("mic", reader, 16_000, 1).unwrap();
        writer.push_frames_or_drop(&[0.1; 1_000], 1);
        drop(writer);
        assert_eq!(drain(&mut source).unwrap(), 1_000);
    }

    #[test]
    fn a_device_far_faster_than_real_time_is_an_error_not_drops() {
        // 30 s of 48 kHz stereo at once: 10 s fit in the ring, the rest overflows.
        let (mut writer, reader) = ring(48_000 * 2 * 10);
        let mut source = CaptureSource::new("null", reader, 48_000, 2).unwrap();
        for _ in 0..30 {
            writer.push_frames_or_drop(&[0.0; 48_000 * 2], 2);
        }
        let err = source.next_block().unwrap_err().to_string();
        assert!(
            err.starts_with("null: not a live capture device: it delivered 30.0 s of audio in"),
            "{err}"
        );
        assert_eq!(source.next_block().unwrap(), None, "the stream has ended");
    }

    #[test]
    fn drops_are_reported_in_16k_mono_samples() {
        let (mut writer, reader) = ring(1_920);
        let source = CaptureSource::new("mic", reader, 48_000, 2).unwrap();
        // 0.02 s of 48 kHz stereo fits; the next 0.02 s does not.
        writer.push_frames_or_drop(&[0.0; 1_920], 2);
        writer.push_frames_or_drop(&[0.0; 1_920], 2);
        assert_eq!(source.dropped_samples(), 320);
    }
}
