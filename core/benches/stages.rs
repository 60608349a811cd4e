//! Criterion benches of core's hot paths: the ring, the chunker (both VADs) and resampling.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use steno_core::{Chunker, ChunkerConfig, Conditioner, VadKind, ring};

/// Ten seconds of speech-like bursts and pauses at 16 kHz.
fn session() -> Vec<f32> {
    (0..160_000)
        .map(|i| {
            let burst = (i / 16_000) % 2 == 0;
            if burst {
                0.3 * (i as f32 * 0.05).sin()
            } else {
                0.001 * (i as f32 * 0.9).sin()
            }
        })
        .collect()
}

fn ring_push_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    for block in [320usize, 4096] {
        let samples = vec![0.25f32; block];
        group.throughput(Throughput::Elements(block as u64));
        group.bench_with_input(
            BenchmarkId::new("push_pop", block),
            &samples,
            |b, samples| {
                let (mut writer, mut reader) = ring(64 * 1024);
                let mut out = Vec::with_capacity(64 * 1024);
                b.iter(|| {
                    writer.push_or_drop(black_box(samples));
                    out.clear();
                    reader.pop_into(&mut out);
                    black_box(out.len())
                });
            },
        );
    }
    group.finish();
}

fn chunker_throughput(c: &mut Criterion) {
    let audio = session();
    let mut group = c.benchmark_group("chunker");
    group.throughput(Throughput::Elements(audio.len() as u64));
    group.sample_size(20);
    for vad in [VadKind::Energy, VadKind::Earshot, VadKind::Fixed] {
        let config = ChunkerConfig::default().with_vad(vad);
        group.bench_function(BenchmarkId::new("10s_of_audio", vad.name()), |b| {
            b.iter(|| {
                let mut chunker = Chunker::new(&config).expect("valid config");
                let mut chunks = Vec::new();
                for block in audio.chunks(320) {
                    chunker.push(block, &mut chunks);
                }
                chunker.finish(&mut chunks);
                black_box(chunks.len())
            });
        });
    }
    group.finish();
}

fn resample_44k_stereo(c: &mut Criterion) {
    let input: Vec<f32> = (0..44_100 * 2)
        .map(|i| (i as f32 * 0.01).sin() * 0.5)
        .collect();
    let mut group = c.benchmark_group("conditioner");
    group.throughput(Throughput::Elements(44_100));
    group.bench_function("1s_44k_stereo_to_16k_mono", |b| {
        b.iter(|| {
            let mut conditioner = Conditioner::new(44_100, 2).expect("valid rate");
            let mut out = Vec::new();
            for block in input.chunks(8192) {
                conditioner.push(block, &mut out);
            }
            conditioner.finish(&mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    ring_push_pop,
    chunker_throughput,
    resample_44k_stereo
);
criterion_main!(benches);
