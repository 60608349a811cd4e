//! OpenAI's rule that a timed decode opens with a timestamp, which whisper.cpp lacks.
//!
//! OpenAI's Whisper (and faster-whisper) suppress every text token at the first step of a
//! decode with timestamps, so that the text begins with `<|0.00|>` or a later timestamp.
//! whisper.cpp keeps only the rule's second half (the first timestamp at most
//! `max_initial_ts`), so the model may begin with a word instead, and then writes no
//! timestamp at all. A prompt given as plain text made this likely: tiny.en went on with the
//! prompt's sentence, and `session.wav`'s first packed window came out as ", the quick brown
//! fox, jump, over the lazy dog." in one untimed segment. With the rule it opens "The quick
//! brown fox jump over the lazy dog.", as without a prompt, though it could still write the
//! rest untimed; a packed window's prompt is now given between two timestamps as well
//! ([`WhisperModel::with_prompt`](super::WhisperModel::with_prompt)). Without a prompt, no
//! fixture's transcript changed. steno applies the rule through whisper.cpp's logits filter,
//! so the whisper.cpp anchor still decodes as upstream does.

use std::ffi::{c_int, c_void};

use whisper_rs::FullParams;
use whisper_rs::whisper_rs_sys::{
    whisper_context, whisper_state, whisper_token_beg, whisper_token_data,
};

/// Makes every decode with `params` open with a timestamp.
#[allow(
    unsafe_code,
    reason = "whisper-rs offers the logits filter only as a raw C callback"
)]
pub(super) fn open_with_a_timestamp(params: &mut FullParams<'_, '_>) {
    // SAFETY: the callback is a plain function with no user data; it only writes the logits
    // whisper.cpp hands it, within the vocabulary (see `suppress_text_at_the_start`).
    unsafe { params.set_filter_logits_callback(Some(suppress_text_at_the_start)) };
}

/// whisper.cpp's logits filter: at a decode's first step (no tokens yet), every token below
/// the first timestamp (text and the end of text) is suppressed.
#[allow(unsafe_code, reason = "called by whisper.cpp with its own pointers")]
unsafe extern "C" fn suppress_text_at_the_start(
    ctx: *mut whisper_context,
    _state: *mut whisper_state,
    _tokens: *const whisper_token_data,
    n_tokens: c_int,
    logits: *mut f32,
    _user_data: *mut c_void,
) {
    if n_tokens != 0 || ctx.is_null() || logits.is_null() {
        return;
    }
    // SAFETY: `ctx` is the decoding context; `whisper_token_beg` only reads its vocabulary.
    let first_timestamp = unsafe { whisper_token_beg(ctx) };
    let Ok(text_tokens) = usize::try_from(first_timestamp) else {
        return;
    };
    // SAFETY: `logits` holds one logit per token of the vocabulary (whisper.cpp's
    // `decoder.logits`, resized to `n_vocab`), and the timestamps come after the text tokens,
    // so the first `text_tokens` are inside it; nothing else touches it during the call.
    let text = unsafe { std::slice::from_raw_parts_mut(logits, text_tokens) };
    text.fill(f32::NEG_INFINITY);
}
