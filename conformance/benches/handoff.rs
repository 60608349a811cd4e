//! Criterion bench of each in-process backend's hand-offs: a whole run over many short
//! utterances with a zero-cost scripted transcriber, so the time is the pipeline's own.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use steno_core::{
    Backend, ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber, VadKind, VecSource,
};

const UTTERANCES: usize = 50;

/// 50 utterances of 0.3 s "speech" (a loud tone) separated by 0.5 s of silence.
fn audio() -> Vec<f32> {
    let mut audio = Vec::new();
    for _ in 0..UTTERANCES {
        audio.extend((0..4_800).map(|i| 0.3 * (i as f32 * 0.05).sin()));
        audio.extend(std::iter::repeat_n(0.0, 8_000));
    }
    audio
}

fn backends() -> Vec<(&'static str, Box<dyn Backend>)> {
    vec![
        ("threads", Box::new(steno_threads::ThreadsBackend::new())),
        ("tokio", Box::new(steno_tokio::TokioBackend::new())),
        (
            "async-std",
            Box::new(steno_async_std::AsyncStdBackend::new()),
        ),
        ("smol", Box::new(steno_smol::SmolBackend::new())),
        ("rayon", Box::new(steno_rayon::RayonBackend::new())),
    ]
}

fn handoff(c: &mut Criterion) {
    let audio = audio();
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(UTTERANCES as u64));
    group.sample_size(20);
    for (name, backend) in backends() {
        group.bench_function(BenchmarkId::new("50_chunks", name), |b| {
            b.iter(|| {
                let sink = CollectingSink::new();
                let pipeline = Pipeline::builder(
                    VecSource::new(audio.clone()).with_block_len(320),
                    Arc::new(ScriptedTranscriber::new()),
                    sink.clone(),
                )
                .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
                .build()
                .expect("a valid pipeline");
                let report = backend.run(pipeline).expect("the run succeeds");
                assert_eq!(report.chunks, UTTERANCES);
                black_box(sink.segments().len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);
