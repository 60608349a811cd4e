//! What is tokio's own: where a run may be started. Everything else the tokio backend does is
//! held by the conformance suite and its async host tests.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

use std::sync::Arc;

use steno_core::{Backend, CollectingSink, Error, Pipeline, ScriptedTranscriber, VecSource};
use steno_tokio::TokioBackend;

fn pipeline() -> Pipeline {
    Pipeline::new(
        VecSource::new(vec![0.0; 16_000]),
        Arc::new(ScriptedTranscriber::new()),
        CollectingSink::new(),
    )
}

#[test]
fn a_blocking_run_inside_a_runtime_is_refused_not_a_panic() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime
        .block_on(async { TokioBackend::new().run(pipeline()) })
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("run_async"), "{err}");
}

#[test]
fn the_async_run_outside_a_runtime_is_refused_not_a_panic() {
    let err = futures_lite::future::block_on(steno_tokio::run(pipeline())).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("outside a tokio runtime"), "{err}");
}
