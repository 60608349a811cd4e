//! Raw PCM streams (stdin for `-`) as 16 kHz mono sources: no decoder library needed.

use std::io::{ErrorKind, Read};

use crate::{Error, Result, Source};

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
    /// A byte left over from the previous read (an odd-length read split a sample).
    carry: Option<u8>,
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
            carry: None,
        }
    }
}

impl<R: Read + Send> Source for RawPcmSource<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        let start = usize::from(self.carry.is_some());
        if let Some(byte) = self.carry.take() {
            self.buffer[0] = byte;
        }
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
            if start == 1 {
                return Err(Error::input_named(
                    self.name.clone(),
                    "odd number of bytes: the stream ends inside a 16-bit sample",
                    None,
                ));
            }
            return Ok(None);
        }
        let whole = filled & !1;
        if whole < filled {
            self.carry = Some(self.buffer[whole]);
        }
        let block = self.buffer[..whole]
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        Ok(Some(block))
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
}
