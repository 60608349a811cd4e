//! A WAV header read before `hound` sees it, for two things `hound` does not handle: a data
//! length that is a placeholder (a writer that cannot go back to fill it in, such as arecord,
//! ffmpeg or sox into a pipe, or a recorder stopped before it finished, leaves one there, and
//! its audio ends where the stream does), and the pad byte RIFF puts after a chunk of odd
//! length (an editor's `LIST` chunk of metadata, say), which `hound` reads as the next chunk's
//! first byte.

use std::io::{Cursor, Read};

/// Data lengths from here up stand for "unknown": sox writes this one into a pipe, arecord
/// 0x80000000, ffmpeg 0xFFFFFFFF (older versions 0).
/// Real audio this long (over 2 GiB in one chunk) is read to the end of the file all the same.
const PLACEHOLDER_FROM: u32 = 0x7fff_f000;

/// The most header (the chunks before the audio) read ahead; a longer one goes to `hound`
/// untouched.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// `input` with its header read ahead. When the data length is a placeholder (0 or from
/// [`PLACEHOLDER_FROM`] up), it is replaced by the most whole frames a length can hold, and
/// `true` says that the audio ends where the stream does, not where the header says. The pad
/// bytes after the chunks of odd length before the audio are left out. Anything that is not a
/// well-formed header goes to `hound` as it came, for its own message.
pub(super) fn with_known_length(mut input: Box<dyn Read + Send>) -> (Box<dyn Read + Send>, bool) {
    let mut header = Vec::new();
    let unbounded = read_ahead(&mut input, &mut header).unwrap_or(false);
    (Box::new(Cursor::new(header).chain(input)), unbounded)
}

/// Reads the header into `header` up to the data chunk's length, leaving out pad bytes, and
/// patches a placeholder length there; `Ok(false)` when the length is left as it is.
fn read_ahead(input: &mut impl Read, header: &mut Vec<u8>) -> std::io::Result<bool> {
    // Appends exactly `n` bytes, or says there were fewer (what was read stays for hound).
    let mut take = |n: u64, header: &mut Vec<u8>| -> std::io::Result<bool> {
        let start = header.len();
        input.take(n).read_to_end(header)?;
        Ok((header.len() - start) as u64 == n)
    };
    if !take(12, header)? || &header[..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Ok(false);
    }
    let mut block_align: Option<u32> = None;
    loop {
        let at = header.len();
        if !take(8, header)? {
            return Ok(false);
        }
        let id: [u8; 4] = header[at..at + 4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(header[at + 4..at + 8].try_into().expect("4 bytes"));
        if &id == b"data" {
            let Some(align) = block_align.filter(|&align| align > 0) else {
                return Ok(false);
            };
            if len != 0 && len < PLACEHOLDER_FROM {
                return Ok(false);
            }
            let whole_frames = u32::MAX / align * align;
            header[at + 4..at + 8].copy_from_slice(&whole_frames.to_le_bytes());
            return Ok(true);
        }
        if header.len() as u64 + u64::from(len) > MAX_HEADER_BYTES || !take(u64::from(len), header)?
        {
            return Ok(false);
        }
        // A chunk of odd length is followed by a pad byte, a zero, which no chunk's id
        // begins with; some writers leave it out, and then the byte is the next id's first.
        if len % 2 == 1 {
            let pad = header.len();
            if !take(1, header)? {
                return Ok(false);
            }
            if header[pad] == 0 {
                header.truncate(pad);
            }
        }
        if &id == b"fmt " && len >= 16 {
            let body = at + 8;
            block_align = Some(u32::from(u16::from_le_bytes([
                header[body + 12],
                header[body + 13],
            ])));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::with_known_length;

    /// A 16-bit mono WAV header declaring `data_len`, a LIST chunk before the data, and then
    /// `frames` samples.
    fn wav(data_len: u32, frames: u16) -> Vec<u8> {
        let mut bytes =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0"
                .to_vec();
        bytes.extend(b"LIST\x04\0\0\0INFO");
        bytes.extend(b"data");
        bytes.extend(data_len.to_le_bytes());
        for frame in 0..frames {
            bytes.extend(frame.to_le_bytes());
        }
        bytes
    }

    fn read(bytes: Vec<u8>) -> (Vec<u8>, bool) {
        let (mut input, unbounded) = with_known_length(Box::new(std::io::Cursor::new(bytes)));
        let mut out = Vec::new();
        input.read_to_end(&mut out).unwrap();
        (out, unbounded)
    }

    #[test]
    fn a_placeholder_length_becomes_the_most_whole_frames_and_says_so() {
        for placeholder in [0, 0x8000_0000, 0xffff_ffff] {
            let (out, unbounded) = read(wav(placeholder, 3));
            assert!(unbounded, "{placeholder:#x}");
            assert_eq!(out, wav(0xffff_fffe, 3), "{placeholder:#x}");
        }
    }

    #[test]
    fn a_chunk_of_odd_length_loses_its_pad_byte_and_only_that() {
        let header =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0";
        let odd_list = b"LIST\x05\0\0\0INFOx";
        let data = b"data\x02\0\0\0\x01\x02";
        let padded = [&header[..], odd_list, b"\0", data].concat();
        let unpadded = [&header[..], odd_list, data].concat();
        assert_eq!(read(padded), (unpadded.clone(), false));
        // A writer that left the pad byte out: the next chunk's id is kept whole.
        assert_eq!(read(unpadded.clone()), (unpadded, false));
    }

    #[test]
    fn a_real_length_and_what_is_not_a_header_go_on_as_they_came() {
        for bytes in [
            wav(6, 3),
            wav(600, 3),
            b"RIFF\0\0".to_vec(),
            b"not a WAV at all".to_vec(),
        ] {
            let (out, unbounded) = read(bytes.clone());
            assert!(!unbounded);
            assert_eq!(out, bytes);
        }
    }
}
