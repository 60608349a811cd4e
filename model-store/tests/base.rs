//! The converter on a real multilingual model: the `base` that `cargo xtask test` installs
//! (converted from its PyPI copy where whisper.cpp's file cannot be downloaded) has base's
//! dimensions, the multilingual vocabulary and the mel filterbank whisper.cpp expects.
//! (That it transcribes and detects languages is tested end to end in
//! `pipeline-app/tests/languages.rs`.)

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

use std::io::Read;

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[test]
fn base_has_the_dimensions_vocabulary_and_filters_of_whisper_base() {
    let path = steno_core::find_model("base")
        .expect("model base is installed by `cargo xtask test` (or `cargo xtask model base`)");
    let mut head = vec![0u8; 4 << 20];
    std::fs::File::open(&path)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert_eq!(&head[..4], b"lmgg", "the ggml magic");
    let hparams: Vec<i32> = (0..11).map(|i| i32_at(&head, 4 + 4 * i)).collect();
    // n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
    // n_text_state, n_text_head, n_text_layer, n_mels, ftype (float16): Whisper base.
    assert_eq!(hparams, [51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]);
    // The mel filterbank: 80 filters over 201 FFT bins, each a triangle summing to a
    // positive weight, with Slaney's normalisation (the peak of filter 0 is 0.02486).
    let mut at = 48;
    assert_eq!((i32_at(&head, at), i32_at(&head, at + 4)), (80, 201));
    at += 8;
    let filters: Vec<f32> = (0..80 * 201)
        .map(|i| f32::from_le_bytes(head[at + 4 * i..at + 4 * i + 4].try_into().unwrap()))
        .collect();
    let peak = filters[..201].iter().copied().fold(0.0f32, f32::max);
    assert!((peak - 0.024_86).abs() < 1e-4, "{peak}");
    at += 4 * 80 * 201;
    // The vocabulary: the multilingual tokenizer's 50257 text tokens, then <|endoftext|>
    // (one more text token than English-only models have; whisper.cpp adds the other special
    // tokens, languages among them, itself).
    let n_tokens = i32_at(&head, at);
    assert_eq!(n_tokens, 50258);
    at += 4;
    let mut tokens = Vec::new();
    for _ in 0..n_tokens {
        let len = usize::try_from(i32_at(&head, at)).unwrap();
        tokens.push(head[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    assert_eq!(tokens[0], b"!");
    assert_eq!(tokens[50257], b"<|endoftext|>");
    // Multilingual tokens differ from English-only ones: " Hallo" and "é" are in it.
    assert!(tokens.iter().any(|t| t == b" Hallo"));
    assert!(tokens.iter().any(|t| t == "é".as_bytes()));
}
