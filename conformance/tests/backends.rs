//! Runs the conformance suite against every backend in the workspace: one test per
//! (backend, case), named `<backend>::<case>`, so `cargo test -p steno-conformance tokio::`
//! runs one backend's cases and `cargo test -p steno-conformance ::ordering` one case on every
//! backend.
//!
//! **Adding a backend is one line** at the bottom of this file:
//! `backend_suite!(name, || Box::new(steno_name::NameBackend::new()));` (plus the crate as a
//! dev-dependency of steno-conformance). The process backend's line wraps it in
//! `ProcessWorkers`, which starts its workers (this crate's `steno-conformance-worker` binary,
//! built by cargo for these tests) on each pipeline's own transcriber; the NATS backend's line
//! wraps it in `NatsWorkers`, which does the same over a `nats-server` it starts.
//!
//! Fast cases are the check functions of `steno_conformance::FAST_CASES`. Model cases
//! transcribe each fixture of `conformance/inputs/` with real Whisper and compare the result
//! with one insta snapshot per input in `tests/snapshots/`, shared by every backend (no
//! backend suffix): a backend that diverges fails. Every outcome (pass, unsupported, fail) is
//! recorded for the README table (`cargo xtask conformance-table`); an unsupported case passes
//! but is recorded and shown, never skipped silently.
//!
//! Changing a snapshot on purpose (a new fixture, a model or chunking change): run
//! `INSTA_UPDATE=always cargo test -p steno-conformance -- threads::model_`, review the diff
//! of `tests/snapshots/`, then run every backend in check mode (`cargo xtask test` sets
//! `INSTA_UPDATE=no`). A plain `cargo test` writes `.snap.new` files next to a changed
//! snapshot, which `snapshots_are_exactly_the_model_inputs` rejects until they are accepted
//! (renamed to `.snap`) or removed.

use std::path::Path;

#[cfg(feature = "model")]
use steno_conformance::{BackendFactory, harness, model, model_input};
use steno_conformance::{FAST_CASES, MODEL_INPUTS};

/// Calls `$then!` with the name of every fast case: the one list the harness runs.
macro_rules! fast_case_names {
    ($then:ident) => {
        $then! {
            ordering
            accounting
            end_of_stream_flush
            empty_and_silence
            backpressure
            realtime_pacing
            cancellation
            transcriber_error
            source_error
            sink_error
            many_utterances
            determinism
            early_start
            packing
            interim
            interim_realtime
            interim_early_start
            two_sources
        }
    };
}

/// Calls `$then!` with the name of every model case: one per fixture in `conformance/inputs/`.
macro_rules! model_case_names {
    ($then:ident) => {
        $then! {
            model_session
            model_session_noisy
            model_session_44k_stereo
            model_word
            model_silence
            model_noise
            model_session_options
        }
    };
}

macro_rules! fast_tests {
    ($($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                steno_conformance::harness::run_fast_case(stringify!($case), &make);
            }
        )*
    };
}

#[cfg(feature = "model")]
macro_rules! model_tests {
    ($($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                crate::check_model_case(stringify!($case), &make);
            }
        )*
    };
}

/// Every case of the suite against the backend `$make` makes, as tests `$backend::<case>`.
macro_rules! backend_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            fn make() -> Box<dyn steno_core::Backend> {
                ($make)()
            }
            fast_case_names!(fast_tests);
            #[cfg(feature = "model")]
            model_case_names!(model_tests);
        }
    };
}

// One line per backend crate in the workspace.
backend_suite!(threads, || Box::new(steno_threads::ThreadsBackend::new()));
backend_suite!(tokio, || Box::new(steno_tokio::TokioBackend::new()));
backend_suite!(async_std, || Box::new(
    steno_async_std::AsyncStdBackend::new()
));
backend_suite!(smol, || Box::new(steno_smol::SmolBackend::new()));
backend_suite!(rayon, || Box::new(steno_rayon::RayonBackend::new()));
backend_suite!(process, || Box::new(
    steno_conformance::ProcessWorkers::new(env!("CARGO_BIN_EXE_steno-conformance-worker"))
));
backend_suite!(nats, || Box::new(steno_conformance::NatsWorkers::new(
    env!("CARGO_BIN_EXE_steno-conformance-worker")
)));

/// Transcribes the model case's fixture on the backend and compares the result with the
/// input's shared snapshot; records the outcome.
#[cfg(feature = "model")]
fn check_model_case(case: &str, make: &BackendFactory) {
    let Some(input) = model_input(case) else {
        panic!("the conformance suite has no model case called {case}")
    };
    harness::record_case(case, make, || {
        let transcript = model::transcript(make, input)?;
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!(
                "conformance/inputs/{} transcribed by Whisper tiny.en{}: every backend must \
                 produce exactly this",
                input.file,
                input.options.map_or_else(String::new, |options| format!(
                    " with {} beams, the prompt {:?}, word timestamps {}, temperature \
                     fallback {} and no-speech threshold {:?}",
                    options.beam_size,
                    options.prompt,
                    options.word_timestamps,
                    options.temperature_fallback,
                    options.no_speech_threshold
                ))
            ),
        }, {
            insta::assert_snapshot!(input.snapshot_name(), transcript);
        });
        Ok(())
    });
}

macro_rules! name_list {
    ($($case:ident)*) => {
        &[$(stringify!($case)),*]
    };
}

#[test]
fn the_harness_runs_every_case_of_the_suite() {
    let fast: &[&str] = fast_case_names!(name_list);
    let suite: Vec<&str> = FAST_CASES.iter().map(|case| case.name).collect();
    assert_eq!(
        fast, suite,
        "fast_case_names! must list FAST_CASES, in order"
    );
    let models: &[&str] = model_case_names!(name_list);
    let suite: Vec<&str> = MODEL_INPUTS.iter().map(|input| input.case).collect();
    assert_eq!(
        models, suite,
        "model_case_names! must list MODEL_INPUTS, in order"
    );
}

fn file_names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            entry.file_name().to_string_lossy().into_owned()
        })
        .filter(|name| keep(name))
        .collect();
    names.sort();
    names
}

/// insta rejects changed snapshots in CI; this rejects unreferenced and pending ones: the
/// snapshot directory must hold exactly one `.snap` per model input, and nothing else.
#[test]
fn snapshots_are_exactly_the_model_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let found = file_names(&dir, |_| true);
    let mut expected: Vec<String> = MODEL_INPUTS
        .iter()
        .map(|input| format!("{}.snap", input.snapshot_name()))
        .collect();
    expected.sort();
    assert_eq!(
        found, expected,
        "tests/snapshots/ must hold exactly one accepted snapshot per model input: remove \
         unreferenced or pending (.snap.new) files, or add the model case"
    );
}

/// Every speech fixture is a model case: a fixture added to `inputs/` without its case fails.
#[test]
fn every_fixture_is_a_model_case() {
    let found = file_names(&steno_conformance::inputs_dir(), |name| {
        name.ends_with(".wav")
    });
    let mut expected: Vec<String> = MODEL_INPUTS
        .iter()
        .map(|input| input.file.to_owned())
        .collect();
    expected.sort();
    // A case with options reuses a fixture.
    expected.dedup();
    assert_eq!(found, expected, "conformance/inputs/*.wav and MODEL_INPUTS");
}
