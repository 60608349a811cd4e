//! `steno transcribe` on a real terminal (a tmux pane): the progress bar shows while the
//! text is written and leaves no copy of itself between the transcript's lines.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fixture, model, run_ok, steno};

/// How long the run in the pane may take (about 10 s here).
const DEADLINE: Duration = Duration::from_secs(300);

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux runs (cargo xtask test installs it)")
}

/// The pane's whole screen and scrollback once the command has written `done`, and whether
/// the progress bar was on the screen while it ran.
fn run_in_pane(session: &str, command: &str, done: &Path) -> (String, bool) {
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "400",
        "-y",
        "50",
        command,
    ]);
    assert!(started.status.success(), "{started:?}");
    let began = Instant::now();
    let mut bar_seen = false;
    while !done.exists() {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        bar_seen |= String::from_utf8_lossy(&screen.stdout).contains("s of audio");
        if began.elapsed() > DEADLINE {
            tmux(&["kill-session", "-t", session]);
            panic!("the run in the pane did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let screen = tmux(&["capture-pane", "-p", "-t", session, "-S", "-500"]);
    tmux(&["kill-session", "-t", session]);
    (
        String::from_utf8_lossy(&screen.stdout).into_owned(),
        bar_seen,
    )
}

#[test]
fn the_progress_bar_leaves_no_copy_of_itself_between_lines() {
    let input = fixture("reading.flac");
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let command = format!(
        "STENO_MODEL='{}' '{}' transcribe '{}'; echo \"exit $?\" > '{}'; sleep 600",
        model().display(),
        env!("CARGO_BIN_EXE_steno"),
        input.display(),
        done.display()
    );
    let session = format!("steno-terminal-test-{}", std::process::id());
    let (screen, bar_seen) = run_in_pane(&session, &command, &done);
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "exit 0");
    assert!(bar_seen, "no progress bar while the text was written");

    // The same run without a terminal: the transcript alone.
    let plain = run_ok(steno().arg("transcribe").arg(&input));
    let expected: Vec<&str> = std::str::from_utf8(&plain.stdout)
        .unwrap()
        .lines()
        .collect();
    let shown: Vec<&str> = screen
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect();
    assert!(expected.len() > 10, "{expected:?}");
    // Every line on the screen is a transcript line, whole and in order: no bar left over,
    // none glued to the text.
    assert_eq!(shown, expected, "the screen:\n{screen}");
}
