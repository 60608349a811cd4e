//! Conditioning decoded audio for Whisper: downmix to mono and resample to 16 kHz.

use rubato::{FftFixedIn, Resampler};

use crate::SAMPLE_RATE;

/// Turns interleaved audio of any rate and channel count into 16 kHz mono, block by block.
///
/// The resampler's own delay is removed, so sample `n` of the output lines up with time
/// `n / 16000` s of the input; [`Conditioner::finish`] drains the tail so no audio is lost.
pub struct Conditioner {
    channels: usize,
    resampler: Option<Box<FftFixedIn<f32>>>,
    /// Mono samples waiting for a full resampler input block.
    pending: Vec<f32>,
    /// Output samples still to discard to compensate the resampler's delay.
    delay_to_skip: usize,
    /// Input frames seen, to know how many output samples the stream should have in the end.
    input_frames: u64,
    output_frames: u64,
    input_rate: u32,
}

impl std::fmt::Debug for Conditioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditioner")
            .field("channels", &self.channels)
            .field("input_rate", &self.input_rate)
            .finish_non_exhaustive()
    }
}

impl Conditioner {
    /// A conditioner for interleaved input with `channels` channels at `input_rate` Hz.
    ///
    /// # Errors
    /// Returns a description of the problem when the rate or channel count is zero or the
    /// resampler cannot be built for this rate.
    pub fn new(input_rate: u32, channels: usize) -> Result<Self, String> {
        if input_rate == 0 {
            return Err("sample rate is 0".into());
        }
        if channels == 0 {
            return Err("audio has no channels".into());
        }
        let resampler = if input_rate == SAMPLE_RATE {
            None
        } else {
            // 1024-frame input blocks keep the FFT cheap and the added delay small.
            let resampler =
                FftFixedIn::<f32>::new(input_rate as usize, SAMPLE_RATE as usize, 1024, 2, 1)
                    .map_err(|e| format!("cannot resample from {input_rate} Hz: {e}"))?;
            Some(Box::new(resampler))
        };
        let delay_to_skip = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(Conditioner {
            channels,
            resampler,
            pending: Vec::new(),
            delay_to_skip,
            input_frames: 0,
            output_frames: 0,
            input_rate,
        })
    }

    /// Converts one block of interleaved samples, appending 16 kHz mono samples to `out`.
    pub fn push(&mut self, interleaved: &[f32], out: &mut Vec<f32>) {
        let frames = interleaved.len() / self.channels;
        self.input_frames += frames as u64;
        let scale = 1.0 / self.channels as f32;
        let mono = interleaved
            .chunks_exact(self.channels)
            .map(|frame| frame.iter().sum::<f32>() * scale);
        let Some(resampler) = self.resampler.as_mut() else {
            let before = out.len();
            out.extend(mono);
            self.output_frames += (out.len() - before) as u64;
            return;
        };
        self.pending.extend(mono);
        let mut consumed = 0;
        loop {
            let need = resampler.input_frames_next();
            if self.pending.len() - consumed < need {
                break;
            }
            let input = &self.pending[consumed..consumed + need];
            consumed += need;
            if let Ok(mut output) = resampler.process(&[input], None) {
                emit(
                    &mut self.delay_to_skip,
                    &mut self.output_frames,
                    output.swap_remove(0),
                    out,
                );
            }
        }
        self.pending.drain(..consumed);
    }

    /// Flushes what the resampler still holds at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let Some(resampler) = self.resampler.as_mut() else {
            return;
        };
        let expected =
            (self.input_frames * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.input_rate));
        let pending = std::mem::take(&mut self.pending);
        let mut first = Some(pending.as_slice());
        // Feed the partial block, then silence, until the delayed tail has come out.
        for _ in 0..16 {
            if self.output_frames >= expected {
                break;
            }
            let input = first.take();
            let Ok(mut output) = (match input {
                Some(block) => resampler.process_partial(Some(&[block]), None),
                None => resampler.process_partial::<&[f32]>(None, None),
            }) else {
                break;
            };
            let mut block = output.swap_remove(0);
            let room = usize::try_from(expected - self.output_frames).unwrap_or(usize::MAX);
            block.truncate(room.saturating_add(self.delay_to_skip));
            emit(&mut self.delay_to_skip, &mut self.output_frames, block, out);
        }
    }
}

/// Drops the resampler's leading delay, then appends the block to `out`.
fn emit(
    delay_to_skip: &mut usize,
    output_frames: &mut u64,
    mut block: Vec<f32>,
    out: &mut Vec<f32>,
) {
    let skip = (*delay_to_skip).min(block.len());
    *delay_to_skip -= skip;
    block.drain(..skip);
    *output_frames += block.len() as u64;
    out.extend_from_slice(&block);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, seconds: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    fn condition(input: &[f32], rate: u32, channels: usize, block: usize) -> Vec<f32> {
        let mut conditioner = Conditioner::new(rate, channels).unwrap();
        let mut out = Vec::new();
        for part in input.chunks(block * channels) {
            conditioner.push(part, &mut out);
        }
        conditioner.finish(&mut out);
        out
    }

    #[test]
    fn stereo_44k_becomes_16k_mono_of_the_right_length_and_phase() {
        let mono = sine(44_100, 440.0, 1.0);
        let stereo: Vec<f32> = mono.iter().flat_map(|&s| [s, s]).collect();
        let out = condition(&stereo, 44_100, 2, 777);
        assert!(out.len().abs_diff(16_000) <= 1, "len {}", out.len());
        // Delay compensated: output matches a 16 kHz sine of the same phase.
        let reference = sine(16_000, 440.0, 1.0);
        let err: f32 = out[1000..15_000]
            .iter()
            .zip(&reference[1000..15_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
    }

    #[test]
    fn sixteen_k_mono_passes_through_unchanged() {
        let input = sine(16_000, 300.0, 0.5);
        assert_eq!(condition(&input, 16_000, 1, 100), input);
    }

    #[test]
    fn block_size_does_not_change_the_output() {
        let input = sine(48_000, 300.0, 0.7);
        let a = condition(&input, 48_000, 1, 100);
        let b = condition(&input, 48_000, 1, 4096);
        assert_eq!(a, b);
    }

    #[test]
    fn zero_rate_or_channels_are_errors() {
        assert!(Conditioner::new(0, 1).is_err());
        assert!(Conditioner::new(16_000, 0).is_err());
    }
}
