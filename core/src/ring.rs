//! The lock-free single-producer single-consumer ring between audio input and the pipeline.
//!
//! The writer side never blocks, locks or allocates, so it is safe in an audio callback. When
//! the ring is full, a real-time writer drops the samples that do not fit and counts them; an
//! offline writer (a file read faster than real time) may instead wait and retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Creates a ring holding up to `capacity` samples.
///
/// ```
/// let (mut writer, mut reader) = steno_core::ring(4);
/// assert_eq!(writer.push_or_drop(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), 4);
/// assert_eq!(writer.dropped(), 2);
/// let mut out = Vec::new();
/// reader.pop_into(&mut out);
/// assert_eq!(out, [0.1, 0.2, 0.3, 0.4]);
/// ```
pub fn ring(capacity: usize) -> (RingWriter, RingReader) {
    let (producer, consumer) = rtrb::RingBuffer::new(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        RingWriter {
            producer,
            dropped: Arc::clone(&dropped),
        },
        RingReader { consumer, dropped },
    )
}

/// The producing end of the ring. Dropping it marks the end of the stream.
#[derive(Debug)]
pub struct RingWriter {
    producer: rtrb::Producer<f32>,
    dropped: Arc<AtomicU64>,
}

impl RingWriter {
    /// Pushes as many samples as fit and returns how many were pushed; never blocks.
    pub fn push_some(&mut self, samples: &[f32]) -> usize {
        let (pushed, _) = self.producer.push_partial_slice(samples);
        pushed.len()
    }

    /// Pushes what fits and counts the rest as dropped: the policy of a real-time input,
    /// which cannot wait. Never blocks, locks or allocates.
    pub fn push_or_drop(&mut self, samples: &[f32]) -> usize {
        let pushed = self.push_some(samples);
        let lost = samples.len() - pushed;
        if lost > 0 {
            self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        }
        pushed
    }

    /// Like [`push_or_drop`](Self::push_or_drop) for interleaved audio with `channels` samples
    /// per frame: only whole frames are pushed, so a full ring never splits a frame between
    /// channels. Returns the samples pushed. Never blocks, locks or allocates.
    pub fn push_frames_or_drop(&mut self, samples: &[f32], channels: usize) -> usize {
        let channels = channels.max(1);
        let whole = samples.len() / channels * channels;
        // Only this writer fills the ring, so the free space can only grow meanwhile.
        let fit = (self.free() / channels * channels).min(whole);
        let pushed = self.push_some(&samples[..fit]);
        let lost = samples.len() - pushed;
        if lost > 0 {
            self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        }
        pushed
    }

    /// Counts `samples` lost upstream of the ring (for example in a capture device's own
    /// ring), so the reader's [`RingReader::dropped`] is the stream's whole loss.
    pub fn count_dropped(&self, samples: u64) {
        if samples > 0 {
            self.dropped.fetch_add(samples, Ordering::Relaxed);
        }
    }

    /// Free space, in samples.
    pub fn free(&self) -> usize {
        self.producer.slots()
    }

    /// Whether the reader is gone (the pipeline stopped), so pushing is pointless.
    pub fn is_reader_gone(&self) -> bool {
        self.producer.is_abandoned()
    }

    /// Samples dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The consuming end of the ring.
#[derive(Debug)]
pub struct RingReader {
    consumer: rtrb::Consumer<f32>,
    dropped: Arc<AtomicU64>,
}

impl RingReader {
    /// Appends every sample available now to `out` and returns how many.
    pub fn pop_into(&mut self, out: &mut Vec<f32>) -> usize {
        let available = self.consumer.slots();
        if available == 0 {
            return 0;
        }
        let Ok(chunk) = self.consumer.read_chunk(available) else {
            return 0;
        };
        let (first, second) = chunk.as_slices();
        out.extend_from_slice(first);
        out.extend_from_slice(second);
        chunk.commit_all();
        available
    }

    /// Whether the writer is gone: with the ring empty, the stream has ended.
    pub fn is_writer_gone(&self) -> bool {
        self.consumer.is_abandoned()
    }

    /// Whether no samples are waiting.
    pub fn is_empty(&self) -> bool {
        self.consumer.is_empty()
    }

    /// Samples dropped so far by the writer because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cross_threads_in_order() {
        let (mut writer, mut reader) = ring(64);
        let producer = std::thread::spawn(move || {
            let samples: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
            let mut rest = samples.as_slice();
            while !rest.is_empty() {
                let n = writer.push_some(rest);
                rest = &rest[n..];
                std::thread::yield_now();
            }
        });
        let mut out = Vec::new();
        while !(reader.is_writer_gone() && reader.is_empty()) {
            reader.pop_into(&mut out);
            std::thread::yield_now();
        }
        producer.join().unwrap();
        assert_eq!(out.len(), 10_000);
        assert!(out.iter().enumerate().all(|(i, &s)| s == i as f32));
        assert_eq!(reader.dropped(), 0);
    }

    #[test]
    fn a_full_ring_drops_whole_frames() {
        let (mut writer, reader) = ring(5);
        assert_eq!(writer.push_frames_or_drop(&[0.1, 0.2, 0.3, 0.4], 2), 4);
        // One slot left: half a stereo frame does not fit, so the frame is dropped whole.
        assert_eq!(writer.push_frames_or_drop(&[0.5, 0.6], 2), 0);
        assert_eq!(reader.dropped(), 2);
        assert_eq!(writer.free(), 1);
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let (mut writer, reader) = ring(10);
        assert_eq!(writer.push_or_drop(&[0.0; 8]), 8);
        assert_eq!(writer.push_or_drop(&[0.0; 8]), 2);
        assert_eq!(reader.dropped(), 6);
        drop(reader);
        assert!(writer.is_reader_gone());
    }
}
