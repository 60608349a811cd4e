//! Audio from a network client: frames checked and decoded to samples, and the pipeline
//! source they feed.
//!
//! The connection's task sends each frame's samples through a bounded channel; the pipeline's
//! source stage (on tokio's blocking pool) receives them. When the pipeline falls behind the
//! channel fills and the connection stops reading, so a fast client is slowed down by TCP
//! instead of growing the server's memory, and no audio is ever dropped unseen.

use steno_core::{Conditioner, Source};
use tokio::sync::mpsc;

/// Frames queued between a connection and its pipeline.
const FEED_FRAMES: usize = 64;

/// Highest sample rate a client may declare; 8 kHz is the lowest (telephone audio).
pub(crate) const MAX_RATE: u32 = 192_000;
pub(crate) const MIN_RATE: u32 = 8_000;
/// Most channels a client may declare (they are downmixed).
pub(crate) const MAX_CHANNELS: usize = 8;

/// How a client's binary frames encode samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Little-endian IEEE float32 in [-1, 1] (WhisperLive, Web Audio).
    F32,
    /// Signed 16-bit little-endian integers (arecord, most telephony).
    S16le,
}

/// The audio a client declared: encoding, rate and channels (interleaved).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AudioFormat {
    pub(crate) encoding: Encoding,
    pub(crate) rate: u32,
    pub(crate) channels: usize,
}

impl AudioFormat {
    /// WhisperLive's audio: float32, 16 kHz, mono.
    pub(crate) const WHISPERLIVE: AudioFormat = AudioFormat {
        encoding: Encoding::F32,
        rate: steno_core::SAMPLE_RATE,
        channels: 1,
    };

    /// Checks a declared rate and channel count.
    pub(crate) fn new(encoding: Encoding, rate: u32, channels: usize) -> Result<Self, String> {
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(format!(
                "rate {rate} Hz: must be between {MIN_RATE} and {MAX_RATE}"
            ));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!(
                "channels {channels}: must be between 1 and {MAX_CHANNELS}"
            ));
        }
        Ok(AudioFormat {
            encoding,
            rate,
            channels,
        })
    }

    /// The interleaved samples of one binary frame, or why the frame is not audio of this
    /// format: a byte count that is not a whole number of sample frames, or a float that is
    /// not a number. Finite floats beyond [-1, 1] are clipped, as a sound card would.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Vec<f32>, String> {
        let width = match self.encoding {
            Encoding::F32 => 4,
            Encoding::S16le => 2,
        };
        let frame = width * self.channels;
        if !bytes.len().is_multiple_of(frame) {
            return Err(format!(
                "a binary message of {} bytes is not whole frames of {} ({} channel(s) of {} \
                 bytes)",
                bytes.len(),
                frame,
                self.channels,
                width
            ));
        }
        match self.encoding {
            Encoding::S16le => Ok(bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
                .collect()),
            Encoding::F32 => bytes
                .chunks_exact(4)
                .map(|b| {
                    let sample = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if sample.is_finite() {
                        Ok(sample.clamp(-1.0, 1.0))
                    } else {
                        Err(format!(
                            "a float32 sample is {sample}: audio must be finite numbers"
                        ))
                    }
                })
                .collect(),
        }
    }
}

/// The sending half: what a connection pushes samples into. Dropping it ends the stream.
pub(crate) type Feed = mpsc::Sender<Vec<f32>>;

/// A source fed by a connection, and the feed that fills it.
pub(crate) fn feed(name: String, format: AudioFormat) -> Result<(Feed, FeedSource), String> {
    let conditioner = (format.rate != steno_core::SAMPLE_RATE || format.channels != 1)
        .then(|| Conditioner::new(format.rate, format.channels))
        .transpose()?;
    let (sender, receiver) = mpsc::channel(FEED_FRAMES);
    Ok((
        sender,
        FeedSource {
            name,
            receiver,
            conditioner,
            ended: false,
        },
    ))
}

/// The pipeline's source for a network stream: live audio, as a microphone's.
pub(crate) struct FeedSource {
    name: String,
    receiver: mpsc::Receiver<Vec<f32>>,
    /// Resamples and downmixes to 16 kHz mono when the client's audio is not that already.
    conditioner: Option<Conditioner>,
    ended: bool,
}

impl Source for FeedSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_block(&mut self) -> steno_core::Result<Option<Vec<f32>>> {
        while !self.ended {
            // The source stage runs on tokio's blocking pool, where blocking is expected.
            let Some(samples) = self.receiver.blocking_recv() else {
                self.ended = true;
                break;
            };
            let Some(conditioner) = self.conditioner.as_mut() else {
                return Ok(Some(samples));
            };
            let mut block = Vec::new();
            conditioner.push(&samples, &mut block);
            if !block.is_empty() {
                return Ok(Some(block));
            }
        }
        let mut rest = Vec::new();
        if let Some(mut conditioner) = self.conditioner.take() {
            conditioner.finish(&mut rest);
        }
        Ok((!rest.is_empty()).then_some(rest))
    }

    fn is_live(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_checked_before_they_are_samples() {
        let f32_mono = AudioFormat::WHISPERLIVE;
        let half = 0.5f32.to_le_bytes();
        assert_eq!(f32_mono.decode(&half).unwrap(), [0.5]);
        assert!(f32_mono.decode(&half[..3]).unwrap_err().contains("3 bytes"));
        let nan = f32::NAN.to_le_bytes();
        assert!(f32_mono.decode(&nan).unwrap_err().contains("NaN"));
        let inf = f32::INFINITY.to_le_bytes();
        assert!(f32_mono.decode(&inf).unwrap_err().contains("inf"));
        assert_eq!(f32_mono.decode(&2.0f32.to_le_bytes()).unwrap(), [1.0]);
        let s16_stereo = AudioFormat::new(Encoding::S16le, 16_000, 2).unwrap();
        assert!(s16_stereo.decode(&[0, 0]).is_err());
        assert_eq!(s16_stereo.decode(&[0, 0x40, 0, 0xc0]).unwrap(), [0.5, -0.5]);
    }

    #[test]
    fn absurd_formats_are_refused() {
        assert!(AudioFormat::new(Encoding::F32, 0, 1).is_err());
        assert!(AudioFormat::new(Encoding::F32, 10_000_000, 1).is_err());
        assert!(AudioFormat::new(Encoding::F32, 16_000, 0).is_err());
        assert!(AudioFormat::new(Encoding::F32, 48_000, 2).is_ok());
    }

    #[test]
    fn the_source_resamples_what_is_not_16_khz_mono_and_ends_with_the_feed() {
        let (feed, mut source) = feed(
            "test".into(),
            AudioFormat::new(Encoding::F32, 48_000, 2).unwrap(),
        )
        .unwrap();
        std::thread::spawn(move || {
            for _ in 0..10 {
                feed.blocking_send(vec![0.25; 9_600]).unwrap();
            }
        });
        let mut total = 0;
        while let Some(block) = source.next_block().unwrap() {
            total += block.len();
        }
        // 10 x 4800 stereo frames at 48 kHz = 1 s: 16 000 samples at 16 kHz.
        assert_eq!(total, 16_000);
    }
}
