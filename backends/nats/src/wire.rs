//! What crosses the broker: subject and consumer names, message headers, and payloads in the
//! process backend's frame format.
//!
//! A chunk is one JetStream message on `STREAM.chunks.v<protocol>.<model key>.<run>`; its
//! payload is a worker-protocol `Transcribe` frame (see [`steno_process::protocol`]), its
//! headers say which model and options it needs, which run and request it belongs to and
//! where to answer. The answer is a plain NATS message to that address carrying a `Text` or
//! `Failed` frame. The model key in the subject routes a chunk to workers of its model only:
//! each model has its own durable consumer, shared by all the workers that serve it.
//!
//! A partial chunk of interim results in real time is a `TranscribePartial` frame. Once newer
//! audio has overtaken it, the coordinator sends a stop message, a plain NATS message on
//! `STREAM.stops` (heard by every worker of the stream, never stored) whose headers name the
//! run and request; the worker decoding that chunk stops and answers `Stopped`.

use async_nats::HeaderMap;
use steno_core::{Chunk, Error, Result};
use steno_process::protocol::{
    MAX_FRAME_LEN, Message, PROTOCOL_VERSION, ProtocolError, read_message, write_message,
};

/// The stream name used when none is given.
pub const DEFAULT_STREAM: &str = "STENO";

/// Header: the worker protocol version the chunk's frame is written in.
pub(crate) const PROTOCOL: &str = "Steno-Protocol";
/// Header: the identity of the model (and decoding options) the chunk must be transcribed with.
pub(crate) const MODEL: &str = "Steno-Model";
/// Header: where the worker sends its answer.
pub(crate) const REPLY_TO: &str = "Steno-Reply-To";
/// Header: the request a chunk message, a stop message or an answer belongs to.
pub(crate) const REQUEST: &str = "Steno-Request";
/// Header: the run a chunk message or a stop message belongs to (requests are numbered per
/// run).
pub(crate) const RUN: &str = "Steno-Run";
/// Header of an answer: how many times the broker had delivered the chunk.
pub(crate) const DELIVERED: &str = "Steno-Delivered";
/// Header of an answer: how long the worker's transcriber took, in microseconds (the rest of
/// the round trip is the hand-off through the broker).
pub(crate) const TRANSCRIBED_US: &str = "Steno-Transcribed-Us";
/// Header of an answer: which worker answered (host and process id), for logs.
pub(crate) const WORKER: &str = "Steno-Worker";

/// Checks that `name` can name a JetStream stream: 1 to 32 ASCII letters, digits, `-` or `_`.
///
/// # Errors
/// [`Error::Config`] naming the stream and what is wrong.
pub fn check_stream_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "NATS stream name `{name}`: use 1 to 32 ASCII letters, digits, `-` or `_`"
        )))
    }
}

/// The subjects of the stream `stream` holds: every chunk of every model and run.
pub(crate) fn stream_subjects(stream: &str) -> String {
    format!("{stream}.chunks.>")
}

/// The routing key of a model identity in subjects and consumer names: FNV-1a, 64 bits, in
/// hex. It routes, it does not authenticate: a worker still compares the whole identity.
pub(crate) fn model_key(model: &str) -> String {
    let hash = model.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The subject of every chunk of `run` for `model`.
pub(crate) fn chunk_subject(stream: &str, model: &str, run: &str) -> String {
    format!(
        "{stream}.chunks.v{PROTOCOL_VERSION}.{}.{run}",
        model_key(model)
    )
}

/// The subjects the workers of `model` take chunks from, whatever the run.
pub(crate) fn model_filter(stream: &str, model: &str) -> String {
    format!("{stream}.chunks.v{PROTOCOL_VERSION}.{}.*", model_key(model))
}

/// The durable consumer the workers of `model` share.
pub(crate) fn consumer_name(model: &str) -> String {
    format!("workers-v{PROTOCOL_VERSION}-{}", model_key(model))
}

/// The subject JetStream announces a chunk on when its consumer gave up redelivering it.
pub(crate) fn max_deliveries_advisory(stream: &str, model: &str) -> String {
    format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{}",
        consumer_name(model)
    )
}

/// The subject of stop messages for partial chunks: every worker of the stream hears them.
pub(crate) fn stop_subject(stream: &str) -> String {
    format!("{stream}.stops")
}

/// The payload of a chunk message: its `Transcribe` frame, or `TranscribePartial` for a
/// partial chunk that a stop message may end.
pub(crate) fn chunk_payload(chunk: &Chunk, stoppable: bool) -> Result<Vec<u8>> {
    let message = if stoppable {
        Message::TranscribePartial(chunk.clone())
    } else {
        Message::Transcribe(chunk.clone())
    };
    let mut frame = Vec::with_capacity(4 * chunk.samples.len() + 64);
    write_message(&mut frame, &message).map_err(|error| {
        Error::transcribe(chunk.index, format!("cannot encode it for NATS: {error}"))
    })?;
    Ok(frame)
}

/// Decodes a payload that must hold exactly one frame. Lengths are checked before anything
/// is allocated, as on the process backend's pipes.
pub(crate) fn decode_payload(payload: &[u8]) -> std::result::Result<Message, ProtocolError> {
    if payload.len() > MAX_FRAME_LEN + 4 {
        return Err(ProtocolError::BadLength(payload.len() as u64));
    }
    let mut rest = payload;
    let message = read_message(&mut rest)?;
    if !rest.is_empty() {
        return Err(ProtocolError::Malformed {
            message: "NATS",
            problem: format!("{} bytes after the frame", rest.len()),
        });
    }
    Ok(message)
}

/// The payload of an answer: a `Text` or `Failed` frame.
pub(crate) fn answer_payload(message: &Message) -> std::result::Result<Vec<u8>, ProtocolError> {
    let mut frame = Vec::new();
    write_message(&mut frame, message)?;
    Ok(frame)
}

/// A header's value, if it is present.
pub(crate) fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|value| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_checked() {
        assert!(check_stream_name("STENO").is_ok());
        assert!(check_stream_name("steno-test_2").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(33)] {
            let error = check_stream_name(bad).unwrap_err().to_string();
            assert!(error.contains("NATS stream name"), "{error}");
        }
    }

    #[test]
    fn subjects_route_by_model_and_version() {
        let subject = chunk_subject("STENO", "models/tiny.bin", "run1");
        let filter = model_filter("STENO", "models/tiny.bin");
        assert_eq!(
            subject.rsplit_once('.').map(|(head, _)| head),
            filter.rsplit_once('.').map(|(head, _)| head)
        );
        assert!(subject.starts_with(&format!("STENO.chunks.v{PROTOCOL_VERSION}.")));
        assert_ne!(model_key("a"), model_key("b"));
        assert_eq!(model_key("a").len(), 16);
        assert!(consumer_name("a").starts_with("workers-v"));
    }

    #[test]
    fn a_chunk_survives_its_payload() {
        let chunk = Chunk::new(7, 160, vec![0.25; 320]);
        let payload = chunk_payload(&chunk, false).unwrap();
        let Message::Transcribe(back) = decode_payload(&payload).unwrap() else {
            panic!("not a chunk");
        };
        assert_eq!(back, chunk);
        let payload = chunk_payload(&chunk, true).unwrap();
        let Message::TranscribePartial(back) = decode_payload(&payload).unwrap() else {
            panic!("not a partial chunk");
        };
        assert_eq!(back, chunk);
    }

    #[test]
    fn trailing_bytes_and_cut_payloads_are_refused() {
        let chunk = Chunk::new(1, 0, vec![0.5; 16]);
        let mut payload = chunk_payload(&chunk, false).unwrap();
        payload.push(0);
        assert!(decode_payload(&payload).is_err());
        payload.truncate(payload.len() - 9);
        assert!(decode_payload(&payload).is_err());
        assert!(decode_payload(&[]).is_err());
    }

    #[test]
    fn a_claimed_length_over_the_limit_allocates_nothing() {
        let mut payload = u32::MAX.to_le_bytes().to_vec();
        payload.extend([3, 0, 0, 0]);
        let error = decode_payload(&payload).unwrap_err();
        assert!(!error.is_disconnect(), "{error}");
    }
}
