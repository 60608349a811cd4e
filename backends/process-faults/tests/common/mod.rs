//! The audio and pipeline both worker backends' fault tests feed their scripted workers.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;
use std::time::Duration;

use steno_core::{
    ChunkerConfig, CollectingSink, Pipeline, PipelineBuilder, ScriptedTranscriber, Segment,
    VadKind, VecSource,
};

pub(crate) fn tone(seconds: f32) -> Vec<f32> {
    (0..(seconds * 16_000.0) as usize)
        .map(|i| 0.3 * (i as f32 * 0.05).sin())
        .collect()
}

/// `utterances` bursts of 0.6 s "speech" separated by 0.75 s of silence: one chunk each.
pub(crate) fn session(utterances: usize) -> Vec<f32> {
    let mut audio = vec![0.0; 8_000];
    for _ in 0..utterances {
        audio.extend(tone(0.6));
        audio.extend(vec![0.0; 12_000]);
    }
    audio
}

/// `audio` to `sink` through the scripted transcriber, cut by the energy VAD: the builder
/// both pipelines below start from.
fn scripted(audio: Vec<f32>, sink: CollectingSink) -> PipelineBuilder {
    Pipeline::builder(
        VecSource::new(audio),
        Arc::new(ScriptedTranscriber::new()),
        sink,
    )
    .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
}

/// `audio` to `sink` through the scripted transcriber, cut by the energy VAD.
pub(crate) fn pipeline(audio: Vec<f32>, sink: CollectingSink) -> Pipeline {
    scripted(audio, sink)
        .build()
        .expect("the test pipeline is valid")
}

/// One 2 s utterance between silences.
pub(crate) fn one_utterance() -> Vec<f32> {
    let mut audio = vec![0.0; 8_000];
    audio.extend(tone(2.0));
    audio.extend(vec![0.0; 16_000]);
    audio
}

/// `audio` to `sink` in real time with a partial every 250 ms, through the scripted
/// transcriber, cut by the energy VAD.
pub(crate) fn realtime_interim_pipeline(audio: Vec<f32>, sink: CollectingSink) -> Pipeline {
    scripted(audio, sink)
        .realtime(true)
        .interim_step(Some(Duration::from_millis(250)))
        .build()
        .expect("the test pipeline is valid")
}

/// The text of each segment, in order.
pub(crate) fn texts(segments: &[Segment]) -> Vec<String> {
    segments.iter().map(|s| s.text.clone()).collect()
}
