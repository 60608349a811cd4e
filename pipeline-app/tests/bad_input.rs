//! Bad input gets one clear line naming the file, a non-zero exit, no panic and no output file.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Runs `steno transcribe -o out.txt <args>` in `dir` and checks the failure contract; returns
/// the error line.
fn fails_cleanly(dir: &Path, args: &[&std::ffi::OsStr], names: &Path) -> String {
    let out_file = dir.join("out.txt");
    let output = steno()
        .arg("transcribe")
        .arg("-o")
        .arg(&out_file)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "succeeded on bad input {}",
        names.display()
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(&names.display().to_string()),
        "the error names {}: {stderr}",
        names.display()
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().contains("out")
                || p.extension().is_some_and(|e| e == "partial")
        })
        .collect();
    assert!(leftovers.is_empty(), "output left behind: {leftovers:?}");
    lines[0].to_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn broken_audio_files_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let session = std::fs::read(fixture("session.wav")).unwrap();
    let not_speech = std::fs::read(fixture("not-speech.flac")).unwrap();
    let mp3 = std::fs::read(fixture("session-opening.mp3")).unwrap();
    let ogg = std::fs::read(fixture("session-opening.ogg")).unwrap();
    let mut random = Vec::with_capacity(4096);
    let mut state = 0x2545_f491_u32;
    for _ in 0..4096 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        random.push(state as u8);
    }
    let cases = [
        (write(dir.path(), "empty.wav", b""), "empty file"),
        (
            write(dir.path(), "header.wav", &session[..30]),
            "not a valid WAV file",
        ),
        // 1.2 s of the session's 21.7 s: the header promises more data than there is.
        (
            write(dir.path(), "cut.wav", &session[..40_000]),
            "truncated WAV data",
        ),
        // Half of a FLAC file: its header (STREAMINFO) declares every sample.
        (
            write(dir.path(), "cut.flac", &not_speech[..not_speech.len() / 2]),
            "truncated FLAC data",
        ),
        // Half of an MP3 file whose Xing/Info frame counts its frames.
        (
            write(dir.path(), "cut.mp3", &mp3[..mp3.len() / 2]),
            "truncated MP3 data",
        ),
        // Half of an Ogg file: it stops inside a page.
        (
            write(dir.path(), "cut.ogg", &ogg[..ogg.len() / 2]),
            "truncated Ogg data",
        ),
        (
            write(dir.path(), "random.wav", &random),
            "not a recognised audio file",
        ),
        (
            write(dir.path(), "notes.wav", b"Meeting notes, not audio.\n"),
            "not a recognised audio file",
        ),
        (dir.path().join("missing.wav"), "no such file"),
    ];
    for (path, problem) in cases {
        let line = fails_cleanly(dir.path(), &[path.as_os_str()], &path);
        assert!(
            line.contains(problem),
            "{}: expected {problem:?} in {line:?}",
            path.display()
        );
    }
}

#[test]
fn a_model_file_that_is_not_a_model_is_rejected_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = write(dir.path(), "fake-model.bin", &[7u8; 4096]);
    let line = fails_cleanly(
        dir.path(),
        &[
            "--model".as_ref(),
            fake.as_os_str(),
            fixture("silence.wav").as_os_str(),
        ],
        &fake,
    );
    assert!(line.contains("not a ggml Whisper model"), "{line}");
}

#[test]
fn a_missing_model_says_how_to_install_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.bin");
    let line = fails_cleanly(
        dir.path(),
        &[
            "--model".as_ref(),
            missing.as_os_str(),
            fixture("silence.wav").as_os_str(),
        ],
        &missing,
    );
    assert!(line.contains("no such file"), "{line}");
}

#[test]
fn out_of_range_choices_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("silence.wav");
    let line = fails_cleanly(
        dir.path(),
        &["--max-chunk".as_ref(), "45".as_ref(), input.as_os_str()],
        Path::new("30 s"),
    );
    assert!(line.contains("max chunk"), "{line}");
}

#[test]
fn interim_results_without_utterances_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("silence.wav");
    let args = [
        "--interim".as_ref(),
        "--vad".as_ref(),
        "fixed".as_ref(),
        input.as_os_str(),
    ];
    let line = fails_cleanly(dir.path(), &args, Path::new("--vad fixed"));
    assert!(line.contains("--interim"), "{line}");
}

#[test]
fn opus_is_refused_naming_its_container_and_codec_and_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let opus = fixture("word.opus");
    let line = fails_cleanly(dir.path(), &[opus.as_os_str()], &opus);
    let convert = format!(
        "ffmpeg -i {} -ar 16000 -ac 1 {}",
        opus.display(),
        opus.with_extension("wav").display()
    );
    assert!(
        line.contains("Ogg file with Opus audio, which steno cannot decode")
            && line.ends_with(&convert),
        "{line}"
    );

    // The same bytes on stdin: recognised as a container, not transcribed as raw PCM.
    let output = steno()
        .args(["transcribe", "-"])
        .stdin(std::fs::File::open(&opus).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: -: Ogg file with Opus audio, which steno cannot decode; convert it first: pipe \
         it through `ffmpeg -i - -ar 16000 -ac 1 -f wav -`"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_prompt_whisper_cannot_take_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("word.wav");
    let long = "word ".repeat(400);
    for (prompt, problem) in [("", "it is empty"), (long.as_str(), "401 tokens")] {
        let args = ["--prompt".as_ref(), prompt.as_ref(), input.as_os_str()];
        let line = fails_cleanly(dir.path(), &args, Path::new("the prompt"));
        assert!(line.contains(problem), "{line}");
    }
}
