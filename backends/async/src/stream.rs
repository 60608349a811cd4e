//! Segments as an async stream: a sink whose segments an async application awaits one by one,
//! on any runtime.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_channel as channel;
use futures_lite::Stream;
use steno_core::{Error, Result, Segment, Sink};

/// Creates a [`SegmentSink`] to put in a [`Pipeline`](steno_core::Pipeline) and the
/// [`SegmentStream`] its segments arrive on, in chunk order, as soon as each is transcribed.
///
/// At most `capacity` segments (at least 1) wait in between; when the application reads more
/// slowly than steno transcribes, the pipeline waits for it (off the executor) instead of
/// buffering without bound. Consume the stream while the run is going (for example with the
/// run spawned as a task), not after awaiting the run.
///
/// The stream ends when the run ends, whether it succeeded or not: the run's own result says
/// which. If the stream is dropped first, the run stops with an [`Error::Sink`].
pub fn segment_stream(capacity: usize) -> (SegmentSink, SegmentStream) {
    let (sender, receiver) = channel::bounded(capacity.max(1));
    (
        SegmentSink { sender },
        SegmentStream {
            receiver: Box::pin(receiver),
        },
    )
}

/// The sending half of [`segment_stream`]: a [`Sink`] that hands segments to a
/// [`SegmentStream`].
///
/// Its [`write`](Sink::write) waits while the stream is full, so it must be called from
/// blocking code, never from a task on an executor thread: the steno backends all write to
/// sinks off the executor.
#[derive(Debug)]
pub struct SegmentSink {
    sender: channel::Sender<Segment>,
}

impl Sink for SegmentSink {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        self.sender
            .send_blocking(segment.clone())
            .map_err(|_| Error::sink("segment stream", "the stream was dropped"))
    }
}

/// The receiving half of [`segment_stream`]: the segments of a run, in chunk order, as a
/// [`Stream`] or through [`next`](Self::next).
#[derive(Debug)]
pub struct SegmentStream {
    receiver: Pin<Box<channel::Receiver<Segment>>>,
}

impl SegmentStream {
    /// The next segment, or `None` once the run has ended and every segment was read.
    pub async fn next(&mut self) -> Option<Segment> {
        self.receiver.recv().await.ok()
    }
}

impl Stream for SegmentStream {
    type Item = Segment;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Segment>> {
        self.receiver.as_mut().poll_next(cx)
    }
}
