//! Recognising audio containers by their first bytes, and naming what steno cannot decode.
//!
//! The first bytes choose the decoder, tell a container on stdin from raw PCM, and name the
//! container in errors; symphonia names the codec. For what steno recognises but cannot decode
//! (Opus, WebM, ...) the error ends with the ffmpeg command that converts the file.

use std::path::Path;

use symphonia::core::codecs::{self as codecs, CodecType};

use super::{Failure, SUPPORTED};

/// Whether `prefix` (the first bytes of a stream, 12 are enough) starts an audio container
/// steno recognises: one [`FileSource`](crate::FileSource) decodes (RIFF/WAVE, FLAC, Ogg, MP3
/// with an ID3v2 tag or an MPEG audio frame header, M4A/MP4, ADTS AAC), or one it names in its
/// error with the command that converts it (Matroska/WebM, AIFF, CAF, ASF/WMA, AMR). Raw PCM
/// rarely starts like one; a caller that knows its stream is raw should not ask.
///
/// ```
/// assert!(steno_core::is_audio_container(b"fLaC\0\0\0\x22"));
/// assert!(steno_core::is_audio_container(b"RIFF\x24\0\0\0WAVE"));
/// assert!(steno_core::is_audio_container(b"\0\0\0\x1cftypM4A "));
/// assert!(!steno_core::is_audio_container(&[0x10, 0x00, 0xf0, 0xff]));
/// ```
pub fn is_audio_container(prefix: &[u8]) -> bool {
    Container::sniff(prefix).is_some()
}

/// A container recognised by its first bytes, to choose a decoder and to name it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Wav,
    Flac,
    Ogg,
    Mp3,
    Mp4,
    Adts,
    Matroska,
    Aiff,
    Caf,
    Asf,
    Amr,
}

impl Container {
    pub(super) fn sniff(prefix: &[u8]) -> Option<Self> {
        let at =
            |offset: usize, magic: &[u8]| prefix.get(offset..offset + magic.len()) == Some(magic);
        let (b0, b1) = (prefix.first().copied(), prefix.get(1).copied().unwrap_or(0));
        let sync = b0 == Some(0xff) && b1 & 0xe0 == 0xe0;
        // MPEG audio: version not reserved (01), layer not reserved (00).
        let mpeg_frame = sync && (b1 >> 3) & 0b11 != 0b01 && (b1 >> 1) & 0b11 != 0b00;
        // ADTS: a 12-bit sync and layer 00, which is what tells it from an MPEG audio frame.
        let adts = sync && b1 & 0xf6 == 0xf0;
        Some(if at(0, b"RIFF") && at(8, b"WAVE") {
            Container::Wav
        } else if at(0, b"fLaC") {
            Container::Flac
        } else if at(0, b"OggS") {
            Container::Ogg
        } else if at(0, b"ID3") || mpeg_frame {
            Container::Mp3
        } else if at(4, b"ftyp") {
            Container::Mp4
        } else if adts {
            Container::Adts
        } else if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
            Container::Matroska
        } else if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
            Container::Aiff
        } else if at(0, b"caff") {
            Container::Caf
        } else if at(0, &[0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11]) {
            Container::Asf
        } else if at(0, b"#!AMR") {
            Container::Amr
        } else {
            return None;
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Container::Wav => "WAV",
            Container::Flac => "FLAC",
            Container::Ogg => "Ogg",
            Container::Mp3 => "MP3",
            Container::Mp4 => "M4A/MP4",
            Container::Adts => "ADTS AAC",
            Container::Matroska => "Matroska/WebM",
            Container::Aiff => "AIFF",
            Container::Caf => "CAF",
            Container::Asf => "ASF/WMA",
            Container::Amr => "AMR",
        }
    }

    /// Whether steno reads this container (a codec inside it may still be unsupported).
    pub(super) fn decodes(self) -> bool {
        matches!(
            self,
            Container::Wav
                | Container::Flac
                | Container::Ogg
                | Container::Mp3
                | Container::Mp4
                | Container::Adts
        )
    }

    pub(super) fn unsupported(self) -> Failure {
        Failure::needs_conversion(format!(
            "{} file, which steno cannot read ({SUPPORTED})",
            self.name()
        ))
    }
}

/// The name of a codec symphonia reports, including those it has no decoder for.
pub(super) fn codec_name(codec: CodecType) -> String {
    let known = match codec {
        codecs::CODEC_TYPE_OPUS => "Opus",
        codecs::CODEC_TYPE_AAC => "AAC",
        codecs::CODEC_TYPE_ALAC => "ALAC",
        codecs::CODEC_TYPE_FLAC => "FLAC",
        codecs::CODEC_TYPE_VORBIS => "Vorbis",
        codecs::CODEC_TYPE_MP1 => "MPEG Layer I",
        codecs::CODEC_TYPE_MP2 => "MPEG Layer II",
        codecs::CODEC_TYPE_MP3 => "MP3",
        codecs::CODEC_TYPE_SPEEX => "Speex",
        codecs::CODEC_TYPE_EAC3 => "E-AC-3",
        codecs::CODEC_TYPE_AC4 => "AC-4",
        codecs::CODEC_TYPE_DCA => "DTS",
        codecs::CODEC_TYPE_WMA => "WMA",
        codecs::CODEC_TYPE_WAVPACK => "WavPack",
        codecs::CODEC_TYPE_MONKEYS_AUDIO => "Monkey's Audio",
        codecs::CODEC_TYPE_TTA => "TTA",
        codecs::CODEC_TYPE_MUSEPACK => "Musepack",
        _ => {
            return symphonia::default::get_codecs()
                .get_codec(codec)
                .map_or_else(|| format!("codec {codec}"), |d| d.short_name.to_owned());
        }
    };
    known.to_owned()
}

/// The ffmpeg command that converts `input` to 16 kHz mono WAV, ready to paste into a shell.
pub(super) fn ffmpeg_command(input: &str) -> String {
    const ARGS: &str = "-ar 16000 -ac 1";
    if input == "-" {
        return format!("pipe it through `ffmpeg -i - {ARGS} -f wav -`");
    }
    let path = Path::new(input);
    let mut output = path.with_extension("wav");
    if output == path {
        let stem = path
            .file_stem()
            .map_or_else(Default::default, |s| s.to_string_lossy());
        output = path.with_file_name(format!("{stem}-16k.wav"));
    }
    format!(
        "ffmpeg -i {} {ARGS} {}",
        shell_quoted(input),
        shell_quoted(&output.to_string_lossy())
    )
}

/// `text` as one shell word: as it is when that is safe, else in single quotes.
fn shell_quoted(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./+,:@%=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_recognised_by_their_first_bytes() {
        let cases: [(&[u8], Option<Container>); 12] = [
            (b"RIFF\x24\0\0\0WAVEfmt ", Some(Container::Wav)),
            (b"fLaC\0\0\0\x22", Some(Container::Flac)),
            (b"OggS\0\x02", Some(Container::Ogg)),
            (b"ID3\x04\0", Some(Container::Mp3)),
            // MPEG-1 Layer III, and ADTS (layer 00) which only the layer bits tell apart.
            (&[0xff, 0xfb, 0x90, 0x64], Some(Container::Mp3)),
            (&[0xff, 0xf1, 0x50, 0x80], Some(Container::Adts)),
            (b"\0\0\0\x1cftypM4A \0\0\x02\0", Some(Container::Mp4)),
            (&[0x1a, 0x45, 0xdf, 0xa3, 0x9f], Some(Container::Matroska)),
            (b"FORM\0\0\x10\0AIFF", Some(Container::Aiff)),
            (b"#!AMR\n", Some(Container::Amr)),
            (b"Meeting notes", None),
            (&[0x10, 0x00, 0xf0, 0xff], None),
        ];
        for (prefix, expected) in cases {
            assert_eq!(Container::sniff(prefix), expected, "{prefix:x?}");
        }
    }

    #[test]
    fn the_suggested_output_never_overwrites_the_input() {
        assert_eq!(
            ffmpeg_command("talk.wav"),
            "ffmpeg -i talk.wav -ar 16000 -ac 1 talk-16k.wav"
        );
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
    }
}
