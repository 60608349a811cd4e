//! **two_sources**: a meeting's two sides, each cut on its own and written as one transcript
//! in order of end of speech, every segment labelled with its source.

use std::time::Duration;

use steno_core::{
    Chunker, ChunkerConfig, RunOptions, RunReport, ScriptedTranscriber, Segment, Source, VecSource,
};

use super::{assert_completed, assert_same_segments, written};
use crate::audio::{Track, Written, energy, sample_at, scripted_text};
use crate::probe::Probe;
use crate::run::{FAST_DEADLINE, run, succeeded};
use crate::{BackendFactory, CaseResult};

/// The segments a correct run over labelled `tracks` writes, with their labels: each track's
/// chunks as the pure chunker cuts it, merged by end of speech (ties to the track given
/// first), numbered afresh in that order, each with the scripted text of its new number.
fn expected_merge(tracks: &[(&str, &Track)], config: &ChunkerConfig) -> Vec<(Written, String)> {
    let mut chunks = Vec::new();
    for (order, (label, track)) in tracks.iter().enumerate() {
        let mut chunker = Chunker::new(config).expect("the suite's chunker configuration");
        let mut cut = Vec::new();
        for block in track.samples.chunks(4096) {
            chunker.push(block, &mut cut);
        }
        chunker.finish(&mut cut);
        chunks.extend(cut.into_iter().map(|chunk| (chunk, order, *label)));
    }
    chunks.sort_by_key(|(chunk, order, _)| (chunk.speech_end_sample, *order));
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, (chunk, _, label))| {
            let written = Written {
                chunk: index,
                start: chunk.start_seconds(),
                end: chunk.end_seconds(),
                text: scripted_text(index, chunk.start_sample, chunk.end_sample()),
            };
            (written, label.to_owned())
        })
        .collect()
}

/// A source that takes a millisecond over each block: a slow decoder.
struct Slow(VecSource);

impl Source for Slow {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn next_block(&mut self) -> steno_core::Result<Option<Vec<f32>>> {
        std::thread::sleep(Duration::from_millis(1));
        self.0.next_block()
    }
}

/// Runs `mic` and `them` as two labelled sources; the run must succeed.
fn run_two(
    make: &BackendFactory,
    mic: &Track,
    them: &Track,
    options: RunOptions,
) -> Result<(Probe, RunReport), crate::Unsupported> {
    let probe = Probe::new();
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(20));
    // The microphone's whole track comes in one block and the other source slowly, so the
    // microphone is cut long before the other source: only the merge puts the two back in
    // time order.
    let whole = mic.samples.len().max(1);
    let pipeline = probe.pipeline_of_sources(
        vec![
            ("mic", Box::new(mic.source().with_block_len(whole))),
            ("them", Box::new(Slow(them.source()))),
        ],
        transcriber,
        energy(),
        options,
    );
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "the run");
    Ok((probe, report))
}

/// Panics unless `segments` are `expected` (texts, times, numbers and labels) in order, their
/// speech ends never go backwards, and `report` accounts for each source apart.
fn assert_merged(
    segments: &[Segment],
    report: &RunReport,
    expected: &[(Written, String)],
    tracks: &[(&str, &Track)],
    context: &str,
) {
    let (expected_written, expected_labels): (Vec<_>, Vec<_>) = expected.iter().cloned().unzip();
    assert_same_segments(&written(segments), &expected_written, context);
    let labels: Vec<String> = segments
        .iter()
        .map(|segment| segment.source.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        labels, expected_labels,
        "{context}: every segment carries its source's label"
    );
    for pair in segments.windows(2) {
        assert!(
            pair[0].speech_end <= pair[1].speech_end,
            "{context}: segments are not in order of end of speech: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    let sources: Vec<(&str, u64, usize, u64)> = report
        .sources
        .iter()
        .map(|source| {
            let samples = sample_at(source.audio_seconds);
            (
                source.label.as_str(),
                samples,
                source.segments,
                source.dropped_samples,
            )
        })
        .collect();
    let wanted: Vec<(&str, u64, usize, u64)> = tracks
        .iter()
        .map(|(label, track)| {
            let segments = expected_labels.iter().filter(|l| l == label).count();
            (*label, track.len(), segments, 0)
        })
        .collect();
    assert_eq!(
        sources, wanted,
        "{context}: the report's sources (label, samples read, segments, dropped)"
    );
    assert_eq!(
        report.segments_out_of_order,
        Some(0),
        "{context}: the report counts segments written out of time order"
    );
    assert!(
        report.merge_wait_ms.is_some(),
        "{context}: the report measures how long chunks were held for time order"
    );
}

/// **two_sources**: two labelled sources in one run.
///
/// A microphone track and a speakers track whose utterances overlap in time (one ends while
/// the other is still speaking, one starts in the other's pause, the speakers go on after the
/// microphone's stream has ended), cut each on its own; the microphone's track is read in one
/// block, so offline its chunks are all cut before the speakers' first one; in real time
/// with early start (provisional chunks go on at once, their final chunks through the merge).
/// Asserts, offline and then in real
/// time: the sink receives exactly the merge of what the pure chunker cuts in each track,
/// in order of end of speech, numbered in that order, with the scripted text of each number
/// (so a transcriber saw each chunk once, under its merged number); each segment carries its
/// source's label; the report gives each source's samples read, segments and drops, and no
/// segment out of order; in real time early decodes are used (under the merged numbers, as
/// the scripted texts show); a second offline run gives the same output; the report counts all
/// the audio of both sources; every stage is released.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines a run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn two_sources(make: &BackendFactory) -> CaseResult {
    let mic = Track::new()
        .silence(0.3)
        .speech(1.0)
        .silence(0.8)
        .speech(2.4)
        .silence(0.6)
        .speech(0.4)
        .silence(0.5);
    let them = Track::new()
        .silence(0.9)
        .speech(0.6)
        .silence(0.9)
        .speech(0.5)
        .silence(1.7)
        .speech(1.2)
        .silence(0.7)
        .speech(0.5)
        .silence(0.5);
    let tracks = [("mic", &mic), ("them", &them)];
    let expected = expected_merge(&tracks, &energy());
    let labels: Vec<&str> = expected.iter().map(|(_, label)| label.as_str()).collect();
    assert!(
        labels.windows(2).any(|pair| pair[0] == pair[1])
            && labels.windows(2).any(|pair| pair[0] != pair[1]),
        "two_sources: the fixture must interleave the sources: {labels:?}"
    );
    let mut outputs = Vec::new();
    // A ring that holds the microphone's whole track.
    let mut offline = RunOptions::default();
    offline.ring_capacity = mic.samples.len();
    for attempt in ["offline", "offline, again"] {
        let (probe, report) = run_two(make, &mic, &them, offline.clone())?;
        let context = format!("two_sources ({attempt})");
        let segments = probe.segments();
        assert_merged(&segments, &report, &expected, &tracks, &context);
        assert_completed(&probe, &report, mic.len() + them.len(), &context);
        outputs.push(written(&segments));
    }
    assert_eq!(outputs[0], outputs[1], "two_sources: two runs differ");
    // Real time as `live` runs it: each utterance decoded early, its final chunk merged.
    let mut realtime = RunOptions::default();
    realtime.realtime = true;
    realtime.early_start = true;
    let (probe, report) = run_two(make, &mic, &them, realtime)?;
    let context = "two_sources (real time)";
    assert_merged(&probe.segments(), &report, &expected, &tracks, context);
    assert!(
        report.early_starts_used >= 1,
        "{context}: no final chunk took its early decode (used {}, discarded {})",
        report.early_starts_used,
        report.early_starts_discarded
    );
    assert_completed(&probe, &report, mic.len() + them.len(), context);
    Ok(())
}
