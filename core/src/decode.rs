//! Decoding audio files into 16 kHz mono sources (the `decode` feature).
//!
//! WAV goes through `hound` (8/16/24/32-bit integer and 32-bit float); FLAC, MP3, Ogg Vorbis and
//! AAC (in M4A/MP4 or ADTS) through `symphonia`. Everything is downmixed and resampled by
//! [`Conditioner`]. A container or codec steno recognises but cannot decode (Opus, WebM, ...)
//! is an error that names both and gives the ffmpeg command that converts the file.
//!
//! symphonia 0.5 does not read MP4's edit list, so an AAC file keeps its encoder's priming
//! samples: its audio, and so its timestamps, start that much late (1024 samples, 64 ms at
//! 16 kHz, from ffmpeg's encoder).

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    self as codecs, CODEC_TYPE_NULL, CodecType, Decoder, DecoderOptions,
};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::{Cause, Conditioner, Error, Result, SAMPLE_RATE, Source};

/// Frames decoded per block: about 0.1 s at 44.1 kHz, small enough for real-time pacing.
const FRAMES_PER_BLOCK: usize = 4096;

/// Bytes read to recognise a container (RIFF/WAVE and AIFF need 12).
const MAGIC_LEN: usize = 12;

/// The formats steno decodes, for the message about a file it does not recognise.
const SUPPORTED: &str = "supported: WAV, FLAC, MP3, Ogg Vorbis, M4A/AAC";

/// An audio file decoded as a stream of 16 kHz mono blocks.
///
/// ```no_run
/// use steno_core::{FileSource, Source};
/// let mut source = FileSource::open("speech.wav")?;
/// while let Some(block) = source.next_block()? {
///     println!("{} samples", block.len());
/// }
/// # Ok::<(), steno_core::Error>(())
/// ```
pub struct FileSource {
    name: String,
    decoder: Box<dyn PcmDecoder>,
    conditioner: Conditioner,
    finished: bool,
    len_hint: Option<u64>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a file cannot be opened or decoded: what steno was doing, and the decoder's or the
/// system's own error when there is one (it becomes the [`Error`]'s source).
#[derive(Debug)]
struct Failure {
    problem: String,
    cause: Option<Cause>,
    /// Whether converting the file with ffmpeg is the way out (the message then says how).
    convert: bool,
}

impl Failure {
    fn caused_by(problem: &str, cause: impl Into<Cause>) -> Self {
        Failure {
            problem: problem.to_owned(),
            cause: Some(cause.into()),
            convert: false,
        }
    }

    /// Audio steno recognises but cannot decode: the message ends with the command that
    /// converts it.
    fn needs_conversion(problem: String) -> Self {
        Failure {
            problem,
            cause: None,
            convert: true,
        }
    }

    fn of(self, input: &str) -> Error {
        let problem = if self.convert {
            format!(
                "{}; convert it first: {}",
                self.problem,
                ffmpeg_command(input)
            )
        } else {
            self.problem
        };
        Error::input_named(input, problem, self.cause)
    }
}

impl From<String> for Failure {
    fn from(problem: String) -> Self {
        Failure {
            problem,
            cause: None,
            convert: false,
        }
    }
}

impl From<&str> for Failure {
    fn from(problem: &str) -> Self {
        problem.to_owned().into()
    }
}

/// A decoder of interleaved `f32` frames at the file's own rate and channel count.
trait PcmDecoder: Send {
    fn rate(&self) -> u32;
    fn channels(&self) -> usize;
    fn frames(&self) -> Option<u64>;
    /// The next block of interleaved samples, `None` at the end; errors are plain descriptions.
    fn next_interleaved(&mut self) -> std::result::Result<Option<Vec<f32>>, Failure>;
}

impl FileSource {
    /// Opens and checks the header of the audio file at `path`.
    ///
    /// # Errors
    /// Returns [`Error::Input`] naming the file when it is missing, empty, not audio, or in an
    /// unsupported format.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let fail = |failure: Failure| failure.of(&name);
        let mut file = File::open(path).map_err(|e| fail(describe_io(e)))?;
        let metadata = file.metadata().map_err(|e| fail(describe_io(e)))?;
        if metadata.is_dir() {
            return Err(fail("is a directory, not an audio file".into()));
        }
        if metadata.len() == 0 {
            return Err(fail("empty file".into()));
        }
        let mut magic = [0u8; MAGIC_LEN];
        let magic_len = read_up_to(&mut file, &mut magic).map_err(|e| fail(describe_io(e)))?;
        drop(file);
        let container = Container::sniff(&magic[..magic_len]);
        let decoder: Box<dyn PcmDecoder> = match container {
            // Any RIFF goes to hound, which says what is wrong with one that is not WAVE.
            _ if magic.starts_with(b"RIFF") => {
                let file = File::open(path).map_err(|e| fail(describe_io(e)))?;
                Box::new(WavDecoder::new(Box::new(BufReader::new(file))).map_err(fail)?)
            }
            Some(container) if !container.decodes() => {
                return Err(fail(container.unsupported()));
            }
            _ => Box::new(SymphoniaDecoder::open(path, container).map_err(fail)?),
        };
        Self::with_decoder(name, decoder)
    }

    /// Decodes a stream that is not a file (stdin, a pipe, a socket): WAV, FLAC, MP3 or Ogg
    /// Vorbis, read once from start to end without seeking, or M4A/AAC. An M4A file usually
    /// keeps its index after the audio, so it is read into memory first. `name` is used in
    /// messages.
    ///
    /// ```
    /// use steno_core::{FileSource, Source};
    /// // A WAV header and two samples, as a pipe would deliver them.
    /// let mut wav = b"RIFF\x28\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0".to_vec();
    /// wav.extend(b"data\x04\0\0\0\0\x10\0\xf0");
    /// let mut source = FileSource::from_stream("-", std::io::Cursor::new(wav))?;
    /// assert_eq!(source.next_block()?.map(|block| block.len()), Some(2));
    /// # Ok::<(), steno_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Returns [`Error::Input`] naming the stream when it is empty, not audio, or in an
    /// unsupported format.
    pub fn from_stream(
        name: impl Into<String>,
        mut stream: impl Read + Send + Sync + 'static,
    ) -> Result<Self> {
        let name = name.into();
        let fail = |failure: Failure| failure.of(&name);
        let mut magic = [0u8; MAGIC_LEN];
        let magic_len = read_up_to(&mut stream, &mut magic).map_err(|e| fail(describe_io(e)))?;
        if magic_len == 0 {
            return Err(fail("empty stream".into()));
        }
        let container = Container::sniff(&magic[..magic_len]);
        // What was read to recognise the container goes back in front of the rest.
        let mut stream = std::io::Cursor::new(magic[..magic_len].to_vec()).chain(stream);
        let decoder: Box<dyn PcmDecoder> = match container {
            _ if magic.starts_with(b"RIFF") => {
                Box::new(WavDecoder::new(Box::new(stream)).map_err(fail)?)
            }
            Some(container) if !container.decodes() => {
                return Err(fail(container.unsupported()));
            }
            Some(Container::Mp4) => {
                // symphonia reads an MP4 whose index (moov) follows the audio only by seeking.
                let mut bytes = Vec::new();
                stream
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail(describe_io(e)))?;
                let source = std::io::Cursor::new(bytes);
                Box::new(
                    SymphoniaDecoder::probe(Box::new(source), &Hint::new(), container)
                        .map_err(fail)?,
                )
            }
            _ => {
                let source = symphonia::core::io::ReadOnlySource::new(stream);
                Box::new(
                    SymphoniaDecoder::probe(Box::new(source), &Hint::new(), container)
                        .map_err(fail)?,
                )
            }
        };
        Self::with_decoder(name, decoder)
    }

    fn with_decoder(name: String, decoder: Box<dyn PcmDecoder>) -> Result<Self> {
        let conditioner = Conditioner::new(decoder.rate(), decoder.channels())
            .map_err(|problem| Failure::from(problem).of(&name))?;
        let len_hint = decoder
            .frames()
            .map(|frames| frames * u64::from(SAMPLE_RATE) / u64::from(decoder.rate()));
        Ok(FileSource {
            name,
            decoder,
            conditioner,
            finished: false,
            len_hint,
        })
    }
}

/// Whether `prefix` (the first bytes of a stream, 12 are enough) starts an audio container
/// steno recognises: one [`FileSource`] decodes (RIFF/WAVE, FLAC, Ogg, MP3 with an ID3v2 tag
/// or an MPEG audio frame header, M4A/MP4, ADTS AAC), or one it names in its error with the
/// command that converts it (Matroska/WebM, AIFF, CAF, ASF/WMA, AMR). Raw PCM rarely starts
/// like one; a caller that knows its stream is raw should not ask.
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
enum Container {
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
    fn sniff(prefix: &[u8]) -> Option<Self> {
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

    fn name(self) -> &'static str {
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
    fn decodes(self) -> bool {
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

    fn unsupported(self) -> Failure {
        Failure::needs_conversion(format!(
            "{} file, which steno cannot read ({SUPPORTED})",
            self.name()
        ))
    }
}

/// The name of a codec symphonia reports, including those it has no decoder for.
fn codec_name(codec: CodecType) -> String {
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
fn ffmpeg_command(input: &str) -> String {
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

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        while out.is_empty() {
            match self.decoder.next_interleaved() {
                Ok(Some(block)) => self.conditioner.push(&block, &mut out),
                Ok(None) => {
                    self.finished = true;
                    self.conditioner.finish(&mut out);
                    return Ok((!out.is_empty()).then_some(out));
                }
                Err(failure) => {
                    self.finished = true;
                    return Err(failure.of(&self.name));
                }
            }
        }
        Ok(Some(out))
    }

    fn len_hint(&self) -> Option<u64> {
        self.len_hint
    }
}

fn describe_io(error: std::io::Error) -> Failure {
    match error.kind() {
        ErrorKind::NotFound => "no such file".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => Failure::caused_by("cannot read", error),
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// WAV through `hound`, integer samples scaled to `[-1, 1]`; read in order, never seeking, so
/// a pipe works as well as a file.
struct WavDecoder {
    reader: hound::WavReader<Box<dyn Read + Send>>,
    spec: hound::WavSpec,
}

impl WavDecoder {
    fn new(input: Box<dyn Read + Send>) -> std::result::Result<Self, Failure> {
        let reader = hound::WavReader::new(input).map_err(|e| match e {
            hound::Error::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
                "not a valid WAV file: truncated header".into()
            }
            other => Failure::caused_by("not a valid WAV file", other),
        })?;
        let spec = reader.spec();
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 8 | 16 | 24 | 32) | (hound::SampleFormat::Float, 32) => {}
            (format, bits) => {
                return Err(format!("unsupported WAV sample format: {bits}-bit {format:?}").into());
            }
        }
        if spec.channels == 0 {
            return Err("not a valid WAV file: 0 channels".into());
        }
        Ok(WavDecoder { reader, spec })
    }
}

impl PcmDecoder for WavDecoder {
    fn rate(&self) -> u32 {
        self.spec.sample_rate
    }

    fn channels(&self) -> usize {
        usize::from(self.spec.channels)
    }

    fn frames(&self) -> Option<u64> {
        Some(u64::from(self.reader.duration()))
    }

    fn next_interleaved(&mut self) -> std::result::Result<Option<Vec<f32>>, Failure> {
        let wanted = FRAMES_PER_BLOCK * self.channels();
        let truncated = |e: hound::Error| {
            // hound reports a data chunk shorter than its header says as an I/O error whose
            // kind varies; its message is stable.
            let premature_end = matches!(&e, hound::Error::IoError(io)
                if io.kind() == ErrorKind::UnexpectedEof)
                || e.to_string().contains("enough bytes");
            if premature_end {
                "truncated WAV data: the file ends before the length its header declares".into()
            } else {
                Failure::caused_by("cannot decode WAV data", e)
            }
        };
        let block: Vec<f32> = match self.spec.sample_format {
            hound::SampleFormat::Float => self
                .reader
                .samples::<f32>()
                .take(wanted)
                .collect::<std::result::Result<_, _>>()
                .map_err(truncated)?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (self.spec.bits_per_sample - 1)) as f32;
                self.reader
                    .samples::<i32>()
                    .take(wanted)
                    .map(|s| s.map(|s| s as f32 * scale))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(truncated)?
            }
        };
        if block.is_empty() {
            return Ok(None);
        }
        if !block.len().is_multiple_of(self.channels()) {
            return Err("truncated WAV data: the last frame is incomplete".into());
        }
        Ok(Some(block))
    }
}

/// FLAC, MP3, Ogg Vorbis, AAC and other formats through `symphonia`.
struct SymphoniaDecoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    rate: u32,
    channels: usize,
    frames: Option<u64>,
}

impl SymphoniaDecoder {
    fn open(path: &Path, container: Option<Container>) -> std::result::Result<Self, Failure> {
        let file = File::open(path).map_err(describe_io)?;
        let mut hint = Hint::new();
        if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(extension);
        }
        Self::probe(Box::new(file), &hint, container)
    }

    /// `container` is what the first bytes looked like, to name it when symphonia cannot read
    /// it or its codec.
    fn probe(
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
                    return Ok(None);
                }
                Err(SymphoniaError::ResetRequired) => return Ok(None),
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
            let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
            buffer.copy_interleaved_ref(decoded);
            return Ok(Some(buffer.samples().to_vec()));
        }
    }
}

/// Decodes a whole file into memory (16 kHz mono): convenient for tests and short clips.
///
/// # Errors
/// The errors of [`FileSource::open`] and [`Source::next_block`].
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    let mut source = FileSource::open(path)?;
    let mut samples = Vec::with_capacity(source.len_hint().unwrap_or(0) as usize);
    while let Some(block) = source.next_block()? {
        samples.extend_from_slice(&block);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, spec: hound::WavSpec, samples: &[f32]) {
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            match spec.sample_format {
                hound::SampleFormat::Float => writer.write_sample(s).unwrap(),
                hound::SampleFormat::Int => {
                    let max = ((1i64 << (spec.bits_per_sample - 1)) - 1) as f32;
                    writer.write_sample((s * max) as i32).unwrap();
                }
            }
        }
        writer.finalize().unwrap();
    }

    fn ramp() -> Vec<f32> {
        (0..1600).map(|i| (i as f32 / 1600.0) - 0.5).collect()
    }

    #[test]
    fn every_wav_sample_format_decodes_to_the_same_signal() {
        let dir = tempfile::tempdir().unwrap();
        let formats = [
            (hound::SampleFormat::Int, 8),
            (hound::SampleFormat::Int, 16),
            (hound::SampleFormat::Int, 24),
            (hound::SampleFormat::Int, 32),
            (hound::SampleFormat::Float, 32),
        ];
        for (format, bits) in formats {
            let path = dir.path().join(format!("{bits}-{format:?}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16_000,
                bits_per_sample: bits,
                sample_format: format,
            };
            write_wav(&path, spec, &ramp());
            let decoded = read_file(&path).unwrap();
            assert_eq!(decoded.len(), 1600, "{bits}-bit {format:?}");
            let tolerance = if bits == 8 { 0.02 } else { 0.001 };
            for (a, b) in decoded.iter().zip(ramp()) {
                assert!(
                    (a - b).abs() < tolerance,
                    "{bits}-bit {format:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn bad_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.wav");
        File::create(&empty).unwrap();
        let text = dir.path().join("notes.wav");
        std::fs::write(&text, "this is not audio\n").unwrap();
        let header = dir.path().join("header.wav");
        std::fs::write(&header, b"RIFF\x24\x00\x00\x00WAVEfmt ").unwrap();
        let cases = [
            (empty, "empty file"),
            (text, "not a recognised audio file"),
            (header, "not a valid WAV file"),
            (dir.path().join("missing.wav"), "no such file"),
        ];
        for (path, expected) in cases {
            let err = FileSource::open(&path).unwrap_err().to_string();
            assert!(err.starts_with(&path.display().to_string()), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn the_decoders_own_error_is_the_source_not_part_of_the_message() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let garbled = dir.path().join("garbled.wav");
        std::fs::write(&garbled, b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunkjunk").unwrap();
        let err = FileSource::open(&garbled).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not a valid WAV file", garbled.display())
        );
        let cause = err.source().expect("hound's error is kept as the source");
        assert!(
            err.chain().ends_with(&format!(": {cause}")),
            "{}",
            err.chain()
        );
    }

    #[test]
    fn truncated_wav_data_is_an_error_not_a_short_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_wav(&path, spec, &vec![0.1; 16_000]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("truncated WAV data"), "{err}");
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/inputs")
            .join(name)
    }

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

    #[test]
    fn the_suggested_output_never_overwrites_the_input() {
        assert_eq!(
            ffmpeg_command("talk.wav"),
            "ffmpeg -i talk.wav -ar 16000 -ac 1 talk-16k.wav"
        );
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
    }
}
