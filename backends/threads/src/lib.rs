//! # steno-threads
//!
//! Runs a steno [`Pipeline`] on plain std threads joined by bounded crossbeam channels: the
//! simplest backend, with no runtime to set up, and the reference every other backend is
//! compared with.
//!
//! Four stages, each on its own thread: the source (decoding, real-time pacing) feeds the
//! lock-free ring; the chunker drains it and cuts utterances; one transcriber (one Whisper state)
//! turns chunks into text; the calling thread writes segments to the sink. Bounded channels
//! give backpressure, so memory stays bounded however slow the transcriber is.
//!
//! ```
//! use std::sync::Arc;
//! use steno_core::{Backend, ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber,
//!     VadKind, VecSource};
//! use steno_threads::ThreadsBackend;
//!
//! // Two bursts of "speech" (a loud tone) separated by silence.
//! let tone: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
//! let audio = [vec![0.0; 8_000], tone.clone(), vec![0.0; 16_000], tone].concat();
//!
//! let sink = CollectingSink::new();
//! let mut pipeline = Pipeline::new(
//!     VecSource::new(audio),
//!     Arc::new(ScriptedTranscriber::new()), // or steno_core::WhisperModel::load(...)
//!     sink.clone(),
//! );
//! pipeline.chunker = ChunkerConfig { vad: VadKind::Energy, ..ChunkerConfig::default() };
//! let report = ThreadsBackend::new().run(pipeline)?;
//!
//! assert_eq!(report.chunks, 2);
//! assert_eq!(sink.segments()[1].text, "chunk 1 at 2.29-3.50");
//! # Ok::<(), steno_core::Error>(())
//! ```

use std::thread::{self, JoinHandle};

use crossbeam_channel::bounded;
use steno_core::{
    Backend, ChunkStage, Emitter, Error, Pipeline, Result, RunControl, RunReport, RunStart,
    SourceStage, TimedChunk, Transcript, ring, transcribe,
};

/// The std-threads backend. See the [crate docs](crate).
#[derive(Debug, Clone, Default)]
pub struct ThreadsBackend {}

impl ThreadsBackend {
    /// The backend with default settings.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for ThreadsBackend {
    fn name(&self) -> &'static str {
        "threads"
    }

    fn run(&self, pipeline: Pipeline) -> Result<RunReport> {
        let start = RunStart::now();
        let started = start.at;
        let Pipeline {
            source,
            chunker,
            transcriber,
            sink,
            options,
        } = pipeline;
        let control = RunControl::new(&options);
        let stage_options = control.options(&options);
        let (writer, reader) = ring(options.ring_capacity);
        let chunk_stage = ChunkStage::new(reader, &chunker, &stage_options, started)?;
        let source_stage = SourceStage::new(source, writer, &stage_options, started);
        let mut worker = transcriber.create()?;
        let (chunk_tx, chunk_rx) = bounded::<TimedChunk>(options.queue_capacity);
        let (text_tx, text_rx) = bounded::<Transcript>(options.queue_capacity);

        let chunker_thread = spawn("chunker", {
            let control = control.clone();
            move || chunk_stage.run_blocking(&control, |chunk| chunk_tx.send(chunk).is_ok())
        })?;

        let source_thread = spawn("source", {
            let control = control.clone();
            let chunker = chunker_thread.thread().clone();
            move || source_stage.run_blocking(&control, Some(&chunker))
        })?;

        let transcriber_thread = spawn("transcriber", {
            let control = control.clone();
            move || {
                for chunk in chunk_rx {
                    if control.is_stopped() {
                        break;
                    }
                    let Some(text) = control.check(transcribe(worker.as_mut(), &chunk)) else {
                        break;
                    };
                    if text_tx.send(text).is_err() {
                        break;
                    }
                }
            }
        })?;

        let mut emitter = Emitter::new(sink, started);
        for transcript in text_rx {
            if control.check(emitter.emit(transcript)).is_none() {
                break;
            }
        }
        // If the sink failed, `control` has already told the other stages to stop.
        let samples_read = control.join_stage(source_thread, "source");
        let dropped = control.join_stage(chunker_thread, "chunker");
        control.join_stage(transcriber_thread, "transcriber");
        control.outcome()?;
        let mut tally = emitter.finish()?;
        tally.audio_samples = samples_read.unwrap_or(0);
        tally.dropped_samples = dropped.unwrap_or(0);
        Ok(start.report(self.name(), transcriber.name(), options.realtime, &tally))
    }
}

fn spawn<T: Send + 'static>(
    stage: &'static str,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    thread::Builder::new()
        .name(format!("steno-{stage}"))
        .spawn(body)
        .map_err(|e| Error::Stage {
            stage,
            problem: format!("cannot start a thread: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use steno_core::{
        ChunkerConfig, CollectingSink, ScriptedTranscriber, Segment, Sink, VadKind, VecSource,
    };

    fn speech(seconds: f32) -> Vec<f32> {
        (0..(seconds * 16_000.0) as usize)
            .map(|i| 0.3 * (i as f32 * 0.05).sin())
            .collect()
    }

    fn session(utterances: usize) -> Vec<f32> {
        let mut audio = vec![0.0; 8_000];
        for _ in 0..utterances {
            audio.extend(speech(0.6));
            audio.extend(vec![0.0; 12_000]);
        }
        audio
    }

    fn pipeline(
        audio: Vec<f32>,
        transcriber: ScriptedTranscriber,
        sink: impl Sink + 'static,
    ) -> Pipeline {
        let mut pipeline = Pipeline::new(VecSource::new(audio), Arc::new(transcriber), sink);
        pipeline.chunker = ChunkerConfig {
            vad: VadKind::Energy,
            ..ChunkerConfig::default()
        };
        pipeline
    }

    #[test]
    fn segments_arrive_in_order_and_the_sink_is_finished() {
        let sink = CollectingSink::new();
        let report = ThreadsBackend::new()
            .run(pipeline(
                session(5),
                ScriptedTranscriber::new(),
                sink.clone(),
            ))
            .unwrap();
        let chunks: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
        assert_eq!(chunks, [0, 1, 2, 3, 4]);
        assert!(sink.is_finished());
        assert_eq!(report.chunks, 5);
        assert_eq!(report.backend, "threads");
        assert!((report.audio_seconds - session(5).len() as f64 / 16_000.0).abs() < 1e-9);
    }

    #[test]
    fn a_transcriber_error_ends_the_run_after_earlier_segments() {
        let sink = CollectingSink::new();
        let err = ThreadsBackend::new()
            .run(pipeline(
                session(6),
                ScriptedTranscriber::new().failing_on_chunk(3),
                sink.clone(),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "transcriber failed on chunk 3: scripted failure"
        );
        let delivered: Vec<usize> = sink.segments().iter().map(|s| s.chunk).collect();
        assert_eq!(delivered, [0, 1, 2]);
        assert!(!sink.is_finished());
    }

    #[test]
    fn a_source_error_is_the_run_error_and_the_output_is_not_finished() {
        let sink = CollectingSink::new();
        let mut p = pipeline(session(4), ScriptedTranscriber::new(), sink.clone());
        p.source = Box::new(VecSource::new(session(4)).failing_at(40_000));
        let err = ThreadsBackend::new().run(p).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(!sink.is_finished());
    }

    #[test]
    fn a_failing_sink_stops_the_run() {
        struct Broken;
        impl Sink for Broken {
            fn write(&mut self, _: &Segment) -> Result<()> {
                Err(Error::sink("broken", "disk full"))
            }
        }
        let err = ThreadsBackend::new()
            .run(pipeline(session(50), ScriptedTranscriber::new(), Broken))
            .unwrap_err();
        assert_eq!(err.to_string(), "broken: disk full");
    }

    #[test]
    fn cancelling_stops_a_slow_run_promptly() {
        let sink = CollectingSink::new();
        let p = pipeline(
            session(40),
            ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(50)),
            sink,
        );
        let cancel = p.options.cancel.clone();
        let canceller = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            cancel.cancel();
        });
        let err = ThreadsBackend::new().run(p).unwrap_err();
        canceller.join().unwrap();
        assert!(matches!(err, Error::Cancelled), "{err}");
    }

    #[test]
    fn realtime_input_is_paced_and_latency_is_measured() {
        let sink = CollectingSink::new();
        let mut p = pipeline(session(2), ScriptedTranscriber::new(), sink.clone());
        p.options.realtime = true;
        let audio_seconds = session(2).len() as f64 / 16_000.0;
        let report = ThreadsBackend::new().run(p).unwrap();
        // Paced: the run cannot finish before the audio has "happened".
        assert!(report.wall_seconds >= audio_seconds * 0.95, "{report:?}");
        assert_eq!(sink.segments().len(), 2);
        assert_eq!(report.dropped_samples, 0);
        // Each segment is written after its audio ended (emitted_at counts from the start).
        for segment in sink.segments() {
            assert!(segment.emitted_at >= segment.end - 0.02, "{segment:?}");
        }
    }
}

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
