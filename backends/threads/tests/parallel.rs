//! The threads backend runs as many transcribers as the cores allow and writes their
//! transcripts in chunk order, with the text one transcriber gives.

use std::sync::Arc;
use std::time::Duration;

use steno_core::{
    Backend, ChunkerConfig, CollectingSink, CountingTranscriber, Pipeline, ScriptedTranscriber,
    Segment, VadKind, VecSource,
};
use steno_threads::ThreadsBackend;

/// Twelve bursts of "speech", long and short alternating, so later chunks often finish first.
fn session() -> Vec<f32> {
    let mut audio = vec![0.0; 8_000];
    for i in 0..12 {
        let seconds = if i % 3 == 0 { 2.0 } else { 0.4 };
        audio.extend((0..(seconds * 16_000.0) as usize).map(|i| 0.3 * (i as f32 * 0.05).sin()));
        audio.extend(vec![0.0; 12_000]);
    }
    audio
}

/// Runs the session on `backend` with the scripted transcriber (one thread per state);
/// returns its segments and the most decodes at once.
fn run(backend: &ThreadsBackend) -> (Vec<Segment>, usize) {
    let counting = Arc::new(CountingTranscriber::new(
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(40)),
    ));
    let sink = CollectingSink::new();
    let pipeline = Pipeline::builder(VecSource::new(session()), counting.clone(), sink.clone())
        .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
        .build()
        .expect("the pipeline builds");
    let report = backend.run(pipeline).expect("the run succeeds");
    assert_eq!(report.chunks, 12);
    assert!(sink.is_finished());
    (sink.segments(), counting.most_at_once())
}

#[test]
fn one_state_per_core_decodes_side_by_side_and_writes_in_order() {
    let (sequential, most) = run(&ThreadsBackend::new().with_max_inferences(1));
    assert_eq!(most, 1, "with_max_inferences(1) keeps one decode at a time");

    let (parallel, most) = run(&ThreadsBackend::new());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores >= 2 {
        assert!(
            most >= 2,
            "1-thread states on {cores} cores, but one decode at a time"
        );
    }
    assert!(most <= cores, "{most} decodes at once on {cores} cores");
    let chunks: Vec<usize> = parallel.iter().map(|s| s.chunk).collect();
    assert_eq!(
        chunks,
        (0..12).collect::<Vec<_>>(),
        "segments in chunk order"
    );
    let texts = |segments: &[Segment]| segments.iter().map(|s| s.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&parallel), texts(&sequential));
}
