//! Proves the capture callback body never allocates, for every PCM sample format cpal offers.
//!
//! A counting global allocator needs `unsafe impl GlobalAlloc`: the workspace denies
//! `unsafe_code`, so this test crate (and only it) allows it. The allocator forwards to the
//! system allocator and counts calls made on the thread that is being measured.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cpal::{FromSample, I24, Sample, U24};
use steno_core::{RingWriter, push_captured, ring};

struct CountingAllocator;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: thread-locals may already be gone while a thread exits.
    let measuring = MEASURING.try_with(Cell::get).unwrap_or(false);
    if measuring {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_allocation();
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations (and frees) made by `body` on this thread.
fn allocations_in(body: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    MEASURING.with(|m| m.set(true));
    body();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// Callback buffer sizes devices really deliver: (frames, channels).
const BUFFERS: &[(usize, usize)] = &[
    (64, 1),
    (441, 2),
    (480, 1),
    (480, 2),
    (512, 2),
    (1024, 1),
    (1024, 6),
    (4096, 2),
    (8192, 8),
    (3, 64),
];

/// A loud tone (peak 0.5, reached within three frames) in format `T`, interleaved over
/// `channels`.
fn tone<T>(frames: usize, channels: usize) -> Vec<T>
where
    T: Sample + FromSample<f32>,
{
    (0..frames * channels)
        .map(|i| (0.5 * ((i / channels) as f32 * 0.9).sin()).to_sample::<T>())
        .collect()
}

/// Drives the callback body with every buffer, into a roomy ring and into a full one (the
/// drop path), and checks it allocated nothing and converted the samples.
fn check_format<T>(format: &str)
where
    T: Sample + FromSample<f32>,
    f32: FromSample<T>,
{
    for &(frames, channels) in BUFFERS {
        let data = tone::<T>(frames, channels);
        let (mut roomy, mut roomy_reader) = ring(frames * channels * 4);
        let (mut full, full_reader) = ring(channels);
        full.push_frames_or_drop(&vec![0.0; channels], channels);
        let mut pushed = (0, 0);
        let run = |writer: &mut RingWriter| push_captured(&data, channels, writer);
        let count = allocations_in(|| {
            pushed.0 = run(&mut roomy);
            pushed.0 += run(&mut roomy);
            pushed.1 = run(&mut full);
        });
        assert_eq!(
            count, 0,
            "{format}, {frames} frames x {channels} channels: the callback allocated"
        );
        assert_eq!(pushed, (2 * data.len(), 0), "{format}");
        assert_eq!(full_reader.dropped(), data.len() as u64, "{format}");
        let mut out = Vec::new();
        roomy_reader.pop_into(&mut out);
        let expected: Vec<f32> = data.iter().map(|&s| s.to_sample::<f32>()).collect();
        assert_eq!(&out[..data.len()], expected.as_slice(), "{format}");
        let peak = out.iter().fold(0.0_f32, |m, s| m.max(s.abs()));
        assert!((0.4..0.6).contains(&peak), "{format}: peak {peak}");
    }
}

#[test]
fn the_capture_callback_never_allocates_for_any_sample_format() {
    // The counter itself must see allocations, or a zero proves nothing.
    assert!(allocations_in(|| drop(vec![0_u8; 16])) > 0);
    check_format::<i8>("i8");
    check_format::<i16>("i16");
    check_format::<I24>("i24");
    check_format::<i32>("i32");
    check_format::<i64>("i64");
    check_format::<u8>("u8");
    check_format::<u16>("u16");
    check_format::<U24>("u24");
    check_format::<u32>("u32");
    check_format::<u64>("u64");
    check_format::<f32>("f32");
    check_format::<f64>("f64");
}
