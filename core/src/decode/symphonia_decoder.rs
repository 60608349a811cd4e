//! FLAC, MP3, Ogg Vorbis and AAC (M4A/MP4, ADTS) through symphonia, behind [`PcmDecoder`].
//!
//! symphonia 0.5 does not read MP4's edit list, so an AAC file keeps its encoder's priming
//! samples: its audio, and so its timestamps, start that much late (1024 samples, 64 ms at
//! 16 kHz, from ffmpeg's encoder).

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::container::{Container, codec_name};
use super::ogg_end::{Tail, TailRecorder};
use super::{Failure, PcmDecoder, SUPPORTED, describe_io};

/// Samples per channel in an MPEG-1 Layer III frame, the most any MP3 frame holds.
const MPEG_FRAME: u64 = 1152;

/// FLAC, MP3, Ogg Vorbis, AAC and other formats through `symphonia`.
pub(super) struct SymphoniaDecoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    rate: u32,
    channels: usize,
    frames: Option<u64>,
    /// How the end of the data is told from a cut.
    ending: Ending,
    /// Frames decoded so far.
    decoded_frames: u64,
}

/// What tells a whole file from one cut short, so that a cut file's transcript is never
/// presented as the whole recording's.
enum Ending {
    /// A count of frames in a header: FLAC's STREAMINFO (exact), or an MP3 file's Xing/Info
    /// frame, which encoders count with or without itself, so one MPEG frame of slack.
    Declared {
        frames: u64,
        slack: u64,
        container: &'static str,
    },
    /// An Ogg stream ends with a page that says so.
    Ogg(Arc<Mutex<Tail>>),
    /// Nothing to check: an MP3 file without a frame count (its length is estimated from its
    /// size, so a cut one looks whole) or an M4A/AAC file.
    Unchecked,
}

impl SymphoniaDecoder {
    pub(super) fn open(
        path: &Path,
        container: Option<Container>,
    ) -> std::result::Result<Self, Failure> {
        let file = File::open(path).map_err(describe_io)?;
        let mut hint = Hint::new();
        if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(extension);
        }
        Self::probe(Box::new(file), &hint, container)
    }

    /// `container` is what the first bytes looked like, to name it when symphonia cannot read
    /// it or its codec.
    pub(super) fn probe(
        source: Box<dyn MediaSource>,
        hint: &Hint,
        container: Option<Container>,
    ) -> std::result::Result<Self, Failure> {
        let (source, ogg_tail): (Box<dyn MediaSource>, _) = if container == Some(Container::Ogg) {
            let (recorder, tail) = TailRecorder::new(source);
            (Box::new(recorder), Some(tail))
        } else {
            (source, None)
        };
        let stream = MediaSourceStream::new(source, Default::default());
        let probed = symphonia::default::get_probe()
            .format(
                hint,
                stream,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|e| match container {
                Some(container) => {
                    Failure::caused_by(&format!("cannot read this {} file", container.name()), e)
                }
                None => format!("not a recognised audio file ({SUPPORTED})").into(),
            })?;
        let format = probed.format;
        let registry = symphonia::default::get_codecs();
        let audio = || {
            format
                .tracks()
                .iter()
                .filter(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        };
        // The first track steno can decode; else the first audio track, to name its codec.
        let Some(track) = audio().find(|t| registry.get_codec(t.codec_params.codec).is_some())
        else {
            let codec = audio()
                .next()
                .ok_or("the file contains no audio track")?
                .codec_params
                .codec;
            let container = container.map_or("audio", Container::name);
            let codec = codec_name(codec);
            return Err(Failure::needs_conversion(format!(
                "{container} file with {codec} audio, which steno cannot decode"
            )));
        };
        let params = &track.codec_params;
        let rate = params
            .sample_rate
            .ok_or("the audio track has no sample rate")?;
        let channels = params.channels.map_or(1, |c| c.count());
        let frames = params.n_frames;
        let ending = match (container, frames, ogg_tail) {
            (_, _, Some(tail)) => Ending::Ogg(tail),
            (Some(Container::Flac), Some(frames), _) => Ending::Declared {
                frames,
                slack: 0,
                container: "FLAC",
            },
            // symphonia reads an MP3 file's frame count from its Xing/Info frame, whose LAME
            // extension (written by LAME and ffmpeg) is where the encoder's delay comes from;
            // without one the count is an estimate from the file's size.
            (Some(Container::Mp3), Some(frames), _) if params.delay.is_some() => Ending::Declared {
                frames,
                slack: MPEG_FRAME,
                container: "MP3",
            },
            _ => Ending::Unchecked,
        };
        let track_id = track.id;
        let decoder = registry
            .make(params, &DecoderOptions::default())
            .map_err(|e| {
                let mut failure = Failure::caused_by(
                    &format!("cannot decode this {} audio", codec_name(params.codec)),
                    e,
                );
                failure.convert = true;
                failure
            })?;
        Ok(SymphoniaDecoder {
            format,
            decoder,
            track_id,
            rate,
            channels,
            frames,
            ending,
            decoded_frames: 0,
        })
    }
}

impl PcmDecoder for SymphoniaDecoder {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn frames(&self) -> Option<u64> {
        self.frames
    }

    fn next_interleaved(&mut self) -> std::result::Result<Option<Vec<f32>>, Failure> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    return self.end();
                }
                Err(SymphoniaError::ResetRequired) => return self.end(),
                Err(e) => return Err(Failure::caused_by("cannot read audio", e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = self
                .decoder
                .decode(&packet)
                .map_err(|e| Failure::caused_by("cannot decode audio", e))?;
            if decoded.frames() == 0 {
                continue;
            }
            if decoded.spec().channels.count() != self.channels {
                return Err("the channel count changes mid-stream".into());
            }
            self.decoded_frames += decoded.frames() as u64;
            let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
            buffer.copy_interleaved_ref(decoded);
            return Ok(Some(buffer.samples().to_vec()));
        }
    }
}

impl SymphoniaDecoder {
    /// The end of the data: an error when the header declared more, so that a cut file's
    /// transcript is never presented as the whole recording's.
    fn end(&self) -> std::result::Result<Option<Vec<f32>>, Failure> {
        let seconds = |frames: u64| frames as f64 / f64::from(self.rate);
        let ends_at = seconds(self.decoded_frames);
        match &self.ending {
            Ending::Declared {
                frames,
                slack,
                container,
            } if self.decoded_frames + slack < *frames => Err(format!(
                "truncated {container} data: the file ends at {ends_at:.1} s of the {:.1} s its \
                 header declares",
                seconds(*frames)
            )
            .into()),
            Ending::Ogg(tail) => {
                let cut = tail.lock().unwrap_or_else(PoisonError::into_inner).cut();
                match cut {
                    Some(cut) => Err(format!(
                        "truncated Ogg data: the file ends at {ends_at:.1} s, {}",
                        cut.describe()
                    )
                    .into()),
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{FileSource, read_file};
    use crate::Source;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/inputs")
            .join(name)
    }

    /// Every block of `source`, or the error it ends with and how many samples came first.
    fn drain(mut source: FileSource) -> Result<Vec<f32>, (String, usize)> {
        let mut samples = Vec::new();
        loop {
            match source.next_block() {
                Ok(Some(block)) => samples.extend(block),
                Ok(None) => return Ok(samples),
                Err(err) => return Err((err.to_string(), samples.len())),
            }
        }
    }

    fn from_pipe(bytes: &[u8]) -> Result<Vec<f32>, (String, usize)> {
        drain(FileSource::from_stream("-", std::io::Cursor::new(bytes.to_vec())).unwrap())
    }

    #[test]
    fn compressed_files_decode_from_a_file_and_from_a_pipe() {
        // AAC in M4A (whose index ffmpeg writes after the audio, so a pipe is read whole
        // first), MP3 and Ogg Vorbis: the session's first 8.5 s.
        for name in [
            "session-opening.m4a",
            "session-opening.mp3",
            "session-opening.ogg",
        ] {
            let path = fixture(name);
            let from_file = read_file(&path).unwrap();
            // 8.5 s at 16 kHz, give or take the encoder's priming and padding.
            assert!(
                from_file.len().abs_diff(136_000) <= 2_048,
                "{name}: {} samples",
                from_file.len()
            );
            let rms =
                (from_file.iter().map(|s| s * s).sum::<f32>() / from_file.len() as f32).sqrt();
            assert!(rms > 0.01, "{name}: speech, not silence: RMS {rms}");
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                from_pipe(&bytes).unwrap() == from_file,
                "{name} from a pipe"
            );
        }
    }

    #[test]
    fn cut_files_are_an_error_after_their_audio_not_a_short_stream() {
        let ogg = std::fs::read(fixture("session-opening.ogg")).unwrap();
        let last_page = ogg.windows(4).rposition(|w| w == b"OggS").unwrap();
        // (fixture, bytes kept, the error's start, its end)
        let cases = [
            // The header (STREAMINFO, or the Xing/Info frame) counts every sample.
            (
                "not-speech.flac",
                None,
                "truncated FLAC data: the file ends at ",
                " its header declares",
            ),
            (
                "session-opening.mp3",
                None,
                "truncated MP3 data: the file ends at ",
                " its header declares",
            ),
            // Ogg declares no length: cut inside a page, or after a whole page that does not
            // close the stream.
            (
                "session-opening.ogg",
                None,
                "truncated Ogg data: the file ends at ",
                ", inside a page",
            ),
            (
                "session-opening.ogg",
                Some(last_page),
                "truncated Ogg data: the file ends at ",
                ", without the page that closes its stream",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, keep, start, end) in cases {
            let path = fixture(name);
            let whole = read_file(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let cut = &bytes[..keep.unwrap_or(bytes.len() / 2)];
            let cut_path = dir.path().join(format!("cut-{name}"));
            std::fs::write(&cut_path, cut).unwrap();
            let err = read_file(&cut_path).unwrap_err().to_string();
            let named = format!("{}: {start}", cut_path.display());
            assert!(
                err.starts_with(&named) && err.ends_with(end),
                "{name}: {err}"
            );
            // From a pipe too, after the audio that is there.
            let (err, samples) = from_pipe(cut).unwrap_err();
            assert!(
                samples > 0 && samples < whole.len(),
                "{name}: {samples} samples"
            );
            assert!(
                err.starts_with(&format!("-: {start}")) && err.ends_with(end),
                "{err}"
            );
        }
    }

    #[test]
    fn an_ogg_file_with_a_tag_after_its_last_page_is_whole() {
        // Some tools append an ID3v1-like tag to any file; it does not start a page.
        let mut ogg = std::fs::read(fixture("session-opening.ogg")).unwrap();
        ogg.extend(b"TAG");
        ogg.extend([0u8; 125]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tagged.ogg");
        std::fs::write(&path, &ogg).unwrap();
        let whole = read_file(fixture("session-opening.ogg")).unwrap();
        assert!(read_file(&path).unwrap() == whole);
        assert!(from_pipe(&ogg).unwrap() == whole);
    }

    #[test]
    fn opus_is_refused_naming_the_container_the_codec_and_the_conversion() {
        let path = fixture("word.opus");
        let err = FileSource::open(&path).unwrap_err().to_string();
        let name = path.display().to_string();
        assert_eq!(
            err,
            format!(
                "{name}: Ogg file with Opus audio, which steno cannot decode; convert it first: \
                 ffmpeg -i {name} -ar 16000 -ac 1 {}",
                path.with_extension("wav").display()
            )
        );
        let bytes = std::fs::read(&path).unwrap();
        let err = FileSource::from_stream("-", std::io::Cursor::new(bytes))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "-: Ogg file with Opus audio, which steno cannot decode; convert it first: pipe it \
             through `ffmpeg -i - -ar 16000 -ac 1 -f wav -`"
        );
    }

    #[test]
    fn a_container_steno_cannot_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call recording.webm");
        let mut bytes = vec![0x1a, 0x45, 0xdf, 0xa3];
        bytes.extend([0u8; 60]);
        std::fs::write(&path, &bytes).unwrap();
        let err = FileSource::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("Matroska/WebM file, which steno cannot read (supported: WAV,"),
            "{err}"
        );
        assert!(
            err.ends_with(&format!(
                "ffmpeg -i '{0}/call recording.webm' -ar 16000 -ac 1 '{0}/call recording.wav'",
                dir.path().display()
            )),
            "{err}"
        );
    }
}
