//! Raw PCM streams (stdin for `-`) as 16 kHz mono sources: no decoder library needed.

use std::io::{ErrorKind, Read};

use crate::{Conditioner, Error, Result, Source};

/// Bytes read per block: 4096 samples, about a quarter of a second.
const BYTES_PER_BLOCK: usize = 2 * 4096;

/// Raw signed 16-bit little-endian 16 kHz mono PCM from any reader (stdin for `-`).
///
/// ```
/// use steno_core::{RawPcmSource, Source};
/// let bytes: Vec<u8> = [0i16, 1000, -1000].iter().flat_map(|s| s.to_le_bytes()).collect();
/// let mut source = RawPcmSource::new("-", std::io::Cursor::new(bytes));
/// assert_eq!(source.next_block().unwrap().unwrap().len(), 3);
/// ```
pub struct RawPcmSource<R> {
    name: String,
    reader: R,
    buffer: Vec<u8>,
    /// Bytes left over from the previous read, when it split a frame.
    carry: Vec<u8>,
    /// Bytes per frame: 2 per channel.
    frame_bytes: usize,
    /// Downmixes and resamples input that is not 16 kHz mono ([`RawPcmSource::with_format`]).
    conditioner: Option<Conditioner>,
}

impl<R> std::fmt::Debug for RawPcmSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPcmSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Send> RawPcmSource<R> {
    /// A source reading s16le samples from `reader`; `name` is used in messages.
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        RawPcmSource {
            name: name.into(),
            reader,
            buffer: vec![0; BYTES_PER_BLOCK],
            carry: Vec::new(),
            frame_bytes: 2,
            conditioner: None,
        }
    }

    /// The same, for interleaved s16le at `rate` Hz with `channels` channels: downmixed and
    /// resampled to 16 kHz mono as it is read.
    ///
    /// # Errors
    /// [`Error::Input`] when the rate or the channel count cannot be converted (zero, or more
    /// channels than supported).
    pub fn with_format(mut self, rate: u32, channels: usize) -> Result<Self> {
        if (rate, channels) != (crate::SAMPLE_RATE, 1) {
            let conditioner = Conditioner::new(rate, channels)
                .map_err(|problem| Error::input_named(self.name.clone(), problem, None))?;
            self.conditioner = Some(conditioner);
            self.frame_bytes = 2 * channels;
        }
        Ok(self)
    }
}

impl<R: Read + Send> Source for RawPcmSource<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        loop {
            // Bytes of a frame split by the previous read go first.
            let start = self.carry.len();
            self.buffer[..start].copy_from_slice(&self.carry);
            self.carry.clear();
            let read = loop {
                match self.reader.read(&mut self.buffer[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(Error::input_named(
                            self.name.clone(),
                            "cannot read",
                            Some(e.into()),
                        ));
                    }
                }
            };
            let filled = start + read;
            if read == 0 {
                if start > 0 {
                    let problem = if self.frame_bytes == 2 {
                        "odd number of bytes: the stream ends inside a 16-bit sample"
                    } else {
                        "the stream ends inside a frame (a sample for every channel)"
                    };
                    return Err(Error::input_named(self.name.clone(), problem, None));
                }
                let mut rest = Vec::new();
                if let Some(mut conditioner) = self.conditioner.take() {
                    conditioner.finish(&mut rest);
                }
                return Ok((!rest.is_empty()).then_some(rest));
            }
            let whole = filled - filled % self.frame_bytes;
            self.carry.extend_from_slice(&self.buffer[whole..filled]);
            let samples: Vec<f32> = self.buffer[..whole]
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
            let block = match &mut self.conditioner {
                None => samples,
                Some(conditioner) => {
                    let mut out = Vec::new();
                    conditioner.push(&samples, &mut out);
                    out
                }
            };
            if !block.is_empty() {
                return Ok(Some(block));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn raw_pcm_handles_odd_reads_and_rejects_a_dangling_byte() {
        let bytes: Vec<u8> = (0..100i16).flat_map(|s| s.to_le_bytes()).collect();
        let mut source = RawPcmSource::new("-", std::io::Cursor::new(bytes));
        let mut n = 0;
        while let Some(block) = source.next_block().unwrap() {
            n += block.len();
        }
        assert_eq!(n, 100);

        let mut odd = Vec::new();
        odd.write_all(&[1, 2, 3]).unwrap();
        let mut source = RawPcmSource::new("-", std::io::Cursor::new(odd));
        assert_eq!(source.next_block().unwrap().unwrap().len(), 1);
        let err = source.next_block().unwrap_err().to_string();
        assert!(err.starts_with("-: odd number of bytes"), "{err}");
    }

    /// A reader that hands out at most three bytes per read, splitting samples and frames.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn stereo_at_another_rate_becomes_16_khz_mono_whatever_the_reads() {
        // One second of 32 kHz stereo: left a constant 0.25, right 0.75 (mean 0.5).
        let frame = [0.25f32, 0.75].map(|x| ((x * 32768.0) as i16).to_le_bytes());
        let bytes: Vec<u8> = (0..32_000).flat_map(|_| frame.concat()).collect();
        let mut source = RawPcmSource::new("-", Trickle(std::io::Cursor::new(bytes)))
            .with_format(32_000, 2)
            .unwrap();
        let mut samples = Vec::new();
        while let Some(block) = source.next_block().unwrap() {
            samples.extend(block);
        }
        assert!(
            (samples.len() as i64 - 16_000).abs() <= 1,
            "{}",
            samples.len()
        );
        let middle = samples[8_000];
        assert!((middle - 0.5).abs() < 0.01, "downmixed: {middle}");
    }

    #[test]
    fn a_stream_that_ends_inside_a_frame_is_an_error() {
        let mut source = RawPcmSource::new("-", std::io::Cursor::new(vec![1, 2, 3, 4, 5, 6]))
            .with_format(16_000, 2)
            .unwrap();
        let err = loop {
            match source.next_block() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("six bytes are one and a half stereo frames"),
                Err(err) => break err.to_string(),
            }
        };
        assert!(err.contains("ends inside a frame"), "{err}");
    }
}
