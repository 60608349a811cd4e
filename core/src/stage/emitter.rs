//! The emitter: transcripts to the sink in chunk order, with partial hypotheses between them
//! (see [`crate::interim`]), and the run's tally of what was written.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{SourceCounters, SourceTally, Transcript, split_window};
use crate::echo::EchoGuard;
use crate::interim::{PartialQueue, Stability, first_words_ms};
use crate::report::RunTally;
use crate::{Error, Partial, Progress, Result, SAMPLE_RATE, Segment, Sink, Utterance};

/// Writes transcripts to the sink in chunk order, stamping emission time and latency.
///
/// Transcripts may arrive in any order (parallel backends); each is written as soon as every
/// earlier chunk has been.
pub struct Emitter {
    sink: Box<dyn Sink>,
    started: Instant,
    next_chunk: usize,
    /// `next_chunk` when [`Emitter::newly_written`] was last called.
    reported_written: usize,
    /// Provisional and partial transcripts accepted since [`Emitter::newly_written`] was last
    /// called.
    provisional_unreported: usize,
    /// One past the last utterance whose final text was written.
    next_utterance: usize,
    /// Partial transcripts waiting for their turn.
    partials: PartialQueue,
    /// The stable prefix of the utterance being spoken.
    stability: Stability,
    /// Provisional chunks whose early decode ran.
    early_decodes: u64,
    waiting: BTreeMap<usize, Transcript>,
    /// The earliest failed chunk and its error, held until the chunks before it are written.
    failure: Option<(usize, Error)>,
    tally: RunTally,
    /// Where the audio written so far ends, for a progress display.
    progress: Option<Progress>,
    /// The run's labelled sources, by [`Transcript::source`].
    sources: Vec<Arc<SourceCounters>>,
    /// The latest end of speech written so far, to count segments out of time order.
    latest_speech_end: u64,
    /// Drops a near source's echoes of the others (see [`crate::echo`]).
    echo_guard: Option<EchoGuard>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("next_chunk", &self.next_chunk)
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter writing to `sink` for a run that started at `started`.
    pub fn new(sink: Box<dyn Sink>, started: Instant) -> Self {
        Emitter {
            sink,
            started,
            next_chunk: 0,
            reported_written: 0,
            provisional_unreported: 0,
            next_utterance: 0,
            partials: PartialQueue::new(false),
            stability: Stability::default(),
            early_decodes: 0,
            waiting: BTreeMap::new(),
            failure: None,
            tally: RunTally::default(),
            progress: None,
            sources: Vec::new(),
            latest_speech_end: 0,
            echo_guard: None,
        }
    }

    /// Drops the segments of source `near` that repeat another source's overlapping segment
    /// (see [`crate::echo`]); `None` writes every segment.
    #[must_use]
    pub(crate) fn with_echo_guard(mut self, near: Option<usize>) -> Self {
        self.echo_guard = near.map(EchoGuard::new);
        self.tally.echo_segments_dropped = near.map(|_| 0);
        self
    }

    /// Labels segments with their source's label and reports each source apart: `sources`
    /// are the run's labelled sources, in the order of [`Transcript::source`].
    #[must_use]
    pub(crate) fn with_sources(mut self, sources: Vec<Arc<SourceCounters>>) -> Self {
        self.tally.sources = sources
            .iter()
            .map(|source| SourceTally {
                label: source.label.clone(),
                ..SourceTally::default()
            })
            .collect();
        self.sources = sources;
        self
    }

    /// Reports, through `progress`, where the audio written so far ends
    /// ([`Progress::samples_transcribed`]).
    #[must_use]
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Writes partial hypotheses as a real-time run wants them (`realtime`): finals never wait
    /// for partials, and partials too late for their utterance are skipped. Offline (the
    /// default) every partial is written and each final waits for the partials cut before it,
    /// so every backend writes the same sequence.
    #[must_use]
    pub fn with_realtime_partials(mut self, realtime: bool) -> Self {
        self.partials = PartialQueue::new(realtime);
        self
    }

    /// Chunks written (or skipped as empty) in order since the last call, and provisional and
    /// partial transcripts accepted: transcripts held for reordering are not counted. Parallel
    /// backends give back this many run-ahead tokens (see [`RunOptions::run_ahead`](crate::RunOptions::run_ahead)).
    pub fn newly_written(&mut self) -> usize {
        let newly = self.next_chunk - self.reported_written + self.provisional_unreported;
        self.reported_written = self.next_chunk;
        self.provisional_unreported = 0;
        newly
    }

    /// Accepts one transcript and writes every transcript that is now in order.
    ///
    /// # Errors
    /// The sink's error.
    pub fn emit(&mut self, transcript: Transcript) -> Result<()> {
        if transcript.provisional {
            // Its text waits in the early decode for the final chunk; only count it.
            self.provisional_unreported += 1;
            self.early_decodes += u64::from(transcript.early_decoded);
            return Ok(());
        }
        if transcript.partial.is_some() {
            self.provisional_unreported += 1;
            self.partials.push(transcript);
        } else {
            self.waiting.insert(transcript.chunk, transcript);
        }
        loop {
            if let Some(partial) = self.partials.next_due(self.next_chunk, self.next_utterance) {
                self.write_partial(&partial)?;
                continue;
            }
            let Some(next) = self.waiting.first_entry() else {
                break;
            };
            if *next.key() != self.next_chunk
                || (!self.partials.realtime()
                    && self.partials.accounted() < next.get().partials_before)
            {
                break;
            }
            let next = next.remove();
            self.write_final(&next)?;
        }
        Ok(())
    }

    /// Writes the segments of a final chunk, the next in order.
    fn write_final(&mut self, next: &Transcript) -> Result<()> {
        self.next_chunk += 1;
        if self.sources.len() > 1 {
            self.tally
                .merge_waits_ms
                .push(next.merge_wait.as_secs_f64() * 1000.0);
        }
        self.tally.full_window_retries += u64::from(next.full_window_retries);
        self.tally.early_starts_used += u64::from(next.early_decoded);
        if next.utterances.is_empty() {
            self.tally.chunks += 1;
            let whole = Utterance {
                index: next.chunk,
                start_sample: next.start_sample,
                end_sample: next.end_sample,
                speech_end_sample: next.speech_end_sample,
            };
            self.write(next, whole, next.text.clone())?;
        } else {
            // A packed window: one segment per utterance, with its part of the text.
            self.tally.chunks += next.utterances.len();
            self.tally.packed_windows += u64::from(next.utterances.len() > 1);
            let texts = split_window(&next.utterances, next.start_sample, &next.timed, &next.text);
            for (utterance, text) in next.utterances.iter().zip(texts) {
                self.write(next, *utterance, text)?;
            }
        }
        if let Some(progress) = &self.progress {
            progress.set_transcribed(next.end_sample);
        }
        Ok(())
    }

    /// Writes a partial hypothesis of the utterance being spoken, with its stable prefix;
    /// nothing when it has no words.
    fn write_partial(&mut self, transcript: &Transcript) -> Result<()> {
        if transcript.text.is_empty() {
            // No words heard yet, or a decode not worth showing: nothing to agree with.
            return Ok(());
        }
        let first = !self.stability.has_shown(transcript.chunk);
        let (text, stable) = self.stability.partial(transcript.chunk, &transcript.text);
        let now = Instant::now();
        let rate = f64::from(SAMPLE_RATE);
        self.sink.partial(&Partial {
            chunk: transcript.chunk,
            start: transcript.start_sample as f64 / rate,
            end: transcript.end_sample as f64 / rate,
            text,
            stable,
            emitted_at: now.duration_since(self.started).as_secs_f64(),
            latency_ms: now
                .saturating_duration_since(transcript.available_at)
                .as_millis() as u64,
        })?;
        self.tally.partials += 1;
        if let Some(point) = &transcript.partial
            && first
        {
            self.tally
                .first_partial_ms
                .push(first_words_ms(point.speech_start_at, now));
        }
        Ok(())
    }

    /// Writes `text` as the segment of `utterance`, timed by `transcript`; nothing when the
    /// text is empty.
    fn write(&mut self, transcript: &Transcript, utterance: Utterance, text: String) -> Result<()> {
        self.next_utterance = utterance.index + 1;
        if let Some(settled) = self.stability.settle(utterance.index, &text) {
            self.tally.utterances_with_partials += 1;
            self.tally.stable_prefix_violations += u64::from(settled.violated);
            self.tally.revised_words += settled.revised;
        }
        if text.is_empty() {
            return Ok(());
        }
        let rate = f64::from(SAMPLE_RATE);
        let (start, end) = (
            utterance.start_sample as f64 / rate,
            utterance.end_sample as f64 / rate,
        );
        if let Some(guard) = &mut self.echo_guard
            && guard.is_echo(transcript.source, start, end, &text)
        {
            if let Some(dropped) = &mut self.tally.echo_segments_dropped {
                *dropped += 1;
            }
            return Ok(());
        }
        let now = Instant::now();
        let latency = now.saturating_duration_since(transcript.available_at);
        let speech_end_latency = now.saturating_duration_since(transcript.speech_end_at);
        let source = self.sources.get(transcript.source);
        self.sink.write(&Segment {
            chunk: utterance.index,
            source: source.map(|source| source.label.clone()),
            start,
            end,
            speech_end: utterance.speech_end_sample as f64 / rate,
            text,
            language: transcript.language.as_ref().map(|found| found.code.clone()),
            language_probability: transcript.language.as_ref().map(|found| found.probability),
            emitted_at: now.duration_since(self.started).as_secs_f64(),
            latency_ms: latency.as_millis() as u64,
        })?;
        self.tally.segments += 1;
        if let Some(found) = &transcript.language {
            *self.tally.languages.entry(found.code.clone()).or_default() += 1;
        }
        if let Some(tally) = self.tally.sources.get_mut(transcript.source) {
            tally.segments += 1;
            tally
                .speech_end_latencies_ms
                .push(speech_end_latency.as_secs_f64() * 1000.0);
        }
        // The order the merge keeps: the echo guard's near source counts its lag.
        let order = utterance.speech_end_sample
            + match &self.echo_guard {
                Some(guard) if guard.near() == transcript.source => crate::echo::lag_samples(),
                _ => 0,
            };
        if order < self.latest_speech_end {
            self.tally.segments_out_of_order += 1;
        }
        self.latest_speech_end = self.latest_speech_end.max(order);
        self.tally.latencies_ms.push(latency.as_secs_f64() * 1000.0);
        self.tally
            .speech_end_latencies_ms
            .push(speech_end_latency.as_secs_f64() * 1000.0);
        let overhead = now
            .saturating_duration_since(transcript.cut_at)
            .saturating_sub(transcript.transcribe_time);
        self.tally
            .overheads_ms
            .push(overhead.as_secs_f64() * 1000.0);
        Ok(())
    }

    /// Accepts the outcome of transcribing chunk `chunk`, as a parallel backend gets them, in
    /// any order: a transcript is written as by [`emit`](Self::emit); a failure is held back
    /// until every earlier chunk has been written, and then returned. The sink so receives
    /// exactly the segments a sequential run writes before the same failure; transcripts of
    /// later chunks are never written once a failure is held.
    ///
    /// # Errors
    /// The failure of the earliest failed chunk, once every chunk before it has been written;
    /// the sink's error.
    pub fn emit_outcome(&mut self, chunk: usize, outcome: Result<Transcript>) -> Result<()> {
        match outcome {
            Ok(transcript) => self.emit(transcript)?,
            Err(error) => {
                if self.failure.as_ref().is_none_or(|(held, _)| chunk < *held) {
                    self.failure = Some((chunk, error));
                }
            }
        }
        match self.failure.take() {
            Some((held, error)) if held == self.next_chunk => Err(error),
            other => {
                self.failure = other;
                Ok(())
            }
        }
    }

    /// Completes the output after the last transcript of a successful run.
    ///
    /// # Errors
    /// [`Error::Stage`] if a chunk never arrived (a backend bug), or the sink's error.
    pub fn finish(mut self) -> Result<RunTally> {
        if let Some(&waiting) = self.waiting.keys().next() {
            let problem = if waiting == self.next_chunk {
                format!(
                    "chunk {waiting} waited for partial transcripts that never arrived ({} of {})",
                    self.partials.accounted(),
                    self.waiting[&waiting].partials_before
                )
            } else {
                format!(
                    "chunk {} never arrived before chunk {waiting}",
                    self.next_chunk
                )
            };
            return Err(Error::Stage {
                stage: "emitter",
                problem,
            });
        }
        self.partials.finish();
        self.tally.partials_skipped = self.partials.skipped;
        for (tally, counters) in self.tally.sources.iter_mut().zip(&self.sources) {
            tally.audio_samples = counters.samples_read.load(Ordering::Relaxed);
            tally.dropped_samples = counters.dropped_samples.load(Ordering::Relaxed);
        }
        self.sink.finish()?;
        // Every early decode that no final chunk took was dropped: speech resumed.
        self.tally.early_starts_discarded = self
            .early_decodes
            .saturating_sub(self.tally.early_starts_used);
        Ok(self.tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CollectingSink, RunOptions};
    use std::time::Duration;

    fn transcript(chunk: usize, text: &str) -> Transcript {
        Transcript {
            chunk,
            start_sample: chunk as u64 * 16_000,
            end_sample: chunk as u64 * 16_000 + 8_000,
            speech_end_sample: chunk as u64 * 16_000 + 4_800,
            available_at: Instant::now(),
            speech_end_at: Instant::now(),
            text: text.into(),
            full_window_retries: 0,
            provisional: false,
            early_decoded: false,
            partial: None,
            skipped: false,
            partials_before: 0,
            utterances: Vec::new(),
            timed: Vec::new(),
            language: None,
            cut_at: Instant::now(),
            transcribe_time: Duration::ZERO,
            source: 0,
            merge_wait: Duration::ZERO,
        }
    }

    #[test]
    fn emitter_restores_chunk_order_and_skips_empty_text() {
        let sink = CollectingSink::new();
        let mut emitter = Emitter::new(Box::new(sink.clone()), Instant::now());
        emitter.emit(transcript(2, "two")).unwrap();
        emitter.emit(transcript(1, "")).unwrap();
        assert!(sink.segments().is_empty());
        emitter.emit(transcript(0, "zero")).unwrap();
        let tally = emitter.finish().unwrap();
        let texts: Vec<String> = sink.segments().into_iter().map(|s| s.text).collect();
        assert_eq!(texts, ["zero", "two"]);
        assert_eq!((tally.chunks, tally.segments), (3, 2));
        assert!(sink.is_finished());
    }

    #[test]
    fn newly_written_counts_chunks_written_in_order_once() {
        let mut emitter = Emitter::new(Box::new(CollectingSink::new()), Instant::now());
        emitter.emit(transcript(1, "one")).unwrap();
        assert_eq!(emitter.newly_written(), 0, "chunk 1 waits for chunk 0");
        emitter.emit(transcript(0, "")).unwrap();
        assert_eq!(emitter.newly_written(), 2, "chunk 0 (empty) and chunk 1");
        assert_eq!(emitter.newly_written(), 0, "each chunk is counted once");
        let options = RunOptions {
            queue_capacity: 0,
            ..RunOptions::default()
        };
        assert_eq!(options.run_ahead(2), 3, "a queue holds at least one chunk");
    }

    #[test]
    fn emitter_holds_a_failure_until_the_chunks_before_it_are_written() {
        let sink = CollectingSink::new();
        let mut emitter = Emitter::new(Box::new(sink.clone()), Instant::now());
        let failure = || Err(Error::transcribe(2, "boom"));
        emitter.emit_outcome(2, failure()).unwrap();
        emitter.emit_outcome(3, Ok(transcript(3, "three"))).unwrap();
        emitter.emit_outcome(0, Ok(transcript(0, "zero"))).unwrap();
        let err = emitter
            .emit_outcome(1, Ok(transcript(1, "one")))
            .unwrap_err();
        assert_eq!(err.to_string(), "transcriber failed on chunk 2: boom");
        let texts: Vec<String> = sink.segments().into_iter().map(|s| s.text).collect();
        assert_eq!(texts, ["zero", "one"], "nothing after the failed chunk");
        // A failure of the next chunk to write is returned at once.
        let mut emitter = Emitter::new(Box::new(CollectingSink::new()), Instant::now());
        assert!(emitter.emit_outcome(0, failure()).is_err());
    }

    #[test]
    fn provisional_transcripts_are_counted_never_written() {
        let sink = CollectingSink::new();
        let mut emitter = Emitter::new(Box::new(sink.clone()), Instant::now());
        let provisional = |end_sample: u64| Transcript {
            end_sample,
            provisional: true,
            early_decoded: true,
            ..transcript(0, "")
        };
        // Speech resumed after the first early start; the second one was taken.
        emitter.emit(provisional(8_000)).unwrap();
        emitter.emit(provisional(9_000)).unwrap();
        assert!(sink.segments().is_empty());
        assert_eq!(
            emitter.newly_written(),
            2,
            "their run-ahead tokens come back"
        );
        emitter
            .emit(Transcript {
                end_sample: 9_000,
                early_decoded: true,
                ..transcript(0, "zero")
            })
            .unwrap();
        assert_eq!(emitter.newly_written(), 1);
        let tally = emitter.finish().unwrap();
        assert_eq!(sink.segments().len(), 1);
        assert_eq!(tally.chunks, 1);
        assert_eq!(
            (tally.early_starts_used, tally.early_starts_discarded),
            (1, 1)
        );
    }

    #[test]
    fn emitter_reports_progress_as_chunks_are_written_in_order() {
        let progress = Progress::default();
        let mut emitter = Emitter::new(Box::new(CollectingSink::new()), Instant::now())
            .with_progress(progress.clone());
        emitter.emit(transcript(1, "one")).unwrap();
        assert_eq!(
            progress.samples_transcribed(),
            0,
            "chunk 1 waits for chunk 0"
        );
        emitter.emit(transcript(0, "")).unwrap();
        assert_eq!(
            progress.samples_transcribed(),
            transcript(1, "").end_sample,
            "both written (chunk 0 empty): the audio up to chunk 1's end is done"
        );
    }

    #[test]
    fn emitter_reports_a_missing_chunk() {
        let mut emitter = Emitter::new(Box::new(CollectingSink::new()), Instant::now());
        emitter.emit(transcript(1, "one")).unwrap();
        let err = emitter.finish().unwrap_err().to_string();
        assert!(err.contains("chunk 0 never arrived"), "{err}");
    }

    /// A partial transcript of utterance `chunk` cut at `end_s` seconds: the `seq`-th partial
    /// of the run, cut after `finals_before` final chunks.
    fn partial(chunk: usize, end_s: u64, seq: u64, finals_before: usize, text: &str) -> Transcript {
        let mut partial = transcript(chunk, text);
        partial.end_sample = end_s * 16_000;
        partial.partial = Some(super::super::PartialPoint {
            seq,
            finals_before,
            speech_start_sample: partial.start_sample,
            speech_start_at: Instant::now(),
            overtaken: None,
        });
        partial
    }

    /// What the sink received, in order: `p:text` for partials, `F:text` for finals.
    fn written(sink: &CollectingSink) -> Vec<String> {
        sink.updates()
            .iter()
            .map(|update| match update {
                crate::Update::Partial(p) => format!("p:{}", p.text),
                crate::Update::Final(s) => format!("F:{}", s.text),
            })
            .collect()
    }

    #[test]
    fn offline_a_final_waits_for_the_partials_cut_before_it_and_they_keep_their_order() {
        let sink = CollectingSink::new();
        let mut emitter = Emitter::new(Box::new(sink.clone()), Instant::now());
        let mut last = transcript(1, "b c d.");
        last.partials_before = 2;
        // A parallel backend: the final and the second partial come before the first.
        emitter.emit(transcript(0, "a.")).unwrap();
        emitter.emit(last).unwrap();
        emitter.emit(partial(1, 2, 1, 1, "b c")).unwrap();
        assert_eq!(written(&sink), ["F:a."]);
        emitter.emit(partial(1, 1, 0, 1, "b")).unwrap();
        assert_eq!(written(&sink), ["F:a.", "p:b", "p:b c", "F:b c d."]);
        let tally = emitter.finish().unwrap();
        assert_eq!((tally.partials, tally.partials_skipped), (2, 0));
        assert_eq!(
            (
                tally.utterances_with_partials,
                tally.stable_prefix_violations
            ),
            (1, 0)
        );
    }

    #[test]
    fn in_real_time_finals_go_first_and_late_partials_are_skipped() {
        let sink = CollectingSink::new();
        let mut emitter =
            Emitter::new(Box::new(sink.clone()), Instant::now()).with_realtime_partials(true);
        emitter.emit(partial(0, 1, 0, 0, "Hello")).unwrap();
        let mut last = transcript(0, "Hello there.");
        last.partials_before = 2;
        // The final does not wait for the second partial, which comes too late.
        emitter.emit(last).unwrap();
        emitter.emit(partial(0, 2, 1, 0, "Hello the")).unwrap();
        // A partial of the next utterance that came out of order: the newest one only.
        emitter.emit(partial(1, 3, 3, 1, "Good bye")).unwrap();
        emitter.emit(partial(1, 2, 2, 1, "Good")).unwrap();
        assert_eq!(written(&sink), ["p:Hello", "F:Hello there.", "p:Good bye"]);
        emitter.emit(transcript(1, "Goodbye.")).unwrap();
        let tally = emitter.finish().unwrap();
        assert_eq!((tally.partials, tally.partials_skipped), (2, 2));
        // "Good bye" had no stable words yet; "Hello" was never agreed twice either.
        assert_eq!(tally.stable_prefix_violations, 0);
        assert_eq!(tally.utterances_with_partials, 2);
    }
}
