//! The emitter's order, accounting and partials, on scripted transcripts.

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
        restarts_cut: 0,
        temperature_fallbacks: 0,
        provisional: false,
        early_decoded: false,
        partial: None,
        shown_as_partial: None,
        skipped: false,
        partials_before: 0,
        utterances: Vec::new(),
        timed: Vec::new(),
        language: None,
        confidence: None,
        words: Vec::new(),
        word_probabilities: Vec::new(),
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

#[test]
fn in_real_time_a_provisional_decode_with_a_place_among_the_partials_is_shown_as_one() {
    let sink = CollectingSink::new();
    let mut emitter =
        Emitter::new(Box::new(sink.clone()), Instant::now()).with_realtime_partials(true);
    let provisional = |chunk: usize, end_s: u64, seq: u64, text: &str| {
        let shown = partial(chunk, end_s, seq, chunk, text);
        Transcript {
            provisional: true,
            early_decoded: true,
            shown_as_partial: shown.partial.clone(),
            partial: None,
            ..shown
        }
    };
    // The speaker paused after two words: the early decode is the first partial. Speech
    // resumed, so a later partial point and the final follow.
    emitter.emit(provisional(0, 1, 0, "Hello there")).unwrap();
    emitter.emit(partial(0, 2, 1, 0, "Hello there my")).unwrap();
    emitter
        .emit(transcript(0, "Hello there my friend."))
        .unwrap();
    // The next utterance's early decode had no words: nothing to show. And one that arrives
    // after its final is not shown either.
    emitter.emit(provisional(1, 3, 2, "")).unwrap();
    emitter.emit(transcript(1, "Bye.")).unwrap();
    emitter.emit(provisional(1, 3, 3, "Bye.")).unwrap();
    assert_eq!(
        written(&sink),
        [
            "p:Hello there",
            "p:Hello there my",
            "F:Hello there my friend.",
            "F:Bye."
        ]
    );
    assert_eq!(
        emitter.newly_written(),
        6,
        "every transcript's run-ahead token comes back once"
    );
    let tally = emitter.finish().unwrap();
    assert_eq!((tally.partials, tally.partials_skipped), (2, 0));
    assert_eq!(
        tally.first_partial_ms.len(),
        1,
        "the early decode's words came first"
    );
    assert_eq!(tally.early_starts_discarded, 3);
}
