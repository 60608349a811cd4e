//! The formats as written: text, JSON Lines, SRT and WebVTT, labels and partials.

use super::*;

fn segment(chunk: usize, start: f64, end: f64, text: &str) -> Segment {
    Segment {
        speech_end: end - 0.2,
        emitted_at: end + 0.3,
        latency_ms: 300,
        ..Segment::new(chunk, start, end, text)
    }
}

fn render(format: Format, segments: &[Segment]) -> String {
    let mut sink = FormatSink::new(format, Vec::new(), "test");
    for s in segments {
        sink.write(s).unwrap();
    }
    sink.finish().unwrap();
    String::from_utf8(sink.into_inner()).unwrap()
}

#[test]
fn each_format_renders_as_specified() {
    let segments = [
        segment(0, 0.5, 2.0, "Hello there."),
        segment(1, 3661.0625, 3662.5, "Second."),
    ];
    assert_eq!(render(Format::Text, &segments), "Hello there.\nSecond.\n");
    assert_eq!(
        render(Format::Srt, &segments),
        "1\n00:00:00,500 --> 00:00:02,000\nHello there.\n\n\
         2\n01:01:01,063 --> 01:01:02,500\nSecond.\n\n"
    );
    assert_eq!(
        render(Format::Vtt, &segments),
        "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello there.\n\n\
         01:01:01.063 --> 01:01:02.500\nSecond.\n\n"
    );
    let jsonl = render(Format::Jsonl, &segments);
    let first: Segment = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first, segment(0, 0.5, 2.0, "Hello there."));
    assert!(jsonl.lines().nth(1).unwrap().contains("\"start\":3661.063"));
}

#[test]
fn each_format_names_a_labelled_segments_source() {
    let segments = [
        segment(0, 0.5, 2.0, "Hello there.").with_source("mic"),
        segment(1, 2.5, 3.0, "Hi.").with_source("<them>"),
    ];
    assert_eq!(
        render(Format::Text, &segments),
        "[mic] Hello there.\n[<them>] Hi.\n"
    );
    assert!(render(Format::Srt, &segments).contains("\n[mic] Hello there.\n"));
    assert!(
        render(Format::Vtt, &segments)
            .ends_with("00:00:02.500 --> 00:00:03.000\n<v &lt;them&gt;>Hi.\n\n")
    );
    let jsonl = render(Format::Jsonl, &segments);
    assert!(
        jsonl.starts_with(r#"{"type":"final","chunk":0,"source":"mic","#),
        "{jsonl}"
    );
    let first: Segment = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first.source.as_deref(), Some("mic"));
    // Unlabelled segments have no `source` at all.
    assert!(!render(Format::Jsonl, &[segment(0, 0.5, 2.0, "Hi.")]).contains("source"));
}

#[test]
fn partials_are_json_lines_only_and_every_line_has_a_type() {
    let partial = Partial::new(0, 0.5, 1.0004, "Hello there", "Hello");
    let mut text = FormatSink::new(Format::Text, Vec::new(), "test");
    text.partial(&partial).unwrap();
    text.write(&segment(0, 0.5, 2.0, "Hello there.")).unwrap();
    assert_eq!(
        String::from_utf8(text.into_inner()).unwrap(),
        "Hello there.\n"
    );
    for format in [Format::Srt, Format::Vtt] {
        let mut sink = FormatSink::new(format, Vec::new(), "test");
        sink.partial(&partial).unwrap();
        assert!(
            !String::from_utf8(sink.into_inner())
                .unwrap()
                .contains("Hello")
        );
    }
    let mut jsonl = FormatSink::new(Format::Jsonl, Vec::new(), "test");
    jsonl.partial(&partial).unwrap();
    jsonl.write(&segment(0, 0.5, 2.0, "Hello there.")).unwrap();
    let out = String::from_utf8(jsonl.into_inner()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"type":"partial","chunk":0,"start":0.5,"end":1.0,"text":"Hello there","stable":"Hello","emitted_at":0.0,"latency_ms":0}"#
    );
    assert!(
        lines[1].starts_with(r#"{"type":"final","chunk":0,"#),
        "{}",
        lines[1]
    );
    assert_eq!(partial.unstable(), "there");
}

#[test]
fn an_empty_vtt_still_has_its_header() {
    assert_eq!(render(Format::Vtt, &[]), "WEBVTT\n\n");
    assert_eq!(render(Format::Srt, &[]), "");
}

#[test]
fn a_dropped_channel_receiver_is_an_error() {
    let (mut sink, receiver) = ChannelSink::new();
    sink.write(&segment(0, 0.0, 1.0, "a")).unwrap();
    assert_eq!(receiver.recv().unwrap().text, "a");
    drop(receiver);
    assert!(sink.write(&segment(1, 1.0, 2.0, "b")).is_err());
}
