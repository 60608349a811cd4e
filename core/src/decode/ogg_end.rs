//! Telling a cut Ogg file from a whole one by its last pages, which symphonia does not check.
//!
//! An Ogg stream declares no length up front: a writer closes it with a page flagged
//! end-of-stream. A download or a recording that stopped early ends inside a page, or after a
//! whole page without that flag, and symphonia reads either as a shorter stream. [`TailRecorder`]
//! keeps the last bytes symphonia reads; at the end of the audio [`cut`] looks at the last
//! whole page among them.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};

use symphonia::core::io::MediaSource;

/// The longest Ogg page: a 27-byte header, 255 lacing values and 255 segments of 255 bytes.
const MAX_PAGE: usize = 27 + 255 + 255 * 255;

/// Bytes kept from the end: enough to hold a whole page before a cut one.
const TAIL_LEN: usize = 2 * MAX_PAGE;

/// The header flag of a stream's last page.
const END_OF_STREAM: u8 = 0x04;

/// How an Ogg file's data ends when it was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// The data stops inside a page.
    InsidePage,
    /// The last page is whole but does not close the stream.
    NoLastPage,
}

impl Cut {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Cut::InsidePage => "inside a page",
            Cut::NoLastPage => "without the page that closes its stream",
        }
    }
}

/// The bytes last read in sequence, and whether that sequence reached the end of the data.
#[derive(Debug, Default)]
pub(super) struct Tail {
    bytes: Vec<u8>,
    at_end: bool,
}

impl Tail {
    /// How the data was cut, if it was: `None` for a whole stream, and also when the reading
    /// stopped before the end of the data (a chained stream symphonia does not follow), where
    /// the last bytes say nothing about the file's end.
    pub(super) fn cut(&self) -> Option<Cut> {
        if self.at_end { cut(&self.bytes) } else { None }
    }
}

/// A [`MediaSource`] that passes reads and seeks through and keeps the last [`TAIL_LEN`] bytes
/// read since the last seek (symphonia seeks to a file's end to find its length, then back).
pub(super) struct TailRecorder {
    inner: Box<dyn MediaSource>,
    tail: Arc<Mutex<Tail>>,
}

impl TailRecorder {
    pub(super) fn new(inner: Box<dyn MediaSource>) -> (Self, Arc<Mutex<Tail>>) {
        let tail = Arc::new(Mutex::new(Tail::default()));
        let recorder = TailRecorder {
            inner,
            tail: Arc::clone(&tail),
        };
        (recorder, tail)
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        // A tail is plain bytes: one a panicking reader left half-written is still bytes.
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Read for TailRecorder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut tail = self.tail();
        if n == 0 && !buf.is_empty() {
            tail.at_end = true;
        }
        tail.bytes.extend_from_slice(&buf[..n]);
        // Trimmed in halves, so the bytes are not moved on every read.
        if tail.bytes.len() > 2 * TAIL_LEN {
            let excess = tail.bytes.len() - TAIL_LEN;
            tail.bytes.drain(..excess);
        }
        Ok(n)
    }
}

impl Seek for TailRecorder {
    fn seek(&mut self, position: SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(position)?;
        let mut tail = self.tail();
        tail.bytes.clear();
        tail.at_end = false;
        Ok(at)
    }
}

impl MediaSource for TailRecorder {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}

/// How the Ogg data ending with `tail` was cut, or `None` when its last whole page closes a
/// stream. Bytes after that page that do not start a page are ignored (junk some tools
/// append); bytes that do are a page cut short.
pub(super) fn cut(tail: &[u8]) -> Option<Cut> {
    let last = (0..tail.len())
        .rev()
        .find_map(|start| whole_page(&tail[start..]).map(|(len, flags)| (start + len, flags)));
    let Some((end, flags)) = last else {
        return Some(Cut::InsidePage);
    };
    let rest = &tail[end..];
    if !rest.is_empty() && (rest.starts_with(b"OggS") || b"OggS".starts_with(rest)) {
        Some(Cut::InsidePage)
    } else if flags & END_OF_STREAM == 0 {
        Some(Cut::NoLastPage)
    } else {
        None
    }
}

/// The length and header flags of the page `bytes` starts with, when all of it is there and
/// its checksum matches (so that "OggS" inside compressed audio is not taken for a page).
fn whole_page(bytes: &[u8]) -> Option<(usize, u8)> {
    let header = bytes.get(..27)?;
    // Stream structure version 0 is the only one.
    if !header.starts_with(b"OggS") || header[4] != 0 {
        return None;
    }
    let segments = usize::from(header[26]);
    let lacing = bytes.get(27..27 + segments)?;
    let len = 27 + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
    let page = bytes.get(..len)?;
    let stored = u32::from_le_bytes([page[22], page[23], page[24], page[25]]);
    (crc(page) == stored).then_some((len, header[5]))
}

/// Ogg's CRC-32 (polynomial 0x04c11db7, no reflection, initial value and final XOR 0) of a
/// page, its own checksum field counted as zeros.
fn crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for (i, &byte) in page.iter().enumerate() {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn fixture() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/inputs/session-opening.ogg"
        );
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_whole_stream_is_whole_and_every_shorter_prefix_is_cut() {
        let whole = fixture();
        assert_eq!(cut(&whole), None);
        let pages: Vec<usize> = (0..whole.len())
            .filter(|&i| whole_page(&whole[i..]).is_some())
            .collect();
        assert!(pages.len() > 5, "{pages:?}");
        for &start in &pages[1..] {
            assert_eq!(
                cut(&whole[..start]),
                Some(Cut::NoLastPage),
                "cut at {start}"
            );
        }
        for len in (1..whole.len())
            .step_by(97)
            .filter(|len| !pages.contains(len))
        {
            assert_eq!(cut(&whole[..len]), Some(Cut::InsidePage), "cut at {len}");
        }
    }

    #[test]
    fn a_page_whose_checksum_is_wrong_is_not_a_page() {
        let mut whole = fixture();
        let last = whole.windows(4).rposition(|w| w == b"OggS").unwrap();
        let byte = whole.len() - 1;
        whole[byte] ^= 0xff;
        assert_eq!(whole_page(&whole[last..]), None);
        assert_eq!(cut(&whole), Some(Cut::InsidePage));
    }

    #[test]
    fn the_recorder_keeps_the_bytes_read_last_and_forgets_them_on_a_seek() {
        let data: Vec<u8> = (0..5 * TAIL_LEN).map(|i| (i % 251) as u8).collect();
        let (mut recorder, tail) = TailRecorder::new(Box::new(Cursor::new(data.clone())));
        let mut buf = vec![0; 7_000];
        let mut read = 0;
        while read < 3 * TAIL_LEN {
            read += recorder.read(&mut buf).unwrap();
        }
        {
            let tail = tail.lock().unwrap();
            assert!(tail.bytes.len() >= TAIL_LEN && tail.bytes.len() <= 2 * TAIL_LEN);
            assert!(data[..read].ends_with(&tail.bytes));
            assert!(!tail.at_end);
        }
        recorder.seek(SeekFrom::Start(10)).unwrap();
        assert!(tail.lock().unwrap().bytes.is_empty());
        std::io::copy(&mut recorder, &mut std::io::sink()).unwrap();
        let tail = tail.lock().unwrap();
        assert!(tail.at_end && data.ends_with(&tail.bytes) && tail.bytes.len() >= TAIL_LEN);
    }
}
