//! Segments as an async stream: a sink whose segments (and, with interim results, partial
//! hypotheses) an async application awaits one by one, on any runtime.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_channel as channel;
use futures_lite::Stream;
use steno_core::{Error, Partial, Result, Segment, Sink, Update};

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

/// Like [`segment_stream`], with partial hypotheses as well (interim results, see
/// [`RunOptions::interim_step`](steno_core::RunOptions::interim_step)): the stream yields
/// [`Update`]s, partials and final segments in the order the run wrote them.
///
/// Final segments wait for room as in [`segment_stream`]; a partial that finds the stream
/// full is dropped instead, so a slow reader never holds up a final (a newer partial or the
/// final replaces it anyway).
///
/// ```
/// # futures_lite::future::block_on(async {
/// use steno_core::{Partial, Segment, Sink, Update};
/// let (mut sink, mut updates) = steno_async::update_stream(4);
/// sink.partial(&Partial::new(0, 0.0, 0.5, "Hello", "")).unwrap();
/// sink.write(&Segment::new(0, 0.0, 0.9, "Hello there.")).unwrap();
/// drop(sink);
/// assert!(matches!(updates.next().await, Some(Update::Partial(p)) if p.text == "Hello"));
/// assert!(matches!(updates.next().await, Some(Update::Final(s)) if s.text == "Hello there."));
/// assert!(updates.next().await.is_none());
/// # });
/// ```
pub fn update_stream(capacity: usize) -> (UpdateSink, UpdateStream) {
    let (sender, receiver) = channel::bounded(capacity.max(1));
    (
        UpdateSink { sender },
        UpdateStream {
            receiver: Box::pin(receiver),
        },
    )
}

/// The sending half of [`update_stream`]: a [`Sink`] that hands segments and partials to an
/// [`UpdateStream`]. Call it from blocking code, as [`SegmentSink`].
#[derive(Debug)]
pub struct UpdateSink {
    sender: channel::Sender<Update>,
}

impl Sink for UpdateSink {
    fn write(&mut self, segment: &Segment) -> Result<()> {
        self.sender
            .send_blocking(Update::Final(segment.clone()))
            .map_err(|_| Error::sink("update stream", "the stream was dropped"))
    }

    fn partial(&mut self, partial: &Partial) -> Result<()> {
        match self.sender.try_send(Update::Partial(partial.clone())) {
            Ok(()) | Err(channel::TrySendError::Full(_)) => Ok(()),
            Err(channel::TrySendError::Closed(_)) => {
                Err(Error::sink("update stream", "the stream was dropped"))
            }
        }
    }
}

/// The receiving half of [`update_stream`]: partial hypotheses and final segments, in the
/// order the run wrote them.
#[derive(Debug)]
pub struct UpdateStream {
    receiver: Pin<Box<channel::Receiver<Update>>>,
}

impl UpdateStream {
    /// The next update, or `None` once the run has ended and every update was read.
    pub async fn next(&mut self) -> Option<Update> {
        self.receiver.recv().await.ok()
    }
}

impl Stream for UpdateStream {
    type Item = Update;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        self.receiver.as_mut().poll_next(cx)
    }
}
