//! `WhisperModel::with_options` replaces every decoding option, the prompt too: a model built
//! with a prompt and then given options without one decodes as if it never had it.

use std::path::PathBuf;

use steno_core::{Chunk, DecodingOptions, TranscriberFactory, WhisperModel, read_file};

fn workspace_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn text_of(model: &WhisperModel, samples: &[f32]) -> String {
    let mut transcriber = model.create().expect("a state");
    transcriber
        .transcribe(&Chunk::new(0, 0, samples.to_vec()))
        .expect("the decode")
        .text
}

#[test]
fn options_without_a_prompt_drop_the_prompt_given_before() {
    let path = workspace_file("models/ggml-tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask model`",
        path.display()
    );
    let samples = read_file(workspace_file("conformance/inputs/session.wav")).expect("fixture");
    let samples = &samples[..16_000 * 4];
    let plain = WhisperModel::load(&path, 2).expect("the model");
    let prompt = "QUACK QUACK QUACK. Quack, quack, quack; QUACK!";
    let prompted = WhisperModel::load(&path, 2)
        .and_then(|model| model.with_prompt(prompt))
        .expect("the prompted model");
    assert_eq!(prompted.options().prompt.as_deref(), Some(prompt));
    let plain_text = text_of(&plain, samples);
    assert_ne!(
        text_of(&prompted, samples),
        plain_text,
        "the prompt should steer this decode, or the test proves nothing"
    );
    let reset = prompted
        .with_options(DecodingOptions::default())
        .expect("default options");
    assert_eq!(reset.options(), DecodingOptions::default());
    assert_eq!(reset.name(), plain.name());
    assert_eq!(text_of(&reset, samples), plain_text);
}
