//! Decoding audio files into 16 kHz mono sources (the `decode` feature).
//!
//! WAV goes through `hound` (8/16/24/32-bit integer and 32-bit float); FLAC, MP3, Ogg Vorbis and
//! AAC (in M4A/MP4 or ADTS) through `symphonia`. Everything is downmixed and resampled by
//! [`Conditioner`]. A container or codec steno recognises but cannot decode (Opus, WebM, ...)
//! is an error that names both and gives the ffmpeg command that converts the file. Data cut
//! short is an error at its end, not a shorter recording: WAV, FLAC or MP3 (with a Xing/Info
//! frame) that ends before the length its header declares, and Ogg that ends inside a page or
//! without the page that closes its stream (`ogg_end`). A WAV length that is a placeholder
//! (`wav_length`) reads to the end, and a WAV chunk of odd length before the audio may be
//! followed by its pad byte.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use symphonia::core::probe::Hint;

use crate::{Cause, Conditioner, Error, Result, SAMPLE_RATE, Source};

mod container;
mod ogg_end;
mod symphonia_decoder;
mod wav_length;

pub use container::is_audio_container;
use container::{Container, ffmpeg_command};
use symphonia_decoder::SymphoniaDecoder;

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
            _ => {
                let source: Box<dyn symphonia::core::io::MediaSource> =
                    if container == Some(Container::Mp4) {
                        // symphonia reads an MP4 whose index (moov) follows the audio only by
                        // seeking.
                        let mut bytes = Vec::new();
                        stream
                            .read_to_end(&mut bytes)
                            .map_err(|e| fail(describe_io(e)))?;
                        Box::new(std::io::Cursor::new(bytes))
                    } else {
                        Box::new(symphonia::core::io::ReadOnlySource::new(stream))
                    };
                Box::new(SymphoniaDecoder::probe(source, &Hint::new(), container).map_err(fail)?)
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
    /// The header's data length was a placeholder: the audio ends where the input does.
    unbounded: bool,
}

impl WavDecoder {
    fn new(input: Box<dyn Read + Send>) -> std::result::Result<Self, Failure> {
        let (input, unbounded) = wav_length::with_known_length(input);
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
        Ok(WavDecoder {
            reader,
            spec,
            unbounded,
        })
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
        (!self.unbounded).then(|| u64::from(self.reader.duration()))
    }

    fn next_interleaved(&mut self) -> std::result::Result<Option<Vec<f32>>, Failure> {
        let wanted = FRAMES_PER_BLOCK * self.channels();
        let mut block = match self.spec.sample_format {
            hound::SampleFormat::Float => {
                read_samples(self.reader.samples::<f32>(), wanted, self.unbounded, |s| s)?
            }
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (self.spec.bits_per_sample - 1)) as f32;
                read_samples(self.reader.samples::<i32>(), wanted, self.unbounded, |s| {
                    s as f32 * scale
                })?
            }
        };
        if block.is_empty() {
            return Ok(None);
        }
        let incomplete = block.len() % self.channels();
        if incomplete != 0 {
            if !self.unbounded {
                return Err("truncated WAV data: the last frame is incomplete".into());
            }
            // A stream of unknown length stopped mid-frame: its last whole frame ends it.
            block.truncate(block.len() - incomplete);
        }
        Ok(Some(block))
    }
}

/// Up to `wanted` samples, scaled by `scale`. Data that ends early is an error, unless the
/// length was `unbounded`: then it is the end of the audio.
fn read_samples<S>(
    samples: impl Iterator<Item = hound::Result<S>>,
    wanted: usize,
    unbounded: bool,
    scale: impl Fn(S) -> f32,
) -> std::result::Result<Vec<f32>, Failure> {
    let mut block = Vec::with_capacity(wanted);
    for sample in samples.take(wanted) {
        match sample {
            Ok(sample) => block.push(scale(sample)),
            Err(e) if ends_early(&e) && unbounded => break,
            Err(e) if ends_early(&e) => {
                return Err(
                    "truncated WAV data: the file ends before the length its header declares"
                        .into(),
                );
            }
            Err(e) => return Err(Failure::caused_by("cannot decode WAV data", e)),
        }
    }
    Ok(block)
}

/// Whether hound's error is data that ends before its header's length: an I/O error whose kind
/// varies, with a stable message.
fn ends_early(error: &hound::Error) -> bool {
    matches!(error, hound::Error::IoError(io) if io.kind() == ErrorKind::UnexpectedEof)
        || error.to_string().contains("enough bytes")
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

    const MONO_16_BIT: hound::WavSpec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };

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
    fn a_wav_with_a_chunk_of_odd_length_before_its_audio_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tagged.wav");
        write_wav(&path, MONO_16_BIT, &ramp());
        let plain = read_file(&path).unwrap();
        // A tag of odd length (a stub of an ID3 tag), and RIFF's pad byte after it.
        let mut bytes = std::fs::read(&path).unwrap();
        let data = bytes.windows(4).position(|id| id == b"data").unwrap();
        bytes.splice(data..data, *b"id3 \x03\0\0\0ID3\0");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_file(&path).unwrap(), plain);
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
        write_wav(&path, MONO_16_BIT, &vec![0.1; 16_000]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("truncated WAV data"), "{err}");
    }
}
