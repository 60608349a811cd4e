//! # steno-conformance
//!
//! The behaviour suite every steno backend must pass: whichever backend a user picks, the
//! transcript and the behaviour under faults are the same.
//!
//! The suite is a library of public check functions. Each takes a [`BackendFactory`] (a
//! closure making the backend under test), runs one or more pipelines on it, and panics with
//! a message naming the broken promise when the backend does not keep it, the way
//! `object_store`'s `integration` module and opendal's behavior tests do. A backend that
//! cannot run a case returns [`steno_core::Error::Unsupported`]; the check then returns
//! [`Unsupported`] instead of passing, and the test harness records it as such in the table
//! of backends and cases (nothing is skipped silently).
//!
//! - [`cases`]: the fast cases, on synthetic tones with the scripted transcriber from core
//!   (listed in [`FAST_CASES`]).
//! - [`model`]: the model cases, real Whisper on the speech fixtures in
//!   `conformance/inputs/` (listed in [`MODEL_INPUTS`]); the harness compares each transcript
//!   with one shared snapshot per input.
//! - [`harness`]: what the test harness (`tests/backends.rs`) calls to run a case and record
//!   its outcome for the generated README table.
//! - [`ProcessWorkers`]: the process backend as the suite runs it, its workers (the
//!   `steno-conformance-worker` binary of this crate) serving each pipeline's own transcriber:
//!   a [`WorkerScript`] (the scripted transcriber's spec) or the model file.
//! - [`NatsWorkers`]: the NATS backend as the suite runs it, against a real `nats-server -js`
//!   (`steno_nats::LocalServer`, started on a free loopback port) with the same worker binary
//!   in its NATS mode.
//!
//! The harness runs every case against every backend crate of the workspace, one test per
//! (backend, case) named `<backend>::<case>`. Adding a backend is one line there,
//! `backend_suite!(tokio, || Box::new(steno_tokio::TokioBackend::new()));`, plus the crate
//! as a dev-dependency. `cargo xtask conformance-table` regenerates the README table.
//!
//! Use it from a test of your own backend:
//!
//! ```
//! use steno_core::Backend;
//! use steno_conformance::{BackendFactory, cases};
//!
//! let make: &BackendFactory = &|| -> Box<dyn Backend> {
//!     Box::new(steno_threads::ThreadsBackend::new())
//! };
//! cases::ordering(make).expect("the threads backend supports every case");
//! ```

pub mod cases;
pub mod harness;
#[cfg(feature = "model")]
pub mod model;

mod audio;
mod nats;
mod probe;
mod run;
mod workers;

use std::path::{Path, PathBuf};

use steno_core::Backend;

pub use nats::NatsWorkers;
pub use workers::{ProcessWorkers, WorkerScript, WorkerStall};

/// Makes the backend under test. A check may call it more than once (one backend per run).
pub type BackendFactory = dyn Fn() -> Box<dyn Backend>;

/// A backend declined a case by returning [`steno_core::Error::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The backend's name.
    pub backend: String,
    /// What it said it cannot do.
    pub what: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} backend does not support {}",
            self.backend, self.what
        )
    }
}

impl std::error::Error for Unsupported {}

/// What a check returns: `Ok(())` when the backend kept every promise of the case,
/// `Err(Unsupported)` when it declined the case. A broken promise is a panic.
pub type CaseResult = Result<(), Unsupported>;

/// One fast case: its name (the test is `<backend>::<name>`), what it checks, and the check.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The case's name, a Rust identifier.
    pub name: &'static str,
    /// What the case checks, in one line (shown in the README table).
    pub summary: &'static str,
    /// The check.
    pub check: fn(&BackendFactory) -> CaseResult,
}

/// Every fast case, in the order of the issue that defined the suite.
pub const FAST_CASES: &[Case] = &[
    Case {
        name: "ordering",
        summary: "segments come out in audio order, with monotonic timestamps",
        check: cases::ordering,
    },
    Case {
        name: "accounting",
        summary: "every sample lands in exactly one chunk or is counted as dropped; \
                  chunks leave no gap or overlap beyond the padding",
        check: cases::accounting,
    },
    Case {
        name: "end_of_stream_flush",
        summary: "the end of the stream flushes trailing speech with no silence after it",
        check: cases::end_of_stream_flush,
    },
    Case {
        name: "empty_and_silence",
        summary: "empty and silence-only input: no segments, a clean report",
        check: cases::empty_and_silence,
    },
    Case {
        name: "backpressure",
        summary: "a stalled transcriber on real-time input: memory stays bounded, \
                  drops are counted",
        check: cases::backpressure,
    },
    Case {
        name: "realtime_pacing",
        summary: "real-time input is read no faster than spoken; each segment is written \
                  after its audio, its latency measured",
        check: cases::realtime_pacing,
    },
    Case {
        name: "cancellation",
        summary: "cancelling mid-stream ends the run promptly and releases every stage",
        check: cases::cancellation,
    },
    Case {
        name: "transcriber_error",
        summary: "a transcriber error on chunk k: earlier segments delivered, \
                  the run ends with that error",
        check: cases::transcriber_error,
    },
    Case {
        name: "source_error",
        summary: "a source error mid-stream: the audio before it is delivered, \
                  the run ends with that error",
        check: cases::source_error,
    },
    Case {
        name: "sink_error",
        summary: "a sink error (a full disk) with transcription run ahead: the run ends \
                  promptly with that error, earlier segments written",
        check: cases::sink_error,
    },
    Case {
        name: "many_utterances",
        summary: "hundreds of short utterances, and one long utterance split at the max length",
        check: cases::many_utterances,
    },
    Case {
        name: "determinism",
        summary: "the same input twice (and in other block sizes) gives the same output",
        check: cases::determinism,
    },
    Case {
        name: "early_start",
        summary: "decoding each utterance before the hangover ends writes exactly what \
                  waiting writes",
        check: cases::early_start,
    },
    Case {
        name: "packing",
        summary: "utterances decoded together in windows are each written as their own \
                  segment, as unpacked",
        check: cases::packing,
    },
    Case {
        name: "interim",
        summary: "offline partial hypotheses are the same on every backend, in order, with a \
                  stable prefix that never shrinks; finals are unchanged",
        check: cases::interim,
    },
    Case {
        name: "interim_realtime",
        summary: "in real time finals go first and are unchanged; partials may be skipped, \
                  never reordered",
        check: cases::interim_realtime,
    },
    Case {
        name: "interim_early_start",
        summary: "in real time an early decode is shown as a partial too, in order, and \
                  finals are unchanged",
        check: cases::interim_early_start,
    },
    Case {
        name: "two_sources",
        summary: "two labelled sources cut apart and written as one transcript in order of \
                  end of speech, accounted per source",
        check: cases::two_sources,
    },
];

/// The fast case called `name`.
pub fn fast_case(name: &str) -> Option<&'static Case> {
    FAST_CASES.iter().find(|case| case.name == name)
}

/// Decoding options a model case runs with instead of the defaults (greedy, no prompt, no
/// word timestamps, no temperature fallback, the no-speech rule at 0.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelOptions {
    /// Beams of the decode.
    pub beam_size: usize,
    /// The initial prompt of every decode.
    pub prompt: &'static str,
    /// Every word timed (DTW alignment); the snapshot holds the words' times.
    pub word_timestamps: bool,
    /// Failed-looking decodes decoded again at raised temperatures.
    pub temperature_fallback: bool,
    /// The no-speech rule's threshold (utterances Whisper judges to hold no speech are left
    /// out), or `None` for the rule off.
    pub no_speech_threshold: Option<f32>,
}

impl ModelOptions {
    /// The model's decoding options: these, the rest the defaults.
    #[cfg(feature = "model")]
    pub fn decoding(&self) -> steno_core::DecodingOptions {
        let mut decoding = steno_core::DecodingOptions::default();
        decoding.beam_size = self.beam_size;
        decoding.prompt = Some(self.prompt.to_owned());
        decoding.word_timestamps = self.word_timestamps;
        decoding.temperature_fallback = self.temperature_fallback;
        decoding.no_speech_threshold = self.no_speech_threshold;
        decoding
    }
}

/// One model case: a speech fixture transcribed by real Whisper and compared with its
/// snapshot.
#[derive(Debug, Clone, Copy)]
pub struct ModelInput {
    /// The case's name, a Rust identifier (the test is `<backend>::<case>`).
    pub case: &'static str,
    /// The fixture's file name in `conformance/inputs/`.
    pub file: &'static str,
    /// What the fixture is, in one line.
    pub summary: &'static str,
    /// Decoding options other than the defaults: the model is loaded with them, and worker
    /// processes are started with them.
    pub options: Option<ModelOptions>,
}

impl ModelInput {
    /// The fixture's path.
    pub fn path(&self) -> PathBuf {
        inputs_dir().join(self.file)
    }

    /// The name of its snapshot: the file name without its extension (and `-options` for a
    /// case with options), shared by every backend (`tests/snapshots/<name>.snap`).
    pub fn snapshot_name(&self) -> String {
        let stem = self
            .file
            .rsplit_once('.')
            .map_or(self.file, |(stem, _)| stem);
        match self.options {
            Some(_) => format!("{stem}-options"),
            None => stem.to_owned(),
        }
    }
}

/// Every model case: one per speech fixture in `conformance/inputs/`, and one with decoding
/// options other than the defaults.
pub const MODEL_INPUTS: &[ModelInput] = &[
    ModelInput {
        case: "model_session",
        file: "session.wav",
        summary: "five sentences with pauses and low noise, 16 kHz mono",
        options: None,
    },
    ModelInput {
        case: "model_session_noisy",
        file: "session-noisy.wav",
        summary: "the same session under loud white noise",
        options: None,
    },
    ModelInput {
        case: "model_session_44k_stereo",
        file: "session-44k-stereo-f32.wav",
        summary: "the same session as 44.1 kHz stereo float, decoded and resampled",
        options: None,
    },
    ModelInput {
        case: "model_word",
        file: "word.wav",
        summary: "one short word",
        options: None,
    },
    ModelInput {
        case: "model_silence",
        file: "silence.wav",
        summary: "digital silence only",
        options: None,
    },
    ModelInput {
        case: "model_noise",
        file: "noise.wav",
        summary: "low white noise only",
        options: None,
    },
    ModelInput {
        case: "model_session_options",
        file: "session.wav",
        summary: "the session decoded with beam search (2 beams), an initial prompt, word \
                  timestamps, temperature fallback and the no-speech rule off, options every \
                  backend's transcribers and workers must apply alike",
        options: Some(ModelOptions {
            beam_size: 2,
            prompt: "A reading: the quick brown fox, the window, the weather, the library.",
            word_timestamps: true,
            temperature_fallback: true,
            // Off: on by default, so off is what workers must be told.
            no_speech_threshold: None,
        }),
    },
];

/// The model case called `case`.
pub fn model_input(case: &str) -> Option<&'static ModelInput> {
    MODEL_INPUTS.iter().find(|input| input.case == case)
}

/// `conformance/inputs/`: the speech fixtures (made by its `make.sh`).
pub fn inputs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("inputs")
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}
