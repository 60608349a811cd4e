//! A chunk's text depends only on the chunk and the options, not on what the Whisper state
//! transcribed before, so every backend writes the same text whichever state a chunk meets.
//! whisper.cpp's own no-speech rule broke that: it drops a segment by a no-speech probability
//! read from a row of logits the decode never wrote, which holds what the state's previous
//! decode left there. On `not-speech.flac` the chord then read "Be" on a fresh state and
//! nothing on one that had transcribed the sentence and noise bursts before it. steno turns
//! that rule off (its own, `--no-speech-threshold`, reads the probability itself).

use std::path::PathBuf;
use std::time::Duration;

use steno_core::{Chunker, ChunkerConfig, DecodingOptions, Transcriber, WhisperModel, read_file};

fn workspace_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn a_chunk_reads_the_same_on_a_fresh_state_and_on_a_used_one() {
    let path = workspace_file("models/ggml-tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask model`",
        path.display()
    );
    // steno's own no-speech rule off too: the captions are what this is about.
    let mut options = DecodingOptions::default();
    options.no_speech_threshold = None;
    let model = WhisperModel::load(&path, 2)
        .and_then(|model| model.with_options(options))
        .expect("the model");
    let samples = read_file(workspace_file("conformance/inputs/not-speech.flac")).expect("fixture");
    let mut config = ChunkerConfig::default();
    // A file's trailing padding, as `steno transcribe` cuts it.
    config.trailing_padding = Duration::from_millis(200);
    let mut chunks = Vec::new();
    let mut chunker = Chunker::new(&config).expect("a chunker");
    chunker.push(&samples, &mut chunks);
    chunker.finish(&mut chunks);
    assert_eq!(chunks.len(), 5, "two sentences and three sounds");
    let fresh: Vec<String> = chunks
        .iter()
        .map(|chunk| {
            let mut transcriber = model.transcriber().expect("a state");
            transcriber.transcribe(chunk).expect("the transcript").text
        })
        .collect();
    // What makes this a test of the state: low-confidence captions of sounds, the decodes
    // whisper.cpp's rule judged.
    assert!(
        fresh[1..4].iter().any(|text| !text.is_empty()),
        "Whisper captioned none of the sounds: {fresh:?}"
    );
    // One state through every chunk, then backwards, then each one twice more.
    let mut reused = model.transcriber().expect("a state");
    let order = (0..chunks.len())
        .chain((0..chunks.len()).rev())
        .chain((0..chunks.len()).flat_map(|i| [i, i]));
    for i in order {
        let text = reused.transcribe(&chunks[i]).expect("the transcript").text;
        assert_eq!(
            text, fresh[i],
            "chunk {i} on a state that has transcribed others"
        );
    }
}
