//! FLAC, MP3, Ogg Vorbis and AAC (M4A/MP4, ADTS) through symphonia, behind [`PcmDecoder`].
//!
//! symphonia 0.5 does not read MP4's edit list, so an AAC file keeps its encoder's priming
//! samples: its audio, and so its timestamps, start that much late (1024 samples, 64 ms at
//! 16 kHz, from ffmpeg's encoder).

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::container::{Container, codec_name};
use super::{Failure, PcmDecoder, SUPPORTED, describe_io};

/// FLAC, MP3, Ogg Vorbis, AAC and other formats through `symphonia`.
pub(super) struct SymphoniaDecoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    rate: u32,
    channels: usize,
    frames: Option<u64>,
    /// The frames a FLAC file's header (STREAMINFO) says it holds: an exact count, so data
    /// that ends before it is a cut file, not a short one. Other formats' counts are
    /// estimates (MP3 without a Xing header), or are read from the data's own end (Ogg).
    declared_frames: Option<u64>,
    /// Frames decoded so far.
    decoded_frames: u64,
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
        source: Box<dyn symphonia::core::io::MediaSource>,
        hint: &Hint,
        container: Option<Container>,
    ) -> std::result::Result<Self, Failure> {
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
            declared_frames: frames.filter(|_| container == Some(Container::Flac)),
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
        match self.declared_frames {
            Some(declared) if self.decoded_frames < declared => {
                let seconds = |frames: u64| frames as f64 / f64::from(self.rate);
                Err(format!(
                    "truncated FLAC data: the file ends at {:.1} s of the {:.1} s its header \
                     declares",
                    seconds(self.decoded_frames),
                    seconds(declared)
                )
                .into())
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

    #[test]
    fn m4a_aac_decodes_from_a_file_and_from_a_pipe() {
        let path = fixture("session-opening.m4a");
        let from_file = read_file(&path).unwrap();
        // 8.5 s at 16 kHz, give or take the encoder's priming and padding (a frame or two).
        assert!(
            from_file.len().abs_diff(136_000) <= 2_048,
            "{} samples",
            from_file.len()
        );
        let rms = (from_file.iter().map(|s| s * s).sum::<f32>() / from_file.len() as f32).sqrt();
        assert!(rms > 0.01, "speech, not silence: RMS {rms}");
        // A pipe cannot seek, and ffmpeg writes the index after the audio.
        let bytes = std::fs::read(&path).unwrap();
        let mut source = FileSource::from_stream("-", std::io::Cursor::new(bytes)).unwrap();
        let mut from_pipe = Vec::new();
        while let Some(block) = source.next_block().unwrap() {
            from_pipe.extend(block);
        }
        assert_eq!(from_pipe, from_file);
    }

    #[test]
    fn truncated_flac_is_an_error_not_a_short_stream() {
        let path = fixture("not-speech.flac");
        let whole = read_file(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let cut = &bytes[..bytes.len() / 2];
        let dir = tempfile::tempdir().unwrap();
        let cut_path = dir.path().join("cut.flac");
        std::fs::write(&cut_path, cut).unwrap();
        let err = read_file(&cut_path).unwrap_err().to_string();
        let declared = whole.len() as f64 / 16_000.0;
        assert!(
            err.starts_with(&format!(
                "{}: truncated FLAC data: the file ends at ",
                cut_path.display()
            )) && err.ends_with(&format!(" of the {declared:.1} s its header declares")),
            "{err}"
        );
        // From a pipe too, after the audio that is there.
        let mut source = FileSource::from_stream("-", std::io::Cursor::new(cut.to_vec())).unwrap();
        let mut samples = 0;
        let err = loop {
            match source.next_block() {
                Ok(Some(block)) => samples += block.len(),
                Ok(None) => panic!("a cut FLAC ended without an error after {samples} samples"),
                Err(err) => break err.to_string(),
            }
        };
        assert!(samples > 0 && samples < whole.len(), "{samples} samples");
        assert!(err.starts_with("-: truncated FLAC data"), "{err}");
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
