//! `steno transcribe` on a real terminal (a tmux pane): the progress bar shows while the
//! text is written and leaves no copy of itself between the transcript's lines; with
//! `--interim`, partial hypotheses rewrite one line and only the finals remain.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{fixture, model, run_ok, steno};

/// How long the run in the pane may take (about 10 s here).
const DEADLINE: Duration = Duration::from_secs(300);

/// Held by each test while its pane runs: two Whisper runs at once spin against each other
/// on two cores, and the real-time one would skip its partials.
static ONE_PANE: Mutex<()> = Mutex::new(());

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux runs (cargo xtask test installs it)")
}

/// Runs `steno transcribe ARGS INPUT` in a tmux pane until it ends, calling `sample` with the
/// screen (escape sequences for colours and attributes included) every 50 ms meanwhile; the
/// pane's whole screen and scrollback as plain text at the end.
fn run_in_pane(args: &str, input: &Path, mut sample: impl FnMut(&str)) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let done = dir.path().join("done");
    let command = format!(
        "STENO_MODEL='{}' '{}' transcribe {args} '{}'; echo \"exit $?\" > '{}'; sleep 600",
        model().display(),
        env!("CARGO_BIN_EXE_steno"),
        input.display(),
        done.display()
    );
    let session = format!("steno-terminal-test-{}", std::process::id());
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "400",
        "-y",
        "50",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");
    let began = Instant::now();
    while !done.exists() {
        let screen = tmux(&["capture-pane", "-p", "-e", "-t", &session]);
        sample(&String::from_utf8_lossy(&screen.stdout));
        if began.elapsed() > DEADLINE {
            tmux(&["kill-session", "-t", &session]);
            panic!("the run in the pane did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let screen = tmux(&["capture-pane", "-p", "-t", &session, "-S", "-500"]);
    tmux(&["kill-session", "-t", &session]);
    let status = std::fs::read_to_string(&done).expect("the command's exit status");
    assert_eq!(status.trim(), "exit 0");
    String::from_utf8_lossy(&screen.stdout).into_owned()
}

/// The screen's lines with text, trailing blanks trimmed.
fn text_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn the_progress_bar_leaves_no_copy_of_itself_between_lines() {
    let _alone = ONE_PANE.lock().unwrap_or_else(PoisonError::into_inner);
    let input = fixture("reading.flac");
    let mut bar_seen = false;
    let screen = run_in_pane("", &input, |screen| {
        bar_seen |= screen.contains("s of audio")
    });
    assert!(bar_seen, "no progress bar while the text was written");

    // The same run without a terminal: the transcript alone.
    let plain = run_ok(steno().arg("transcribe").arg(&input));
    let expected: Vec<&str> = std::str::from_utf8(&plain.stdout)
        .unwrap()
        .lines()
        .collect();
    assert!(expected.len() > 10, "{expected:?}");
    // Every line on the screen is a transcript line, whole and in order: no bar left over,
    // none glued to the text.
    assert_eq!(text_lines(&screen), expected, "the screen:\n{screen}");
}

#[test]
fn interim_results_rewrite_one_line_and_leave_only_the_finals() {
    let _alone = ONE_PANE.lock().unwrap_or_else(PoisonError::into_inner);
    let input = fixture("session.wav");
    // A partial is on the bottom text line, its unstable words dimmed (SGR 2).
    let mut dimmed_partials = 0;
    let screen = run_in_pane("--realtime --interim", &input, |screen| {
        dimmed_partials += usize::from(screen.contains("\x1b[2m"));
    });
    assert!(
        dimmed_partials >= 3,
        "partials with dimmed words were seen on {dimmed_partials} screens"
    );

    // Piped, text holds the finals alone (those of real time: each utterance decoded alone,
    // with real time's padding); on the terminal each partial was replaced by its final, so
    // the screen holds exactly those lines.
    let piped = run_ok(
        steno()
            .args([
                "transcribe",
                "--interim",
                "--no-pack",
                "--trailing-padding-ms",
                "100",
            ])
            .arg(&input),
    );
    let expected: Vec<&str> = std::str::from_utf8(&piped.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert_eq!(text_lines(&screen), expected, "the screen:\n{screen}");
}
