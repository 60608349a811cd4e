//! What `steno` logs: nothing but its own warnings by default, and its decisions (each
//! utterance cut, each decode and its time) with `RUST_LOG=debug`.

mod common;

use common::{fixture, run_ok, steno};

#[test]
fn debug_logs_show_each_cut_and_each_decode_and_the_default_shows_nothing() {
    let transcribe = |log: Option<&str>| {
        let mut command = steno();
        command.args(["transcribe", "--simulate-cost-ms", "1"]);
        if let Some(level) = log {
            command.env("RUST_LOG", level);
        }
        let output = run_ok(command.arg(fixture("session.wav")));
        String::from_utf8(output.stderr).expect("UTF-8 logs")
    };
    assert_eq!(transcribe(None), "", "a clean run logs nothing by default");
    let debug = transcribe(Some("debug"));
    let cuts = debug
        .lines()
        .filter(|l| l.contains("utterance cut"))
        .count();
    let decodes = debug.lines().filter(|l| l.contains("transcribed")).count();
    assert!(cuts >= 2 && decodes >= 2, "{debug}");
    assert!(
        debug.contains("decode_ms="),
        "each decode says how long it took: {debug}"
    );
}
