//! The fast cases: synthetic tones, the energy detector and the scripted transcriber from
//! core, so each case is quick and exact, and needs no model.
//!
//! Every check runs its pipelines on a thread of its own and fails (instead of hanging) when
//! a run does not return within a deadline. After every run it also checks that the backend
//! released every stage object it was given (the source, the sink, each transcriber): a
//! backend that returns while something it spawned still runs fails the case. The pipelines'
//! stages are instrumented (see the `probe` module) so that the checks observe the backend
//! from outside: which chunks transcribers received, what the sink got, and when.

use std::ops::Range;
use std::time::{Duration, Instant};

use steno_core::{
    ChunkerConfig, Error, FRAME_LEN, Partial, RunOptions, RunReport, ScriptedTranscriber, Segment,
    Update, VadKind, VecSource,
};

mod sources;

pub use sources::two_sources;

use crate::audio::{
    Track, Written, energy, expected_partials, expected_provisionals, expected_segments,
    quiet_noise, sample_at, samples_in, scripted_text, seconds_of,
};
use crate::probe::{ChunkSeen, PROBE_SINK, Probe};
use crate::run::{FAST_DEADLINE, run, start, succeeded};
use crate::{BackendFactory, CaseResult};

/// How soon after [`steno_core::CancelToken::cancel`] a run must have returned. A correct
/// backend needs a few milliseconds; the margin absorbs a loaded machine.
pub const CANCEL_BOUND: Duration = Duration::from_secs(3);

/// The segments the probe's sink received, without wall-clock fields.
fn written(segments: &[Segment]) -> Vec<Written> {
    segments.iter().map(Written::from).collect()
}

/// Panics unless `actual` equals `expected`, naming the first difference (the lists can
/// hold hundreds of segments).
fn assert_same_segments(actual: &[Written], expected: &[Written], context: &str) {
    if actual == expected {
        return;
    }
    let first = actual
        .iter()
        .zip(expected)
        .position(|(a, e)| a != e)
        .unwrap_or(actual.len().min(expected.len()));
    panic!(
        "{context}: got {} segments, expected {}; first difference at position {first}: got \
         {:?}, expected {:?}",
        actual.len(),
        expected.len(),
        actual.get(first),
        expected.get(first)
    );
}

/// Sample range of a segment.
fn range_of(segment: &Segment) -> Range<u64> {
    sample_at(segment.start)..sample_at(segment.end)
}

/// Panics unless `chunk` holds all of `speech` and at most the configured padding (in whole
/// detector frames, plus one frame: the detector's resolution) of audio on either side.
fn assert_covers(chunk: &Range<u64>, speech: &Range<u64>, config: &ChunkerConfig, context: &str) {
    let frame = FRAME_LEN as u64;
    let slack = |padding: Duration| {
        (samples_in(padding.as_secs_f64()) as u64).div_ceil(frame) * frame + frame
    };
    let (before, after) = (
        slack(config.leading_padding),
        slack(config.trailing_padding),
    );
    assert!(
        chunk.start <= speech.start && speech.end <= chunk.end,
        "{context}: chunk {chunk:?} does not hold all of the utterance at {speech:?}"
    );
    assert!(
        speech.start - chunk.start <= before && chunk.end - speech.end <= after,
        "{context}: chunk {chunk:?} reaches more than the padding ({before} samples before, \
         {after} after) beyond the utterance at {speech:?}"
    );
}

/// Panics unless every segment's text is the scripted text of its own chunk (so texts were
/// not attached to the wrong chunk).
fn assert_texts_match_chunks(segments: &[Segment], context: &str) {
    for segment in segments {
        let range = range_of(segment);
        assert_eq!(
            segment.text,
            scripted_text(segment.chunk, range.start, range.end),
            "{context}: the text of a segment belongs to another chunk: {segment:?}"
        );
    }
}

/// Panics unless `chunks` (by index) are numbered 0, 1, 2, ... with no index missing or
/// repeated.
fn assert_indices_contiguous(chunks: &[ChunkSeen], context: &str) {
    let indices: Vec<usize> = chunks.iter().map(|chunk| chunk.index).collect();
    let expected: Vec<usize> = (0..chunks.len()).collect();
    assert_eq!(
        indices, expected,
        "{context}: transcribers must receive each chunk index once, from 0 up"
    );
}

/// Panics unless a successful run's output is complete: the sink finished, the report counts
/// what the sink got and every stage object was released.
fn assert_completed(probe: &Probe, report: &RunReport, input_samples: u64, context: &str) {
    assert!(
        probe.is_finished(),
        "{context}: a successful run must call the sink's finish"
    );
    assert_eq!(
        report.segments,
        probe.segments().len(),
        "{context}: the report's segment count differs from what the sink received"
    );
    assert_eq!(
        sample_at(report.audio_seconds),
        input_samples,
        "{context}: the report's audio_seconds is not the length of the input"
    );
    probe.assert_released(context);
}

/// Runs `track`, cut by `config`, with `transcriber` and default options; the run must
/// succeed. Returns the probe and the report.
fn run_track(
    make: &BackendFactory,
    track: &Track,
    config: &ChunkerConfig,
    transcriber: ScriptedTranscriber,
) -> Result<(Probe, RunReport), crate::Unsupported> {
    let probe = Probe::new();
    let pipeline = probe.pipeline(
        track.source(),
        transcriber,
        config.clone(),
        RunOptions::default(),
    );
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "the run");
    Ok((probe, report))
}

/// **ordering**: segments come out in audio order with monotonic timestamps.
///
/// Ten utterances of very different lengths; the scripted transcriber costs time per second
/// of audio, so a backend that transcribes in parallel finishes short chunks before long
/// ones and must put them back in order. Asserts: the sink receives chunks 0 to 9, once each,
/// in order; each segment's text is its own chunk's; each segment holds its utterance and no
/// more than the padding around it; start and end times never go backwards or overlap;
/// `emitted_at` never decreases; the output equals what the pure chunker predicts; the report
/// counts 10 chunks and 10 segments; the sink is finished.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn ordering(make: &BackendFactory) -> CaseResult {
    const LENGTHS: [f64; 10] = [2.0, 0.3, 1.2, 0.4, 2.5, 0.3, 0.8, 0.3, 1.5, 0.3];
    let track = Track::new().silence(0.5).utterances(&LENGTHS, 0.6);
    let config = energy();
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(20));
    let (probe, report) = run_track(make, &track, &config, transcriber)?;
    let segments = probe.segments();

    let chunks: Vec<usize> = segments.iter().map(|segment| segment.chunk).collect();
    assert_eq!(
        chunks,
        (0..LENGTHS.len()).collect::<Vec<_>>(),
        "ordering: segments must reach the sink once each, in chunk order"
    );
    assert_texts_match_chunks(&segments, "ordering");
    for (segment, speech) in segments.iter().zip(&track.speech) {
        assert_covers(&range_of(segment), speech, &config, "ordering");
    }
    for pair in segments.windows(2) {
        assert!(
            pair[0].start < pair[0].end && pair[0].end <= pair[1].start,
            "ordering: audio timestamps go backwards or overlap: {:?} then {:?}",
            pair[0],
            pair[1]
        );
        assert!(
            pair[0].emitted_at <= pair[1].emitted_at,
            "ordering: emitted_at goes backwards: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    assert_same_segments(
        &written(&segments),
        &expected_segments(&track.samples, &config),
        "ordering: the output differs from the chunks the pure chunker makes of this audio",
    );
    assert_eq!(
        (report.chunks, report.segments),
        (LENGTHS.len(), LENGTHS.len()),
        "ordering: the report's chunk and segment counts"
    );
    assert_completed(&probe, &report, track.len(), "ordering");
    Ok(())
}

/// **accounting**: every input sample lands in exactly one chunk or is counted as dropped;
/// chunk coverage has no gap or overlap beyond the configured padding.
///
/// Two runs, offline (an offline run never drops: it waits):
/// - fixed 1 s windows over 3.3 s: the chunks transcribers receive tile the input exactly
///   (first at sample 0, each starting where the previous ended, the last ending at the last
///   sample), none longer than the window, and `dropped_samples` is 0;
/// - the energy detector over utterances whose paddings would overlap: each utterance lies
///   in exactly one chunk, chunks never overlap, every chunk holds speech, and no chunk
///   reaches more than the padding (plus one detector frame) beyond its utterance.
///
/// Both check that the report counts the chunks transcribed and the whole input.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines a run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn accounting(make: &BackendFactory) -> CaseResult {
    // Fixed windows: every sample belongs to a chunk.
    let track = Track::new()
        .silence(0.4)
        .speech(1.1)
        .silence(0.9)
        .speech(0.6)
        .silence(0.3);
    let window = Duration::from_secs(1);
    let fixed = ChunkerConfig::default()
        .with_vad(VadKind::Fixed)
        .with_fixed_window(window);
    let (probe, report) = run_track(make, &track, &fixed, ScriptedTranscriber::new())?;
    let chunks = probe.chunks();
    assert_indices_contiguous(&chunks, "accounting (fixed windows)");
    let mut next = 0;
    for chunk in &chunks {
        assert_eq!(
            chunk.start_sample, next,
            "accounting (fixed windows): chunk {} starts at sample {} but the previous chunk \
             ended at {next} (a gap or an overlap)",
            chunk.index, chunk.start_sample
        );
        assert!(
            chunk.len > 0 && chunk.len <= samples_in(window.as_secs_f64()) as u64,
            "accounting (fixed windows): chunk {chunk:?} is empty or longer than the window"
        );
        next = chunk.end_sample();
    }
    assert_eq!(
        next,
        track.len(),
        "accounting (fixed windows): the chunks end at sample {next}, the input at {}",
        track.len()
    );
    assert_eq!(
        chunks.len(),
        4,
        "accounting (fixed windows): 3.3 s in 1 s windows"
    );
    assert_eq!(
        report.dropped_samples, 0,
        "accounting (fixed windows): an offline run must wait, never drop"
    );
    assert_eq!(report.chunks, chunks.len(), "accounting: report.chunks");
    assert_completed(&probe, &report, track.len(), "accounting (fixed windows)");

    // The energy detector: the utterances' paddings overlap, the chunks must not.
    let track = Track::new()
        .silence(0.3)
        .utterances(&[0.5, 1.0, 0.25, 2.0, 0.7, 0.4], 0.3);
    let config = energy().with_min_silence(Duration::from_millis(250));
    let (probe, report) = run_track(make, &track, &config, ScriptedTranscriber::new())?;
    let chunks = probe.chunks();
    assert_indices_contiguous(&chunks, "accounting (energy)");
    for pair in chunks.windows(2) {
        assert!(
            pair[0].end_sample() <= pair[1].start_sample,
            "accounting (energy): chunks {:?} and {:?} overlap",
            pair[0],
            pair[1]
        );
    }
    let ranges: Vec<Range<u64>> = chunks
        .iter()
        .map(|chunk| chunk.start_sample..chunk.end_sample())
        .collect();
    for speech in &track.speech {
        let holding: Vec<&Range<u64>> = ranges
            .iter()
            .filter(|range| range.start < speech.end && speech.start < range.end)
            .collect();
        assert_eq!(
            holding.len(),
            1,
            "accounting (energy): the utterance at {speech:?} must lie in exactly one chunk, \
             it touches {holding:?}"
        );
        assert_covers(holding[0], speech, &config, "accounting (energy)");
    }
    assert_eq!(
        chunks.len(),
        track.speech.len(),
        "accounting (energy): one chunk per utterance, no chunk of silence alone"
    );
    assert_eq!(report.dropped_samples, 0, "accounting (energy): dropped");
    assert_eq!(
        report.chunks,
        chunks.len(),
        "accounting (energy): report.chunks"
    );
    assert_completed(&probe, &report, track.len(), "accounting (energy)");
    Ok(())
}

/// **end of stream flushes**: trailing speech with no silence after it is still transcribed.
///
/// Three inputs: one ending in the middle of an utterance, one that is a single utterance
/// from the first sample to the last, and one whose last utterance is followed by less
/// silence than it takes to close it. In each, the last segment holds the last utterance and
/// the output equals what the pure chunker predicts (which flushes at the end); where the
/// input ends in speech, the last segment ends exactly at the end of the input.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines a run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn end_of_stream_flush(make: &BackendFactory) -> CaseResult {
    let config = energy();
    let tracks = [
        (
            "ending in speech",
            Track::new()
                .silence(0.5)
                .speech(1.0)
                .silence(0.8)
                .speech(0.7),
        ),
        ("speech only", Track::new().speech(0.9)),
        (
            "short trailing silence",
            Track::new().silence(0.5).speech(0.6).silence(0.25),
        ),
    ];
    for (name, track) in &tracks {
        let context = format!("end_of_stream_flush ({name})");
        let (probe, report) = run_track(make, track, &config, ScriptedTranscriber::new())?;
        let segments = probe.segments();
        assert_eq!(
            segments.len(),
            track.speech.len(),
            "{context}: one segment per utterance, the last one included"
        );
        let (Some(last), Some(last_speech)) = (segments.last(), track.speech.last()) else {
            unreachable!("every track has speech");
        };
        assert_covers(&range_of(last), last_speech, &config, &context);
        if last_speech.end == track.len() {
            assert_eq!(
                sample_at(last.end),
                track.len(),
                "{context}: the last segment must end where the input ends"
            );
        }
        assert_same_segments(
            &written(&segments),
            &expected_segments(&track.samples, &config),
            "{context}: the output differs from the pure chunker's",
        );
        assert_completed(&probe, &report, track.len(), &context);
    }
    Ok(())
}

/// **empty input and silence-only input**: no segments and a clean report.
///
/// Three inputs: no samples at all, 2 s of digital silence, 2 s of quiet noise. Each run must
/// succeed with no chunk handed to a transcriber, no segment written, a finished sink, and a
/// report of 0 chunks, 0 segments, 0 dropped samples, zero latencies and the input's length.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines a run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn empty_and_silence(make: &BackendFactory) -> CaseResult {
    let inputs = [
        ("empty input", Vec::new()),
        ("digital silence", vec![0.0; samples_in(2.0)]),
        ("quiet noise", quiet_noise(samples_in(2.0))),
    ];
    for (name, samples) in inputs {
        let context = format!("empty_and_silence ({name})");
        let track = Track {
            samples,
            speech: Vec::new(),
        };
        let (probe, report) = run_track(make, &track, &energy(), ScriptedTranscriber::new())?;
        assert!(
            probe.chunks().is_empty(),
            "{context}: no chunk may reach a transcriber, got {:?}",
            probe.chunks()
        );
        assert!(
            probe.segments().is_empty(),
            "{context}: no segment may be written, got {:?}",
            probe.segments()
        );
        assert_eq!(
            (report.chunks, report.segments, report.dropped_samples),
            (0, 0, 0),
            "{context}: report chunks, segments and dropped samples"
        );
        assert_eq!(
            (
                report.latency_ms,
                report.speech_end_latency_ms,
                report.overhead_ms
            ),
            (None, None, None),
            "{context}: no segment, so no latency to report (null, not zeros)"
        );
        assert_completed(&probe, &report, track.len(), &context);
    }
    Ok(())
}

/// **backpressure**: a transcriber slower than real time on real-time input keeps memory
/// bounded, and what was dropped is counted.
///
/// The policy every backend follows: real-time input (a microphone) is never waited for.
/// When transcription falls behind, the bounded queues fill (`queue_capacity` chunks waiting
/// for a transcriber, as many transcripts waiting for the sink), the chunker stops draining
/// the ring, and the samples that do not fit in the ring (`ring_capacity`) are dropped and
/// counted in `RunReport::dropped_samples`. Chunks already cut are never discarded: each is
/// transcribed and written.
///
/// The run: real-time input cut in fixed 0.1 s windows, a ring of 800 samples, queues of one,
/// and transcribers that stall on their first chunk until the source has delivered its last
/// sample. The input is half again as long as the most the pipeline may hold, so a backend
/// that buffers without bound fails. Asserts:
/// - the source reached its end while the transcriber was stalled (a real-time source must
///   not be held up by a slow transcriber);
/// - samples in chunks + `dropped_samples` = samples read (each sample lands in exactly one
///   chunk or is counted as dropped), and the chunks tile what was not dropped;
/// - something was dropped, and the samples kept (input minus dropped) are at most
///   `ring_capacity + (queue_capacity + workers + 2) x window`, where `workers` is the
///   number of cores (chunks held by the chunker, the queue, and each stalled transcriber,
///   plus the chunker's partial window);
/// - every chunk cut is written; transcriptions started but not written never exceed
///   `queue_capacity + workers + 1` (counted at each start; for transcribers in worker
///   processes, from the starts they count in a file, sampled at each write).
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines real-time input.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn backpressure(make: &BackendFactory) -> CaseResult {
    let window = samples_in(0.1) as u64;
    let ring_capacity = 800;
    let queue_capacity = 1;
    let workers = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    let bound = ring_capacity as u64 + (queue_capacity as u64 + workers + 2) * window;
    let total = (bound * 3 / 2).div_ceil(window) * window;
    let track = Track::new().speech(seconds_of(total));
    let config = ChunkerConfig::default()
        .with_vad(VadKind::Fixed)
        .with_fixed_window(Duration::from_millis(100));
    let mut options = RunOptions::default();
    options.realtime = true;
    options.ring_capacity = ring_capacity;
    options.queue_capacity = queue_capacity;
    let probe =
        Probe::stalling(Duration::from_secs(10) + Duration::from_secs_f64(seconds_of(total)));
    let pipeline = probe.pipeline(track.source(), ScriptedTranscriber::new(), config, options);
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "backpressure");

    assert!(
        !probe.stall_timed_out(),
        "backpressure: the real-time source did not reach its end while the transcriber was \
         stalled: a slow transcriber held up the input, but a microphone cannot wait"
    );
    assert_eq!(
        probe.samples_read(),
        track.len(),
        "backpressure: the source must be read to its end"
    );
    let chunks = probe.chunks();
    assert_indices_contiguous(&chunks, "backpressure");
    let mut next = 0;
    for chunk in &chunks {
        assert_eq!(
            chunk.start_sample, next,
            "backpressure: chunk {} starts at {} but the previous ended at {next}",
            chunk.index, chunk.start_sample
        );
        next = chunk.end_sample();
    }
    let dropped = report.dropped_samples;
    assert_eq!(
        next + dropped,
        track.len(),
        "backpressure: {next} samples in chunks + {dropped} dropped must be the {} read",
        track.len()
    );
    assert!(
        dropped > 0,
        "backpressure: nothing was dropped although the transcriber was stalled for the \
         whole input: the pipeline buffered all of it"
    );
    let kept = track.len() - dropped;
    assert!(
        kept <= bound,
        "backpressure: the pipeline held {kept} samples while the transcriber was stalled; \
         the bound is {bound} (ring {ring_capacity} + (queue {queue_capacity} + {workers} \
         workers + 2) x {window}-sample chunks)"
    );
    assert_eq!(
        probe.segments().len(),
        chunks.len(),
        "backpressure: every chunk cut must be transcribed and written, none discarded"
    );
    let in_flight_bound = queue_capacity + workers as usize + 1;
    assert!(
        probe.max_in_flight() <= in_flight_bound,
        "backpressure: {} transcriptions were in flight at once (bound {in_flight_bound})",
        probe.max_in_flight()
    );
    assert!(
        report.realtime,
        "backpressure: the report must say real-time"
    );
    assert_eq!(report.chunks, chunks.len(), "backpressure: report.chunks");
    assert_completed(&probe, &report, track.len(), "backpressure");
    Ok(())
}

/// **real-time pacing**: real-time input is read no faster than it was spoken, and each segment
/// is written after its audio ended, with its latency measured.
///
/// Two utterances, `realtime` on. Asserts: the run took at least the length of the audio (less
/// 5 % for timer slack); every segment was written after its end (`emitted_at >= end`, less
/// 20 ms); nothing was dropped; the segments are exactly the pure chunker's; the report says
/// real-time and carries a latency summary.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines real-time input.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn realtime_pacing(make: &BackendFactory) -> CaseResult {
    let track = Track::new().silence(0.5).utterances(&[0.6, 0.6], 0.75);
    let config = energy();
    let probe = Probe::new();
    let mut options = RunOptions::default();
    options.realtime = true;
    let pipeline = probe.pipeline(
        track.source(),
        ScriptedTranscriber::new(),
        config.clone(),
        options,
    );
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "realtime_pacing");

    let audio_seconds = seconds_of(track.len());
    assert!(
        report.wall_seconds >= audio_seconds * 0.95,
        "realtime_pacing: {audio_seconds:.2} s of real-time audio took only {:.2} s: the \
         input was not paced",
        report.wall_seconds
    );
    let segments = probe.segments();
    for segment in &segments {
        assert!(
            segment.emitted_at >= segment.end - 0.02,
            "realtime_pacing: a segment was written at {:.3} s, before its audio ended at \
             {:.3} s",
            segment.emitted_at,
            segment.end
        );
    }
    assert_same_segments(
        &written(&segments),
        &expected_segments(&track.samples, &config),
        "realtime_pacing",
    );
    assert_eq!(
        report.dropped_samples, 0,
        "realtime_pacing: dropped samples"
    );
    assert!(
        report.realtime,
        "realtime_pacing: the report must say real-time"
    );
    assert!(
        report
            .latency_ms
            .is_some_and(|latency| latency.p50 > 0.0 && latency.max >= latency.p50),
        "realtime_pacing: the report must summarise the segments' latency, got {:?}",
        report.latency_ms
    );
    assert_completed(&probe, &report, track.len(), "realtime_pacing");
    Ok(())
}

/// **cancellation**: cancelling mid-stream ends the run within a bounded time, and everything
/// the backend spawned is joined.
///
/// A long input (100 utterances, about 9 s of scripted transcription) is cancelled through
/// `RunOptions::cancel` as soon as the first segment is written. Asserts: the run returns
/// [`Error::Cancelled`] within [`CANCEL_BOUND`] of the cancel; the input had not been fully
/// transcribed (the cancel came mid-stream); what was written is a prefix of the full output,
/// in order; the sink was not finished (a cancelled output is not complete); every stage
/// object was released when the run returned.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn cancellation(make: &BackendFactory) -> CaseResult {
    const UTTERANCES: usize = 100;
    let track = Track::new()
        .silence(0.3)
        .utterances(&[0.5; UTTERANCES], 0.5);
    let config = energy();
    let probe = Probe::new();
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(100));
    let options = RunOptions::default();
    let cancel = options.cancel.clone();
    let handle = start(
        make,
        probe.pipeline(track.source(), transcriber, config.clone(), options),
    );
    let waiting_since = Instant::now();
    while !probe.wait_for_segments(1, Duration::from_millis(20)) {
        if let Some(finished) = handle.try_finished() {
            let result = finished.supported()?;
            panic!("cancellation: the run ended before writing anything: {result:?}");
        }
        assert!(
            waiting_since.elapsed() < FAST_DEADLINE,
            "cancellation: the {} backend wrote no segment within {FAST_DEADLINE:?}",
            handle.backend()
        );
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let finished = handle.finish(FAST_DEADLINE);
    let took = finished.ended_at.saturating_duration_since(cancelled_at);
    let result = finished.supported()?;

    assert!(
        matches!(result, Err(Error::Cancelled)),
        "cancellation: a cancelled run must end with Error::Cancelled, got {result:?}"
    );
    assert!(
        took <= CANCEL_BOUND,
        "cancellation: the run returned {took:?} after the cancel (bound {CANCEL_BOUND:?})"
    );
    let segments = written(&probe.segments());
    let expected = expected_segments(&track.samples, &config);
    assert!(
        segments.len() < UTTERANCES,
        "cancellation: all {UTTERANCES} utterances were written: the cancel was ignored"
    );
    assert_same_segments(
        &segments,
        &expected[..segments.len()],
        "cancellation: what was written before the cancel must be the start of the output",
    );
    assert!(
        !probe.is_finished(),
        "cancellation: a cancelled run must not finish its sink (the output is partial)"
    );
    probe.assert_released("cancellation");
    Ok(())
}

/// **transcriber error on chunk k**: earlier segments are delivered, the run ends with that
/// error, and does not hang.
///
/// Six utterances; the scripted transcriber fails on chunk 3. Asserts: the run returns
/// [`Error::Transcribe`] naming chunk 3; the sink received exactly chunks 0, 1 and 2, with
/// their texts, and nothing after them; the sink was not finished; every stage object was
/// released.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn transcriber_error(make: &BackendFactory) -> CaseResult {
    const FAILING: usize = 3;
    let track = Track::new()
        .silence(0.3)
        .utterances(&[0.6, 0.9, 0.4, 0.7, 0.5, 0.8], 0.6);
    let config = energy();
    let probe = Probe::new();
    let transcriber = ScriptedTranscriber::new()
        .with_cost_per_audio_second(Duration::from_millis(10))
        .with_failure_on_chunk(FAILING);
    let pipeline = probe.pipeline(
        track.source(),
        transcriber,
        config.clone(),
        RunOptions::default(),
    );
    let result = run(make, pipeline, FAST_DEADLINE)?;

    assert!(
        matches!(result, Err(Error::Transcribe { chunk: FAILING, .. })),
        "transcriber_error: the run must end with the transcriber's error on chunk \
         {FAILING}, got {result:?}"
    );
    assert_same_segments(
        &written(&probe.segments()),
        &expected_segments(&track.samples, &config)[..FAILING],
        &format!(
            "transcriber_error: the segments of chunks before {FAILING} must be delivered, \
             and none after"
        ),
    );
    assert!(
        !probe.is_finished(),
        "transcriber_error: a failed run must not finish its sink"
    );
    probe.assert_released("transcriber_error");
    Ok(())
}

/// **source error mid-stream** (a truncated file): the same guarantees as a transcriber
/// error.
///
/// The policy: an input error ends the stream there. The audio read before it is chunked,
/// transcribed and delivered as at a normal end of stream (the utterance in progress is
/// flushed), then the run ends with the input error and the sink is not finished, so the
/// output is visibly partial. The input fails in the middle of its third utterance.
/// Asserts: the run returns the source's [`Error::Input`]; the sink received exactly the
/// segments a complete run over the samples before the failure would write; the sink was not
/// finished; every stage object was released.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn source_error(make: &BackendFactory) -> CaseResult {
    let track = Track::new()
        .silence(0.3)
        .utterances(&[0.6, 0.8, 0.9, 0.5], 0.75);
    let fail_at = track.speech[2].start as usize + samples_in(0.4);
    let config = energy();
    let probe = Probe::new();
    let source = VecSource::new(track.samples.clone()).with_failure_at(fail_at);
    let pipeline = probe.pipeline(
        source,
        ScriptedTranscriber::new(),
        config.clone(),
        RunOptions::default(),
    );
    let result = run(make, pipeline, FAST_DEADLINE)?;

    assert!(
        matches!(&result, Err(Error::Input { problem, .. }) if problem.contains("injected failure")),
        "source_error: the run must end with the source's error, got {result:?}"
    );
    assert_same_segments(
        &written(&probe.segments()),
        &expected_segments(&track.samples[..fail_at], &config),
        "source_error: the audio before the failure must be transcribed and delivered \
         (as at the end of a stream), and nothing else",
    );
    assert!(
        !probe.is_finished(),
        "source_error: a failed run must not finish its sink"
    );
    probe.assert_released("source_error");
    Ok(())
}

/// **sink error** (a full disk): the run ends with the sink's error, promptly, with every
/// stage released, however far transcription had run ahead of the sink.
///
/// The sink fails on its third write. The utterance behind that segment is long and the
/// transcriber's cost grows with the audio, so while it is decoded the other transcribers run
/// ahead until the run-ahead bound stops them: when the write fails, several stages are waiting
/// on the sink at once, and every one of them must still end. Asserts: the run returns the
/// sink's [`Error::Sink`]; the sink received exactly the two segments before the failure; it
/// was not finished; every stage object was released.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn sink_error(make: &BackendFactory) -> CaseResult {
    const FAILING: usize = 2;
    let mut lengths = vec![0.3, 0.3, 8.0];
    lengths.extend([0.3; 40]);
    let track = Track::new().silence(0.3).utterances(&lengths, 0.6);
    let config = energy();
    let probe = Probe::with_sink_failing_at(FAILING);
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(100));
    let pipeline = probe.pipeline(
        track.source(),
        transcriber,
        config.clone(),
        RunOptions::default(),
    );
    let result = run(make, pipeline, FAST_DEADLINE)?;

    assert!(
        matches!(&result, Err(Error::Sink { sink, problem, .. }) if sink == PROBE_SINK && problem.contains("injected failure")),
        "sink_error: the run must end with the sink's error, got {result:?}"
    );
    assert_same_segments(
        &written(&probe.segments()),
        &expected_segments(&track.samples, &config)[..FAILING],
        &format!("sink_error: the {FAILING} segments before the failed write must be written"),
    );
    assert!(
        !probe.is_finished(),
        "sink_error: a failed run must not finish its sink"
    );
    probe.assert_released("sink_error");
    Ok(())
}

/// **many short utterances, and one long utterance**: hundreds of chunks in order; an
/// utterance over the maximum chunk length is split.
///
/// First 300 utterances of 0.25 s: the sink receives 300 segments, in order, exactly as the
/// pure chunker predicts. Then one 12 s utterance with `max_chunk` 5 s: it arrives as at
/// least three chunks, none over 5 s, each starting where the previous ended (a split loses
/// no audio), together holding the whole utterance, as the pure chunker predicts.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines a run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn many_utterances(make: &BackendFactory) -> CaseResult {
    const UTTERANCES: usize = 300;
    let track = Track::new()
        .silence(0.3)
        .utterances(&[0.25; UTTERANCES], 0.5);
    let config = energy();
    let (probe, report) = run_track(make, &track, &config, ScriptedTranscriber::new())?;
    let segments = probe.segments();
    assert_eq!(
        segments.len(),
        UTTERANCES,
        "many_utterances: one segment per utterance"
    );
    assert_texts_match_chunks(&segments, "many_utterances");
    assert_same_segments(
        &written(&segments),
        &expected_segments(&track.samples, &config),
        "many_utterances: the output differs from the pure chunker's",
    );
    assert_eq!(report.chunks, UTTERANCES, "many_utterances: report.chunks");
    assert_completed(&probe, &report, track.len(), "many_utterances");

    let max_chunk = Duration::from_secs(5);
    let config = energy().with_max_chunk(max_chunk);
    let track = Track::new().silence(0.5).speech(12.0).silence(0.5);
    let (probe, report) = run_track(make, &track, &config, ScriptedTranscriber::new())?;
    let segments = probe.segments();
    assert!(
        segments.len() >= 3,
        "many_utterances (long): a 12 s utterance must be split under 5 s, got {} segment(s)",
        segments.len()
    );
    for segment in &segments {
        assert!(
            segment.end - segment.start <= max_chunk.as_secs_f64() + 1e-9,
            "many_utterances (long): {segment:?} is longer than max_chunk"
        );
    }
    for pair in segments.windows(2) {
        assert_eq!(
            sample_at(pair[0].end),
            sample_at(pair[1].start),
            "many_utterances (long): a split must lose no audio: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    if let (Some(first), Some(last)) = (segments.first(), segments.last()) {
        assert_covers(
            &(sample_at(first.start)..sample_at(last.end)),
            &track.speech[0],
            &config,
            "many_utterances (long)",
        );
    }
    assert_same_segments(
        &written(&segments),
        &expected_segments(&track.samples, &config),
        "many_utterances (long): the output differs from the pure chunker's",
    );
    assert_completed(&probe, &report, track.len(), "many_utterances (long)");
    Ok(())
}

/// **determinism**: the same run twice gives the same output.
///
/// One input (utterances of many lengths and one that is split) is run twice as it is, then
/// with the source handing out blocks of 37 and of 4099 samples instead of 320 (chunk
/// boundaries depend only on the samples). Every run must write the same segments (chunk,
/// start, end, text) and report the same chunks, segments, dropped samples and audio length.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines a run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn determinism(make: &BackendFactory) -> CaseResult {
    let track = Track::new()
        .silence(0.4)
        .utterances(&[0.3, 1.7, 0.6, 0.25, 2.2, 0.9, 0.4, 1.1], 0.55)
        .speech(7.0)
        .silence(0.3)
        .speech(0.5);
    let config = energy().with_max_chunk(Duration::from_secs(3));
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(3));
    let mut outputs = Vec::new();
    for block_len in [320, 320, 37, 4099] {
        let probe = Probe::new();
        let pipeline = probe.pipeline(
            track.source().with_block_len(block_len),
            transcriber.clone(),
            config.clone(),
            RunOptions::default(),
        );
        let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "determinism");
        assert_completed(&probe, &report, track.len(), "determinism");
        let counts = (
            report.chunks,
            report.segments,
            report.dropped_samples,
            sample_at(report.audio_seconds),
        );
        outputs.push((block_len, written(&probe.segments()), counts));
    }
    let (_, first_segments, first_counts) = &outputs[0];
    assert!(
        first_segments.len() > track.speech.len(),
        "determinism: the long utterance must have been split"
    );
    for (block_len, segments, counts) in &outputs[1..] {
        assert_same_segments(
            segments,
            first_segments,
            &format!("determinism: the run with {block_len}-sample blocks wrote other segments"),
        );
        assert_eq!(
            counts, first_counts,
            "determinism: the run with {block_len}-sample blocks reported different \
             (chunks, segments, dropped, audio samples)"
        );
    }
    Ok(())
}

/// The track of the early-start cases: a tone followed by 0.8 s of silence, then two
/// separated by 0.3 s, longer than the padding (0.2 s) and shorter than the hangover (0.4 s),
/// so speech resumes after an early start and the two are one utterance.
fn a_pause_inside_an_utterance() -> Track {
    Track::new()
        .silence(0.3)
        .speech(0.5)
        .silence(0.8)
        .speech(0.4)
        .silence(0.3)
        .speech(0.4)
        .silence(0.8)
}

/// **early_start**: with [`RunOptions::early_start`] on real-time input, the run writes
/// exactly what waiting for the whole hangover writes, and the early decodes are really used.
///
/// Three tones in real time (2.4 s): one followed by 0.8 s of silence, then two separated
/// by 0.3 s, longer than the padding (0.2 s) and shorter than the hangover (0.4 s), so speech
/// resumes after an early start and the two are one utterance. Asserts: the segments (chunk,
/// boundaries, text) are those of the pure chunker, as with early start off; at least one
/// final took its early result (`early_starts_used`); no more early decodes were dropped
/// than the one pause allows (`early_starts_discarded <= 1`); the report's chunk count is
/// the finals', provisional chunks not counted.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines real-time input.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn early_start(make: &BackendFactory) -> CaseResult {
    let track = a_pause_inside_an_utterance();
    let config = energy();
    let expected = expected_segments(&track.samples, &config);
    assert_eq!(expected.len(), 2, "early_start: the suite's own track");
    let mut options = RunOptions::default();
    options.realtime = true;
    options.early_start = true;
    let probe = Probe::new();
    let pipeline = probe.pipeline(track.source(), ScriptedTranscriber::new(), config, options);
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "early_start");
    assert_same_segments(
        &written(&probe.segments()),
        &expected,
        "early_start: the run wrote other segments than waiting for the hangover writes",
    );
    assert!(
        report.early_starts_used >= 1,
        "early_start: no final chunk took an early decode ({} used, {} discarded): early \
         start did nothing",
        report.early_starts_used,
        report.early_starts_discarded
    );
    assert!(
        report.early_starts_discarded <= 1,
        "early_start: {} early decodes dropped; only the 0.3 s pause can drop one",
        report.early_starts_discarded
    );
    assert_eq!(
        (report.chunks, report.segments),
        (2, 2),
        "early_start: report chunks and segments count finals only"
    );
    Ok(())
}

/// **packing**: with [`RunOptions::pack`], utterances are decoded in windows, and every
/// utterance still comes out as its own segment, exactly as without packing.
///
/// Thirty utterances of 0.3-1.5 s with 0.6 s pauses (about 45 s), offline, with the scripted
/// transcriber (which times each utterance's text inside a window). Asserts: the segments are
/// those of the pure chunker, in order; the report counts every utterance as a chunk, and
/// fewer packed windows than utterances (so windows were formed and decoded).
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn packing(make: &BackendFactory) -> CaseResult {
    let lengths: Vec<f64> = (0..30).map(|i| 0.3 + f64::from(i % 5) * 0.3).collect();
    let track = Track::new().silence(0.4).utterances(&lengths, 0.6);
    let config = energy();
    let expected = expected_segments(&track.samples, &config);
    let mut options = RunOptions::default();
    options.pack = true;
    let probe = Probe::new();
    let pipeline = probe.pipeline(track.source(), ScriptedTranscriber::new(), config, options);
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "packing");
    assert_same_segments(
        &written(&probe.segments()),
        &expected,
        "packing: the packed run wrote other segments than decoding each utterance alone",
    );
    assert_eq!(
        report.chunks,
        expected.len(),
        "packing: report.chunks counts utterances"
    );
    let windows = report.packed_windows as usize;
    assert!(
        0 < windows && windows < expected.len(),
        "packing: {windows} windows for {} utterances",
        expected.len()
    );
    Ok(())
}

/// The interim step of the interim cases.
const INTERIM_STEP: Duration = Duration::from_millis(500);

/// The partials among `updates`, as written.
fn partials_of(updates: &[Update]) -> Vec<Partial> {
    updates
        .iter()
        .filter_map(|update| match update {
            Update::Partial(partial) => Some(partial.clone()),
            _ => None,
        })
        .collect()
}

/// Panics unless every partial comes before the final segment of its utterance and (when
/// `after_earlier_finals` lists the chunks of every final segment) after the final segments
/// of every earlier utterance, and unless each utterance's `stable` is a word prefix of its
/// `text` (whole words; the punctuation after the last one is not part of it) that never
/// shrinks.
fn assert_interim_contract(
    updates: &[Update],
    after_earlier_finals: Option<&[Written]>,
    context: &str,
) {
    let mut finals_written: Vec<usize> = Vec::new();
    let mut stable: Option<(usize, String)> = None;
    for update in updates {
        match update {
            Update::Final(segment) => finals_written.push(segment.chunk),
            Update::Partial(partial) => {
                let u = partial.chunk;
                assert!(
                    finals_written.iter().all(|&chunk| chunk < u),
                    "{context}: a partial of utterance {u} came after a final of utterance {:?}",
                    finals_written.iter().max()
                );
                if let Some(finals) = after_earlier_finals {
                    let missing = finals
                        .iter()
                        .find(|f| f.chunk < u && !finals_written.contains(&f.chunk));
                    assert!(
                        missing.is_none(),
                        "{context}: a partial of utterance {u} came before the final segment \
                         of utterance {:?}",
                        missing.map(|f| f.chunk)
                    );
                }
                assert!(
                    partial.stable_is_whole_words(),
                    "{context}: stable {:?} is not a word prefix of text {:?}",
                    partial.stable,
                    partial.text
                );
                if let Some((before_u, before)) = &stable
                    && *before_u == u
                {
                    assert!(
                        partial.stable.starts_with(before.as_str()),
                        "{context}: stable shrank from {before:?} to {:?}",
                        partial.stable
                    );
                }
                stable = Some((u, partial.stable.clone()));
            }
            _ => {}
        }
    }
}

/// **interim**: with [`RunOptions::interim_step`] on a file, every backend writes the same
/// partial hypotheses, and the same final segments as without interim results.
///
/// Six utterances of 0.3-4.1 s, offline, with a scripted transcriber that costs time per
/// second of audio (so parallel backends finish partials out of order), unpacked and packed.
/// Asserts: the final segments are those of the pure chunker (what the run writes without
/// interim); the partials are exactly the pure chunker's partial points (every 0.5 s of
/// speech) with their scripted text, in order; each comes before its utterance's final
/// segment, and unpacked after the final segments of earlier utterances; `stable` is a word
/// prefix of `text` that never shrinks; the report counts every partial, skips none, and
/// finds no stable prefix broken.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines the run.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn interim(make: &BackendFactory) -> CaseResult {
    let track = Track::new()
        .silence(0.4)
        .utterances(&[0.3, 1.7, 0.6, 2.6, 0.9, 4.1], 0.6);
    let config = energy();
    let finals = expected_segments(&track.samples, &config);
    let partials = expected_partials(&track.samples, &config, INTERIM_STEP);
    assert!(
        partials.len() >= 12,
        "interim: the suite's own track has {} partial points",
        partials.len()
    );
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(3));
    for pack in [false, true] {
        let context = if pack { "interim (packed)" } else { "interim" };
        let mut options = RunOptions::default();
        options.interim_step = Some(INTERIM_STEP);
        options.pack = pack;
        let probe = Probe::new();
        let pipeline = probe.pipeline(track.source(), transcriber.clone(), config.clone(), options);
        let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, context);
        assert_same_segments(
            &written(&probe.segments()),
            &finals,
            &format!("{context}: the final segments differ from a run without interim results"),
        );
        let updates = probe.updates();
        let got: Vec<Written> = partials_of(&updates).iter().map(Written::from).collect();
        assert_same_segments(
            &got,
            &partials,
            &format!("{context}: the partials are not the chunker's partial points, in order"),
        );
        assert_interim_contract(&updates, (!pack).then_some(finals.as_slice()), context);
        let mut utterances: Vec<usize> = partials.iter().map(|p| p.chunk).collect();
        utterances.dedup();
        assert_eq!(
            (
                report.partials,
                report.partials_skipped,
                report.utterances_with_partials,
                report.stable_prefix_violations
            ),
            (partials.len() as u64, 0, utterances.len() as u64, 0),
            "{context}: report (partials, partials_skipped, utterances_with_partials, \
             stable_prefix_violations)"
        );
        assert!(
            report.first_partial_ms.is_some(),
            "{context}: no first-partial latency reported"
        );
    }
    Ok(())
}

/// **interim_early_start**: in real time with interim results and early start, an early
/// decode is shown as a partial too, and finals are unchanged.
///
/// The track of **early_start** (a 0.3 s pause inside the second utterance, longer than the
/// padding and shorter than the hangover), with partial points every 0.5 s of speech.
/// Asserts: the final segments are those of the pure chunker; every partial written is a
/// partial point or a provisional chunk the pure chunker offers, with its text, in order;
/// the early decode cut at the pause, which no final takes, is among them; the contract of
/// **interim_realtime** holds; written and skipped partials add up to at least the partial
/// points and the provisional chunks shown, and at most all of both.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines real-time input.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn interim_early_start(make: &BackendFactory) -> CaseResult {
    let track = a_pause_inside_an_utterance();
    let config = energy();
    let finals = expected_segments(&track.samples, &config);
    let points = expected_partials(&track.samples, &config, INTERIM_STEP);
    let provisionals = expected_provisionals(&track.samples, &config);
    let at_the_pause = provisionals
        .iter()
        .find(|p| !finals.iter().any(|f| f.chunk == p.chunk && f.end == p.end))
        .cloned();
    let Some(at_the_pause) = at_the_pause else {
        panic!("interim_early_start: the suite's own track has no pause inside an utterance");
    };
    let mut options = RunOptions::default();
    options.realtime = true;
    options.early_start = true;
    options.interim_step = Some(INTERIM_STEP);
    let probe = Probe::new();
    let pipeline = probe.pipeline(track.source(), ScriptedTranscriber::new(), config, options);
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "interim_early_start");
    assert_same_segments(
        &written(&probe.segments()),
        &finals,
        "interim_early_start: the final segments differ from a run without interim results",
    );
    let updates = probe.updates();
    let got: Vec<Written> = partials_of(&updates).iter().map(Written::from).collect();
    let mut expected = points.iter().chain(&provisionals).collect::<Vec<_>>();
    expected.sort_by(|a, b| {
        (a.chunk, a.end)
            .partial_cmp(&(b.chunk, b.end))
            .expect("finite")
    });
    let mut remaining = expected.iter();
    for partial in &got {
        assert!(
            remaining.any(|&e| e == partial),
            "interim_early_start: partial {partial:?} is neither a partial point nor a \
             provisional chunk, or out of order"
        );
    }
    assert!(
        got.contains(&at_the_pause),
        "interim_early_start: the early decode at the pause ({at_the_pause:?}) was not shown; \
         partials: {got:?}"
    );
    assert_interim_contract(&updates, Some(&finals), "interim_early_start");
    let shown = got.iter().filter(|p| provisionals.contains(p)).count();
    let accounted = report.partials + report.partials_skipped;
    assert!(
        (points.len() + shown) as u64 <= accounted
            && accounted <= (points.len() + provisionals.len()) as u64,
        "interim_early_start: partials written ({}) and skipped ({}) must account for the \
         {} points and the {shown} early decodes shown, and no more than {} early decodes",
        report.partials,
        report.partials_skipped,
        points.len(),
        provisionals.len()
    );
    Ok(())
}

/// **interim_realtime**: with interim results on real-time input, finals go first and are
/// the same as without; partials may be skipped but never reordered.
///
/// Three utterances of 1.3-2.2 s in real time, with a scripted transcriber that costs 60 ms
/// per second of audio (so partials queue behind each other and some are overtaken).
/// Asserts: the final segments are those of the pure chunker; every partial written is one of
/// the chunker's partial points with its text, in order; each comes before its utterance's
/// final segment and after the earlier ones'; `stable` is a word prefix that never shrinks;
/// the report's written and skipped partials add up to the partial points, with at least one
/// written.
///
/// # Errors
/// [`crate::Unsupported`] when the backend declines real-time input.
///
/// # Panics
/// When the backend breaks one of these promises.
pub fn interim_realtime(make: &BackendFactory) -> CaseResult {
    let track = Track::new()
        .silence(0.3)
        .utterances(&[1.3, 2.2, 1.6], 0.7)
        .silence(0.6);
    let config = energy();
    let finals = expected_segments(&track.samples, &config);
    let partials = expected_partials(&track.samples, &config, INTERIM_STEP);
    let mut options = RunOptions::default();
    options.realtime = true;
    options.interim_step = Some(INTERIM_STEP);
    let transcriber =
        ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(60));
    let probe = Probe::new();
    let pipeline = probe.pipeline(track.source(), transcriber, config, options);
    let report = succeeded(run(make, pipeline, FAST_DEADLINE)?, "interim_realtime");
    assert_same_segments(
        &written(&probe.segments()),
        &finals,
        "interim_realtime: the final segments differ from a run without interim results",
    );
    let updates = probe.updates();
    let mut expected = partials.iter();
    for partial in partials_of(&updates) {
        let partial = Written::from(&partial);
        assert!(
            expected.any(|point| *point == partial),
            "interim_realtime: partial {partial:?} is not a partial point, or out of order"
        );
    }
    assert_interim_contract(&updates, Some(&finals), "interim_realtime");
    assert_eq!(
        report.partials + report.partials_skipped,
        partials.len() as u64,
        "interim_realtime: partials written ({}) and skipped ({}) must add up to the points",
        report.partials,
        report.partials_skipped
    );
    assert!(report.partials >= 1, "interim_realtime: no partial written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone;

    #[test]
    fn tones_are_speech_and_quiet_noise_is_not() {
        let track = Track::new().silence(0.5).speech(1.0).silence(0.5);
        let expected = expected_segments(&track.samples, &energy());
        assert_eq!(expected.len(), 1);
        assert_covers(
            &(sample_at(expected[0].start)..sample_at(expected[0].end)),
            &track.speech[0],
            &energy(),
            "self-test",
        );
        assert!(expected_segments(&quiet_noise(samples_in(2.0)), &energy()).is_empty());
        assert_eq!(tone(10).len(), 10);
    }

    #[test]
    #[should_panic(expected = "does not hold all of the utterance")]
    fn a_chunk_that_misses_speech_fails_the_coverage_check() {
        assert_covers(&(100..200), &(50..150), &energy(), "self-test");
    }

    #[test]
    #[should_panic(expected = "more than the padding")]
    fn a_chunk_with_too_much_silence_fails_the_coverage_check() {
        assert_covers(&(0..100_000), &(50_000..51_000), &energy(), "self-test");
    }
}
