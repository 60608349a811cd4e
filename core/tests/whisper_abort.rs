//! The vendored whisper.cpp (see `vendor/README.md`) asks the abort callback between the graph
//! nodes of its encoder and decoder, not only once each whole graph is done: what lets a partial
//! decode that newer speech has overtaken give the Whisper state back at once.

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use steno_core::read_file;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

fn workspace_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// How often whisper.cpp asked [`never_abort`] / [`abort_at_once`].
static ASKED: AtomicUsize = AtomicUsize::new(0);

/// Counts the question and lets the decode go on.
extern "C" fn never_abort(_: *mut c_void) -> bool {
    ASKED.fetch_add(1, Ordering::SeqCst);
    false
}

/// Counts the question and stops the decode.
extern "C" fn abort_at_once(_: *mut c_void) -> bool {
    ASKED.fetch_add(1, Ordering::SeqCst);
    true
}

/// One decode of `samples` with the window trimmed as steno trims it for a short chunk, with
/// `callback` as the abort callback: whether it succeeded, and how often it asked.
fn decode_asking(samples: &[f32], callback: extern "C" fn(*mut c_void) -> bool) -> (bool, usize) {
    let path = workspace_file("models/ggml-tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask model`",
        path.display()
    );
    let context = WhisperContext::new_with_params(&path, WhisperContextParameters::default())
        .expect("the model");
    let mut state = context.create_state().expect("a state");
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(2);
    params.set_audio_ctx(384);
    params.set_print_progress(false);
    ASKED.store(0, Ordering::SeqCst);
    #[allow(
        unsafe_code,
        reason = "whisper.cpp's raw abort callback, the thing under test"
    )]
    // SAFETY: the callbacks take no data and only touch a static atomic.
    unsafe {
        params.set_abort_callback(Some(callback));
    }
    let ok = state.full(params, samples).is_ok();
    (ok, ASKED.load(Ordering::SeqCst))
}

#[test]
fn whisper_cpp_asks_the_abort_callback_between_graph_nodes() {
    let samples = read_file(workspace_file("conformance/inputs/session.wav")).expect("fixture");
    let samples = &samples[..16_000 * 2];
    let (ok, asked) = decode_asking(samples, never_abort);
    assert!(ok, "a decode that is never aborted succeeds");
    // Upstream asks once per graph: once for the encoder and once per decoded token, a few
    // dozen times for two seconds of speech. Asked between nodes, it is thousands.
    assert!(
        asked > 500,
        "whisper.cpp asked the abort callback only {asked} times: is vendor/whisper-rs-sys \
         (with its patch) still what Cargo builds?"
    );
    let (ok, asked) = decode_asking(samples, abort_at_once);
    assert!(!ok, "an aborted decode reports failure");
    assert_eq!(asked, 1, "the decode stopped at the first question");
}
