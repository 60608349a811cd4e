//! Whisper's GPT-2 byte-level BPE vocabulary: CTranslate2's `vocabulary.txt` holds each token
//! as a string in GPT-2's byte-to-unicode alphabet; ggml wants the raw bytes.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, ensure};

/// The first special token, and the last token written to ggml: whisper.cpp adds every later
/// special token itself. The official ggml models (converted from the Hugging Face GPT-2
/// `vocab.json`) hold exactly the tokens up to and including it, 50257 for English-only models;
/// `ggml-tiny.en.bin` is byte-identical to this converter's output only with it included.
const END_OF_TEXT: &str = "<|endoftext|>";

/// Largest `vocabulary.txt` accepted; real ones are about 0.5 MB.
const MAX_VOCABULARY_BYTES: u64 = 64 << 20;

/// GPT-2's `bytes_to_unicode()`: printable Latin-1 bytes stand for themselves, every other byte
/// gets the next code point from U+0100 on, in byte order.
fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    let mut table = ['\0'; 256];
    let mut next_extra = 0u32;
    for byte in 0..=255u8 {
        table[usize::from(byte)] = if printable(byte) {
            char::from(byte)
        } else {
            let c = char::from_u32(256 + next_extra).unwrap_or('\0');
            next_extra += 1;
            c
        };
    }
    table
}

/// Inverse of [`bytes_to_unicode`].
pub(super) struct ByteDecoder(HashMap<char, u8>);

impl ByteDecoder {
    pub(super) fn new() -> Self {
        Self(
            (0..=255u8)
                .map(|b| (bytes_to_unicode()[usize::from(b)], b))
                .collect(),
        )
    }

    /// The raw bytes of a token, or `None` if it has a character outside the GPT-2 alphabet.
    pub(super) fn decode(&self, token: &str) -> Option<Vec<u8>> {
        token.chars().map(|c| self.0.get(&c).copied()).collect()
    }
}

/// Reads the text (non-special) tokens of `vocabulary.txt` as raw bytes.
pub(super) fn read_text_tokens(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let label = path.display().to_string();
    let size = std::fs::metadata(path)
        .with_context(|| format!("{label}: cannot open"))?
        .len();
    ensure!(
        size <= MAX_VOCABULARY_BYTES,
        "{label}: {size} bytes is too large for a vocabulary"
    );
    let text = std::fs::read_to_string(path).with_context(|| format!("{label}: cannot read"))?;
    parse_text_tokens(&text, &label)
}

/// Parses one token per line, up to and including [`END_OF_TEXT`]; the special token is written
/// as its text.
fn parse_text_tokens(text: &str, label: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let decoder = ByteDecoder::new();
    let mut tokens = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        // GPT-2 tokens never contain a raw CR (it is encoded as 'č'), so a CR is a line ending.
        let token = line.strip_suffix('\r').unwrap_or(line);
        if token == END_OF_TEXT {
            tokens.push(token.as_bytes().to_vec());
            return Ok(tokens);
        }
        let bytes = decoder.decode(token).with_context(|| {
            format!(
                "{label}: line {}: token {token:?} is not in GPT-2's byte-level alphabet",
                index + 1
            )
        })?;
        tokens.push(bytes);
    }
    anyhow::bail!("{label}: no {END_OF_TEXT} token (is this a Whisper vocabulary?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_decoder_round_trips_all_bytes() {
        let table = bytes_to_unicode();
        let decoder = ByteDecoder::new();
        let mut seen = std::collections::HashSet::new();
        for byte in 0..=255u8 {
            let c = table[usize::from(byte)];
            assert!(seen.insert(c), "{c:?} used twice");
            assert_eq!(decoder.decode(&c.to_string()), Some(vec![byte]));
        }
        // Spot checks against GPT-2's published table.
        assert_eq!(table[usize::from(b' ')], 'Ġ');
        assert_eq!(table[usize::from(b'\n')], 'Ċ');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xad], 'Ń');
        assert_eq!(decoder.decode("Ġthe"), Some(b" the".to_vec()));
        assert_eq!(decoder.decode("ÃŃ"), Some("í".as_bytes().to_vec()));
        assert_eq!(decoder.decode("a b"), None);
    }

    #[test]
    fn parses_tokens_through_end_of_text() -> anyhow::Result<()> {
        let text = "!\nĠthe\r\nĊ\n<|endoftext|>\n<|startoftranscript|>\n";
        let tokens = parse_text_tokens(text, "vocabulary.txt")?;
        let expected: [&[u8]; 4] = [b"!", b" the", b"\n", b"<|endoftext|>"];
        assert_eq!(tokens, expected);

        let err = parse_text_tokens("a\nb c\n<|endoftext|>", "vocabulary.txt")
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("vocabulary.txt: line 2: token \"b c\" is not in GPT-2's byte-level alphabet")
        );
        assert!(parse_text_tokens("a\nb\n", "vocabulary.txt").is_err());
        Ok(())
    }
}
