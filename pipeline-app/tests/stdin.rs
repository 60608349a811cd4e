//! `steno transcribe -`: a container on stdin (what `arecord` and most tools write) is
//! recognised and decoded; anything else is raw PCM, and `--raw` says so explicitly, at any
//! rate and channel count. The scripted stand-in transcribes: its text names each chunk's
//! audio span, so equal texts mean the same audio was decoded and cut the same way.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{fixture, steno};

/// The text lines of a scripted run, with `args`, fed `stdin`.
fn scripted_lines(args: &[&str], stdin: &[u8]) -> Vec<String> {
    let mut child = steno()
        .args(["transcribe", "--simulate-cost-ms", "1", "--no-pack"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("steno starts");
    let mut input = child.stdin.take().expect("a stdin pipe");
    let bytes = stdin.to_vec();
    // Written from a thread: steno reads while it writes.
    let feeder = std::thread::spawn(move || {
        // steno may stop reading early on an error; the test then fails on its status.
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().expect("steno runs");
    feeder.join().expect("the feeder thread");
    assert!(
        output.status.success(),
        "steno {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The text lines of a scripted run on the file itself.
fn from_file(path: &Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_steno"))
        .env("STENO_MODEL", common::model())
        .args(["transcribe", "--simulate-cost-ms", "1", "--no-pack"])
        .arg(path)
        .output()
        .expect("steno runs");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn s16le(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect()
}

#[test]
fn wav_flac_mp3_ogg_and_m4a_on_stdin_are_decoded_as_their_files_are() {
    // With the fewest utterances each must give. The M4A keeps its index after its audio, as
    // ffmpeg writes it, so a pipe cannot be read in one pass.
    let inputs = [
        ("session.wav", 5),
        ("short-utterances.flac", 5),
        ("session-opening.mp3", 2),
        ("session-opening.ogg", 2),
        ("session-opening.m4a", 2),
    ];
    for (name, utterances) in inputs {
        let path = fixture(name);
        let expected = from_file(&path);
        assert!(expected.len() >= utterances, "{name}: {expected:?}");
        let bytes = std::fs::read(&path).expect("the fixture");
        assert_eq!(
            scripted_lines(&["-"], &bytes),
            expected,
            "{name} piped to stdin must be decoded, not read as raw PCM"
        );
    }
}

#[test]
fn a_wav_of_unknown_length_is_read_to_its_end_from_a_pipe_or_a_file() {
    // A writer that cannot go back to fill in the header's lengths leaves a placeholder: sox
    // into a pipe 0x7FFFF000, arecord 0x80000000, ffmpeg 0xFFFFFFFF, a recorder stopped early
    // 0. Each is cut here in the middle of a frame, as a stream stopped by a signal can be.
    let path = fixture("session.wav");
    let expected = from_file(&path);
    let whole = std::fs::read(&path).expect("the fixture");
    let data = whole
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk");
    let dir = tempfile::tempdir().expect("a temporary directory");
    for placeholder in [0x7fff_f000u32, 0x8000_0000, 0xffff_ffff, 0] {
        let mut bytes = whole.clone();
        bytes[4..8].copy_from_slice(&placeholder.wrapping_add(36).to_le_bytes());
        bytes[data + 4..data + 8].copy_from_slice(&placeholder.to_le_bytes());
        bytes.pop();
        assert_eq!(
            scripted_lines(&["-"], &bytes),
            expected,
            "{placeholder:#x} on stdin"
        );
        let file = dir.path().join(format!("{placeholder:x}.wav"));
        std::fs::write(&file, &bytes).expect("written");
        assert_eq!(from_file(&file), expected, "{placeholder:#x} in a file");
    }
}

#[test]
fn raw_pcm_on_stdin_is_still_read_as_raw_and_raw_takes_a_rate_and_channels() {
    let path = fixture("session.wav");
    let expected = from_file(&path);
    let samples = steno_core::read_file(&path).expect("the fixture decodes");
    assert_eq!(
        scripted_lines(&["-"], &s16le(&samples)),
        expected,
        "16 kHz mono s16le is the fallback"
    );
    assert_eq!(scripted_lines(&["--raw", "-"], &s16le(&samples)), expected);

    // The same audio as 32 kHz stereo: each sample twice, in both channels.
    let stereo_32k: Vec<f32> = samples.iter().flat_map(|&s| [s; 4]).collect();
    let lines = scripted_lines(
        &["--raw", "--rate", "32000", "--channels", "2", "-"],
        &s16le(&stereo_32k),
    );
    assert_eq!(
        lines.len(),
        expected.len(),
        "resampled and downmixed, the same utterances: {lines:?} vs {expected:?}"
    );
}
