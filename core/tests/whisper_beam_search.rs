//! Beam search in the vendored whisper.cpp (see `vendor/README.md`) takes each beam's likeliest
//! tokens: a chunk's text depends only on the chunk and the options, not on what the Whisper
//! state decoded before, so every backend writes the same text whichever worker a chunk meets.
//! Upstream draws the candidates at random from a generator that one state keeps across calls:
//! on `session.wav` with 2 beams, 3 of its 5 utterances then read differently on a fresh state
//! and on one that has decoded the others, and a decode repeated on one state changed its words.

use std::path::PathBuf;

use steno_core::window::{MIN_INPUT_SAMPLES, WindowPlan};
use steno_core::{Chunker, ChunkerConfig, DecodingOptions, WhisperModel, read_file};

fn workspace_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn a_beam_decode_does_not_depend_on_what_the_state_decoded_before() {
    let path = workspace_file("models/ggml-tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask model`",
        path.display()
    );
    let mut options = DecodingOptions::default();
    options.beam_size = 2;
    let model = WhisperModel::load(&path, 2)
        .and_then(|model| model.with_options(options))
        .expect("the model");
    let samples = read_file(workspace_file("conformance/inputs/session.wav")).expect("fixture");
    let mut chunks = Vec::new();
    let mut chunker = Chunker::new(&ChunkerConfig::default()).expect("a chunker");
    chunker.push(&samples, &mut chunks);
    chunker.finish(&mut chunks);
    assert_eq!(chunks.len(), 5, "session.wav is five sentences");
    let padded: Vec<Vec<f32>> = chunks
        .iter()
        .map(|chunk| {
            let mut samples = chunk.samples.clone();
            samples.resize(samples.len().max(MIN_INPUT_SAMPLES), 0.0);
            samples
        })
        .collect();
    let decode = |transcriber: &mut steno_core::WhisperTranscriber, i: usize| {
        let plan = WindowPlan::for_samples(padded[i].len());
        transcriber
            .decode(chunks[i].index, &padded[i], plan)
            .expect("the decode")
            .text
    };
    let fresh: Vec<String> = (0..chunks.len())
        .map(|i| decode(&mut model.transcriber().expect("a state"), i))
        .collect();
    assert!(fresh.iter().all(|text| !text.is_empty()), "{fresh:?}");
    // One state through every utterance, then again backwards, then each one twice more.
    let mut reused = model.transcriber().expect("a state");
    let order = (0..chunks.len())
        .chain((0..chunks.len()).rev())
        .chain((0..chunks.len()).flat_map(|i| [i, i]));
    for i in order {
        assert_eq!(
            decode(&mut reused, i),
            fresh[i],
            "utterance {i} on a state that has decoded others"
        );
    }
}
