//! The emitter: transcripts to the sink in chunk order, with partial hypotheses between them
//! (see [`crate::interim`]), and the run's tally of what was written.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{SourceCounters, SourceTally, Transcript, WindowPart, window_parts};
use crate::echo::EchoGuard;
use crate::interim::{PartialQueue, Stability, first_words_ms};
use crate::report::RunTally;
use crate::{
    Confidence, Error, Partial, Progress, Result, SAMPLE_RATE, Segment, Sink, TimedWord, Utterance,
    Word,
};

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
    pub fn emit(&mut self, mut transcript: Transcript) -> Result<()> {
        if transcript.provisional {
            // Its text waits in the early decode for the final chunk; it is only counted,
            // unless it is also to be shown as a partial and its final is not out yet.
            self.provisional_unreported += 1;
            self.early_decodes += u64::from(transcript.early_decoded);
            let Some(point) = transcript.shown_as_partial.take() else {
                return Ok(());
            };
            if transcript.text.is_empty() || transcript.chunk < self.next_utterance {
                return Ok(());
            }
            transcript.provisional = false;
            transcript.partial = Some(point);
            self.partials.push(transcript);
        } else if transcript.partial.is_some() {
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
        self.tally.restarts_cut += u64::from(next.restarts_cut);
        self.tally.temperature_fallbacks += u64::from(next.temperature_fallbacks);
        self.tally.early_starts_used += u64::from(next.early_decoded);
        // A packed window is written as one segment per utterance, each with its part of the
        // window's text; a chunk of its own is a window of one utterance.
        let utterances = if next.utterances.is_empty() {
            vec![Utterance {
                index: next.chunk,
                start_sample: next.start_sample,
                end_sample: next.end_sample,
                speech_end_sample: next.speech_end_sample,
            }]
        } else {
            next.utterances.clone()
        };
        self.tally.chunks += utterances.len();
        self.tally.packed_windows += u64::from(utterances.len() > 1);
        let whole = WindowPart::whole(next.text.clone(), next.confidence, next.words.clone());
        let parts = window_parts(&utterances, &next.timed, whole);
        for (utterance, part) in utterances.into_iter().zip(parts) {
            let words = timed_words(&part.words, utterance);
            self.write(next, utterance, part.text, part.confidence, words)?;
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
        let (text, stable) = self.stability.partial(
            transcript.chunk,
            &transcript.text,
            &transcript.word_probabilities,
        );
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
    fn write(
        &mut self,
        transcript: &Transcript,
        utterance: Utterance,
        text: String,
        confidence: Option<Confidence>,
        words: Option<Vec<TimedWord>>,
    ) -> Result<()> {
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
            avg_logprob: confidence.map(|c| c.avg_logprob),
            no_speech_prob: confidence.map(|c| c.no_speech_prob),
            words,
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

/// `words`, timed in samples from `utterance`'s start, as the words of its segment in
/// seconds, kept inside it (an aligner's last word may run on into the silence after it);
/// `None` when there are none (words were not asked for).
fn timed_words(words: &[Word], utterance: Utterance) -> Option<Vec<TimedWord>> {
    let rate = f64::from(SAMPLE_RATE);
    // Words are timed from the utterance's start, so only its end can be overrun.
    let inside =
        |sample: u64| (utterance.start_sample + sample).min(utterance.end_sample) as f64 / rate;
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|word| TimedWord {
                word: word.text.clone(),
                start: inside(word.start),
                end: inside(word.end.max(word.start)),
                p: word.probability,
            })
            .collect()
    })
}

#[cfg(test)]
mod tests;
