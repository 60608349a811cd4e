//! Audio sources: where 16 kHz mono samples come from (files, stdin, memory).

use crate::{Error, Result, SAMPLE_RATE};

/// A producer of 16 kHz mono `f32` samples in `[-1, 1]`.
///
/// A source is pulled block by block by the backend's source stage. Blocks may have any length;
/// chunk boundaries never depend on how the samples were split into blocks.
pub trait Source: Send {
    /// A short name for messages: the file path, `-` for stdin, or a description.
    fn name(&self) -> &str;

    /// Returns the next block of samples, or `None` at the end of the stream.
    ///
    /// # Errors
    /// Returns [`Error::Input`] when the input cannot be read or decoded. Samples returned before
    /// the error are valid; the stream ends with the error.
    fn next_block(&mut self) -> Result<Option<Vec<f32>>>;

    /// The total number of samples, when known in advance (used for progress display).
    fn len_hint(&self) -> Option<u64> {
        None
    }

    /// Samples (16 kHz) the source itself lost before handing them out, such as captured
    /// audio that overflowed a full capture ring. Backends add this to the run's dropped count.
    fn dropped_samples(&self) -> u64 {
        0
    }

    /// Whether the source delivers audio as it happens (a capture device) rather than as fast
    /// as it is read: a run then treats partial hypotheses as a real-time run does (finals
    /// first, see [`crate::interim`]) without pacing the source itself.
    fn is_live(&self) -> bool {
        false
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        (**self).next_block()
    }
    fn len_hint(&self) -> Option<u64> {
        (**self).len_hint()
    }
    fn dropped_samples(&self) -> u64 {
        (**self).dropped_samples()
    }
    fn is_live(&self) -> bool {
        (**self).is_live()
    }
}

/// An in-memory source: hands out a vector of samples in fixed-size blocks.
///
/// Optionally fails after a given number of samples, to test how a pipeline handles an input
/// that breaks mid-stream.
///
/// ```
/// use steno_core::{Source, VecSource};
/// let mut source = VecSource::new(vec![0.0; 1000]).with_block_len(400);
/// assert_eq!(source.next_block().unwrap().unwrap().len(), 400);
/// ```
#[derive(Debug, Clone)]
pub struct VecSource {
    samples: Vec<f32>,
    position: usize,
    block_len: usize,
    fail_at: Option<usize>,
}

impl VecSource {
    /// A source over `samples` (16 kHz mono), in blocks of 20 ms.
    pub fn new(samples: Vec<f32>) -> Self {
        VecSource {
            samples,
            position: 0,
            block_len: SAMPLE_RATE as usize / 50,
            fail_at: None,
        }
    }

    /// Hands out blocks of `block_len` samples (at least 1).
    #[must_use]
    pub fn with_block_len(mut self, block_len: usize) -> Self {
        self.block_len = block_len.max(1);
        self
    }

    /// Fails with an input error once `sample` samples have been handed out.
    #[must_use]
    pub fn with_failure_at(mut self, sample: usize) -> Self {
        self.fail_at = Some(sample);
        self
    }
}

impl Source for VecSource {
    fn name(&self) -> &str {
        "memory"
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        let limit = self.fail_at.unwrap_or(usize::MAX).min(self.samples.len());
        if self.position >= limit {
            return match self.fail_at {
                Some(at) if at <= self.samples.len() => Err(Error::input_named(
                    self.name(),
                    format!("injected failure after {at} samples"),
                    None,
                )),
                _ => Ok(None),
            };
        }
        let end = (self.position + self.block_len).min(limit);
        let block = self.samples[self.position..end].to_vec();
        self.position = end;
        Ok(Some(block))
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.samples.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_source_hands_out_everything_then_ends() {
        let mut source = VecSource::new(vec![0.5; 1000]).with_block_len(300);
        let mut total = 0;
        while let Some(block) = source.next_block().unwrap() {
            total += block.len();
        }
        assert_eq!(total, 1000);
    }

    #[test]
    fn vec_source_fails_where_told() {
        let mut source = VecSource::new(vec![0.5; 1000])
            .with_block_len(300)
            .with_failure_at(500);
        assert_eq!(source.next_block().unwrap().unwrap().len(), 300);
        assert_eq!(source.next_block().unwrap().unwrap().len(), 200);
        let err = source.next_block().unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
    }
}
