//! A chunk's text depends only on the chunk and the options, not on what the Whisper state
//! decoded before, so every backend writes the same text whichever state a chunk meets. Two
//! things in whisper.cpp broke that, each tested here on a fresh state against one that has
//! decoded the other chunks (forwards, backwards, then each twice more):
//! - Upstream's beam search draws the candidates at random from a generator that one state
//!   keeps across calls (the vendored whisper.cpp takes the likeliest, `vendor/README.md`): on
//!   `session.wav` with 2 beams, 3 of its 5 utterances then read differently on a fresh state
//!   and on one that has decoded the others, and a decode repeated on one state changed its
//!   words.
//! - whisper.cpp's own no-speech rule drops a segment by a no-speech probability read from a
//!   row of logits the decode never wrote, which holds what the state's previous decode left
//!   there. On `not-speech.flac` the chord then read "Be" on a fresh state and nothing on one
//!   that had transcribed the sentence and noise bursts before it. steno turns that rule off
//!   (its own, `--no-speech-threshold`, reads the probability itself).

use std::path::PathBuf;
use std::time::Duration;

use steno_core::window::{MIN_INPUT_SAMPLES, WindowPlan};
use steno_core::{
    Chunk, Chunker, ChunkerConfig, DecodingOptions, Transcriber, WhisperModel, WhisperTranscriber,
    read_file,
};

fn workspace_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// tiny.en (q8_0) with `options`.
fn model(options: DecodingOptions) -> WhisperModel {
    let path = workspace_file("models/ggml-tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask model`",
        path.display()
    );
    WhisperModel::load(&path, 2)
        .and_then(|model| model.with_options(options))
        .expect("the model")
}

/// The chunks `config` cuts `fixture` (in `conformance/inputs/`) into.
fn chunks(fixture: &str, config: &ChunkerConfig) -> Vec<Chunk> {
    let samples =
        read_file(workspace_file(&format!("conformance/inputs/{fixture}"))).expect("the fixture");
    let mut chunks = Vec::new();
    let mut chunker = Chunker::new(config).expect("a chunker");
    chunker.push(&samples, &mut chunks);
    chunker.finish(&mut chunks);
    chunks
}

/// Asserts that one state writes `fresh[i]` (chunk `i`'s text on a fresh state) for every
/// chunk, after decoding the others: forwards, backwards, then each chunk twice more.
fn assert_reused_state_reads_as_fresh(
    model: &WhisperModel,
    fresh: &[String],
    decode: impl Fn(&mut WhisperTranscriber, usize) -> String,
) {
    let mut reused = model.transcriber().expect("a state");
    let order = (0..fresh.len())
        .chain((0..fresh.len()).rev())
        .chain((0..fresh.len()).flat_map(|i| [i, i]));
    for i in order {
        assert_eq!(
            decode(&mut reused, i),
            fresh[i],
            "chunk {i} on a state that has decoded others"
        );
    }
}

#[test]
fn a_beam_decode_does_not_depend_on_what_the_state_decoded_before() {
    let mut options = DecodingOptions::default();
    options.beam_size = 2;
    let model = model(options);
    let chunks = chunks("session.wav", &ChunkerConfig::default());
    assert_eq!(chunks.len(), 5, "session.wav is five sentences");
    let padded: Vec<Vec<f32>> = chunks
        .iter()
        .map(|chunk| {
            let mut samples = chunk.samples.clone();
            samples.resize(samples.len().max(MIN_INPUT_SAMPLES), 0.0);
            samples
        })
        .collect();
    let decode = |transcriber: &mut WhisperTranscriber, i: usize| {
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
    assert_reused_state_reads_as_fresh(&model, &fresh, decode);
}

#[test]
fn a_chunk_reads_the_same_on_a_fresh_state_and_on_a_used_one() {
    // steno's own no-speech rule off too: the captions are what this is about.
    let mut options = DecodingOptions::default();
    options.no_speech_threshold = None;
    let model = model(options);
    let mut config = ChunkerConfig::default();
    // A file's trailing padding, as `steno transcribe` cuts it.
    config.trailing_padding = Duration::from_millis(200);
    let chunks = chunks("not-speech.flac", &config);
    assert_eq!(chunks.len(), 5, "two sentences and three sounds");
    let transcribe = |transcriber: &mut WhisperTranscriber, i: usize| {
        transcriber
            .transcribe(&chunks[i])
            .expect("the transcript")
            .text
    };
    let fresh: Vec<String> = (0..chunks.len())
        .map(|i| transcribe(&mut model.transcriber().expect("a state"), i))
        .collect();
    // What makes this a test of the state: low-confidence captions of sounds, the decodes
    // whisper.cpp's rule judged.
    assert!(
        fresh[1..4].iter().any(|text| !text.is_empty()),
        "Whisper captioned none of the sounds: {fresh:?}"
    );
    assert_reused_state_reads_as_fresh(&model, &fresh, transcribe);
}
