//! Reader for CTranslate2's `model.bin`, treating the file as untrusted input.
//!
//! Layout, all little-endian (CTranslate2 `src/models/model.cc` `Model::load`, written by
//! `python/ctranslate2/specs/model_spec.py` `ModelSpec._serialize`):
//!
//! ```text
//! u32 binary_version                                (1 ..= 6 are known)
//! version >= 2: string spec_name, u32 spec_revision
//! u32 num_variables, then per variable:
//!     string name, u8 rank, u32 dims[rank]
//!     version >= 4: u8 dtype id, u32 byte count
//!     version <  4: u8 item size, u32 element count
//!     the data bytes (row-major)
//! version >= 3: u32 num_aliases, then per alias: string alias, string target
//! string = u16 length (counting a trailing NUL) + that many bytes
//! ```
//!
//! Only the metadata is read up front; tensor data is read on demand, so memory use stays at
//! about one tensor and every allocation is bounded by the actual file size.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Bound;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use half::{bf16, f16};

/// Newest `model.bin` layout this reader understands (CTranslate2 4.x writes 6; versions 5 and 6
/// changed nothing in the parts read here).
const MAX_BINARY_VERSION: u32 = 6;

/// Element type of a variable (CTranslate2's `DataType` enum, in its order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Binary versions below 4 stored only the item size (CTranslate2's own, admittedly
    /// ambiguous, mapping).
    fn from_item_size(size: u8) -> Option<Self> {
        Some(match size {
            4 => Self::F32,
            2 => Self::I16,
            1 => Self::I8,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::BF16)
    }
}

/// Where one variable lives in the file.
#[derive(Debug)]
struct Variable {
    shape: Vec<usize>,
    dtype: DType,
    offset: u64,
    num_bytes: usize,
}

/// A parsed `model.bin`: its metadata and a reader for variable data.
pub(super) struct Ct2Model<R> {
    reader: R,
    /// The file's path, prefixed to every error message.
    label: String,
    spec_name: Option<String>,
    variables: BTreeMap<String, Variable>,
    /// alias -> target variable name.
    aliases: BTreeMap<String, String>,
}

impl Ct2Model<BufReader<File>> {
    /// Opens and indexes `path`.
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let label = path.display().to_string();
        let file = File::open(path).with_context(|| format!("{label}: cannot open"))?;
        let len = file
            .metadata()
            .with_context(|| format!("{label}: cannot read file size"))?
            .len();
        Self::parse(BufReader::new(file), label, len)
    }
}

impl<R: Read + Seek> Ct2Model<R> {
    /// Indexes a `model.bin` of `len` bytes read from `reader`; `label` names it in errors.
    pub(super) fn parse(reader: R, label: String, len: u64) -> anyhow::Result<Self> {
        let mut src = Source {
            reader,
            label,
            pos: 0,
            len,
        };
        src.seek(0)?;

        let version = src.u32("the binary version")?;
        ensure!(
            (1..=MAX_BINARY_VERSION).contains(&version),
            "{}: unsupported binary version {version} (this converter reads versions 1 to \
             {MAX_BINARY_VERSION}; is this a CTranslate2 model.bin?)",
            src.label
        );
        let spec_name = if version >= 2 {
            let name = src.string("the model spec name")?;
            src.u32("the spec revision")?;
            Some(name)
        } else {
            None
        };

        let num_variables = src.u32("the variable count")?;
        let mut variables = BTreeMap::new();
        for index in 0..num_variables {
            let name = src.string(&format!("the name of variable #{index}"))?;
            let what = format!("the header of tensor '{name}'");
            let rank = src.u8(&what)?;
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(to_usize(src.u32(&what)?));
            }
            let elements = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .with_context(|| {
                    format!(
                        "{}: tensor '{name}' has an absurd shape {shape:?}",
                        src.label
                    )
                })?;
            let (dtype, num_bytes) = if version >= 4 {
                let id = src.u8(&what)?;
                let dtype = DType::from_id(id).with_context(|| {
                    format!(
                        "{}: tensor '{name}' has unknown data type id {id}",
                        src.label
                    )
                })?;
                (dtype, to_usize(src.u32(&what)?))
            } else {
                let size = src.u8(&what)?;
                let dtype = DType::from_item_size(size).with_context(|| {
                    format!(
                        "{}: tensor '{name}' has unknown item size {size}",
                        src.label
                    )
                })?;
                let count = to_usize(src.u32(&what)?);
                (dtype, count.saturating_mul(dtype.size()))
            };
            ensure!(
                elements.checked_mul(dtype.size()) == Some(num_bytes),
                "{}: tensor '{name}' declares {num_bytes} bytes, but shape {shape:?} of {dtype:?} \
                 needs {}",
                src.label,
                elements.saturating_mul(dtype.size())
            );
            let offset = src.pos;
            src.skip(num_bytes, &format!("tensor '{name}'"))?;
            let variable = Variable {
                shape,
                dtype,
                offset,
                num_bytes,
            };
            if variables.insert(name.clone(), variable).is_some() {
                bail!("{}: variable '{name}' appears twice", src.label);
            }
        }

        let mut aliases = BTreeMap::new();
        if version >= 3 {
            let num_aliases = src.u32("the alias count")?;
            for index in 0..num_aliases {
                let alias = src.string(&format!("the name of variable alias #{index}"))?;
                let target = src.string(&format!("the target of variable alias '{alias}'"))?;
                ensure!(
                    !variables.contains_key(&alias),
                    "{}: alias '{alias}' has the name of a variable",
                    src.label
                );
                aliases.insert(alias, target);
            }
        }
        ensure!(
            src.pos == src.len,
            "{}: {} unexpected bytes after the end of the model data (offset {})",
            src.label,
            src.len - src.pos,
            src.pos
        );

        Ok(Self {
            reader: src.reader,
            label: src.label,
            spec_name,
            variables,
            aliases,
        })
    }

    /// The file name used in error messages.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// The model spec name (e.g. "WhisperSpec"), absent in binary version 1.
    pub(super) fn spec_name(&self) -> Option<&str> {
        self.spec_name.as_deref()
    }

    /// The real variable behind `name`, following an alias; `None` if neither exists.
    pub(super) fn resolve<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if self.variables.contains_key(name) {
            return Some(name);
        }
        let target = self.aliases.get(name)?;
        self.variables
            .contains_key(target.as_str())
            .then_some(target.as_str())
    }

    /// Whether a variable or alias with this name exists.
    pub(super) fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// Whether any variable or alias name starts with `prefix`.
    pub(super) fn has_prefix(&self, prefix: &str) -> bool {
        // Variables are sorted, so the first name at or after `prefix` decides.
        let variable = self
            .variables
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .next()
            .is_some_and(|(name, _)| name.starts_with(prefix));
        variable || self.aliases.keys().any(|name| name.starts_with(prefix))
    }

    /// Shape of a variable (following aliases).
    pub(super) fn shape(&self, name: &str) -> Option<&[usize]> {
        let real = self.resolve(name)?;
        self.variables.get(real).map(|v| v.shape.as_slice())
    }

    /// Names of the real (non-alias) variables holding float or quantized weight data, i.e.
    /// everything except integer metadata such as flags and head counts.
    pub(super) fn weight_variables(&self) -> BTreeSet<String> {
        self.variables
            .iter()
            .filter(|(name, v)| {
                (v.dtype.is_float() && !v.shape.is_empty() && !name.ends_with("_scale"))
                    || name.ends_with("weight")
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Reads an integer scalar (flags and head counts), or `None` if it is absent.
    pub(super) fn scalar_int(&mut self, name: &str) -> anyhow::Result<Option<i64>> {
        if !self.contains(name) {
            return Ok(None);
        }
        let (bytes, dtype, shape) = self.read_raw(name)?;
        ensure!(
            shape.iter().product::<usize>() == 1,
            "{}: '{name}' should be a scalar but has shape {shape:?}",
            self.label
        );
        let value = match dtype {
            DType::I8 => bytes.first().map(|&b| i64::from(b as i8)),
            DType::I16 => bytes
                .get(..2)
                .map(|b| i64::from(i16::from_le_bytes([b[0], b[1]]))),
            DType::I32 => bytes
                .get(..4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            _ => None,
        };
        value
            .with_context(|| {
                format!(
                    "{}: '{name}' should be an integer but is {dtype:?}",
                    self.label
                )
            })
            .map(Some)
    }

    /// Reads a variable as f32, dequantizing int8/int16 weights.
    pub(super) fn read_f32(&mut self, name: &str) -> anyhow::Result<Vec<f32>> {
        let (bytes, dtype, shape) = self.read_raw(name)?;
        match dtype {
            DType::F32 => Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            DType::F16 => Ok(bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()),
            DType::BF16 => Ok(bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()),
            DType::I8 => {
                let values: Vec<f32> = bytes.iter().map(|&b| f32::from(b as i8)).collect();
                self.dequantize(name, values, &shape)
            }
            DType::I16 => {
                let values: Vec<f32> = bytes
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
                    .collect();
                self.dequantize(name, values, &shape)
            }
            DType::I32 => bail!(
                "{}: tensor '{name}' is int32, which cannot hold weights",
                self.label
            ),
        }
    }

    /// Reads a variable as little-endian float16 bytes. Float16 data, the bulk of a typical
    /// model, is passed through bit for bit without decoding.
    pub(super) fn read_f16_bytes(&mut self, name: &str) -> anyhow::Result<Vec<u8>> {
        let real = self.resolve_or_err(name)?;
        if self.variables.get(real).map(|v| v.dtype) == Some(DType::F16) {
            return Ok(self.read_raw(name)?.0);
        }
        Ok(self
            .read_f32(name)?
            .into_iter()
            .flat_map(|v| f16::from_f32(v).to_le_bytes())
            .collect())
    }

    /// Undoes CTranslate2's quantization: `value = quantized / scale`, with one scale per row
    /// (int8) or one for the whole tensor (int16), stored in the variable `<name>_scale`.
    fn dequantize(
        &mut self,
        name: &str,
        mut values: Vec<f32>,
        shape: &[usize],
    ) -> anyhow::Result<Vec<f32>> {
        let real = self.resolve_or_err(name)?.to_owned();
        let scale_name = format!("{real}_scale");
        ensure!(
            self.contains(&scale_name),
            "{}: quantized tensor '{name}' has no scale variable '{scale_name}'",
            self.label
        );
        let scales = self.read_f32(&scale_name)?;
        let rows = if scales.len() == 1 {
            1
        } else {
            shape.first().copied().unwrap_or(1)
        };
        ensure!(
            scales.len() == rows && rows > 0 && values.len().is_multiple_of(rows),
            "{}: scale '{scale_name}' has {} values, which does not fit tensor '{name}' of shape \
             {shape:?}",
            self.label,
            scales.len()
        );
        ensure!(
            scales.iter().all(|s| s.is_finite() && *s != 0.0),
            "{}: scale '{scale_name}' contains zero or non-finite values",
            self.label
        );
        let row_len = values.len() / rows;
        if row_len > 0 {
            for (row, scale) in values.chunks_mut(row_len).zip(&scales) {
                row.iter_mut().for_each(|v| *v /= scale);
            }
        }
        Ok(values)
    }

    fn resolve_or_err<'a>(&'a self, name: &'a str) -> anyhow::Result<&'a str> {
        self.resolve(name)
            .with_context(|| format!("{}: missing variable '{name}'", self.label))
    }

    /// Reads the raw bytes of a variable (following aliases).
    fn read_raw(&mut self, name: &str) -> anyhow::Result<(Vec<u8>, DType, Vec<usize>)> {
        let real = self.resolve_or_err(name)?.to_owned();
        let variable = self
            .variables
            .get(&real)
            .with_context(|| format!("{}: missing variable '{name}'", self.label))?;
        let (offset, num_bytes) = (variable.offset, variable.num_bytes);
        let (dtype, shape) = (variable.dtype, variable.shape.clone());
        let label = &self.label;
        self.reader
            .seek(SeekFrom::Start(offset))
            .with_context(|| format!("{label}: cannot seek to tensor '{real}'"))?;
        // `num_bytes` was checked against the file size while indexing, so this allocation is
        // bounded by the file.
        let mut bytes = vec![0u8; num_bytes];
        self.reader
            .read_exact(&mut bytes)
            .with_context(|| format!("{label}: cannot read tensor '{real}'"))?;
        Ok((bytes, dtype, shape))
    }
}

/// Sequential reader over the metadata that knows the file length, so truncation is reported
/// with what was being read instead of a bare I/O error, and nothing is allocated past the end.
struct Source<R> {
    reader: R,
    label: String,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Source<R> {
    fn seek(&mut self, pos: u64) -> anyhow::Result<()> {
        self.reader
            .seek(SeekFrom::Start(pos))
            .with_context(|| format!("{}: cannot seek to offset {pos}", self.label))?;
        self.pos = pos;
        Ok(())
    }

    /// Fails unless `n` more bytes exist; returns the end offset.
    fn need(&self, n: usize, what: &str) -> anyhow::Result<u64> {
        match self.pos.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(end),
            _ => bail!(
                "{}: unexpected end of file reading {what} (needs {n} bytes at offset {}, but the \
                 file has {} bytes)",
                self.label,
                self.pos,
                self.len
            ),
        }
    }

    fn bytes(&mut self, n: usize, what: &str) -> anyhow::Result<Vec<u8>> {
        let end = self.need(n, what)?;
        let mut buf = vec![0u8; n];
        self.reader
            .read_exact(&mut buf)
            .with_context(|| format!("{}: cannot read {what}", self.label))?;
        self.pos = end;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> anyhow::Result<[u8; N]> {
        let end = self.need(N, what)?;
        let mut buf = [0u8; N];
        self.reader
            .read_exact(&mut buf)
            .with_context(|| format!("{}: cannot read {what}", self.label))?;
        self.pos = end;
        Ok(buf)
    }

    fn skip(&mut self, n: usize, what: &str) -> anyhow::Result<()> {
        let end = self.need(n, what)?;
        self.seek(end)
    }

    fn u8(&mut self, what: &str) -> anyhow::Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> anyhow::Result<u16> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &str) -> anyhow::Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// A length-prefixed string; like CTranslate2, it ends at the first NUL.
    fn string(&mut self, what: &str) -> anyhow::Result<String> {
        let len = self.u16(what)?;
        let mut bytes = self.bytes(usize::from(len), what)?;
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: {what} is not valid UTF-8", self.label))
    }
}

/// Dimensions and counts are u32 in the file; usize is at least that wide on supported targets.
fn to_usize(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Cursor;

    /// One variable for [`model_bin`]: name, shape, CTranslate2 dtype id, raw data.
    pub(crate) type TestVar<'a> = (&'a str, &'a [usize], u8, Vec<u8>);

    fn push_string(out: &mut Vec<u8>, s: &str) {
        let len = u16::try_from(s.len() + 1).expect("short test string");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// Serializes a binary-version-6 `model.bin` the way CTranslate2's `_serialize` does.
    pub(crate) fn model_bin(vars: &[TestVar<'_>], aliases: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        push_string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&u32::try_from(vars.len()).expect("few").to_le_bytes());
        for (name, shape, dtype, data) in vars {
            push_string(&mut out, name);
            out.push(u8::try_from(shape.len()).expect("small rank"));
            for &d in *shape {
                out.extend_from_slice(&u32::try_from(d).expect("small dim").to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&u32::try_from(aliases.len()).expect("few").to_le_bytes());
        for (alias, target) in aliases {
            push_string(&mut out, alias);
            push_string(&mut out, target);
        }
        out
    }

    fn f16_bytes(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect()
    }

    fn parse(bytes: Vec<u8>) -> anyhow::Result<Ct2Model<Cursor<Vec<u8>>>> {
        let len = bytes.len() as u64;
        Ct2Model::parse(Cursor::new(bytes), "model.bin".to_owned(), len)
    }

    fn sample() -> Vec<u8> {
        model_bin(
            &[
                ("decoder/num_heads", &[], 2, 6i16.to_le_bytes().to_vec()),
                (
                    "decoder/embeddings/weight",
                    &[2, 3],
                    4,
                    f16_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                ),
                (
                    "encoder/layer_0/ffn/linear_0/bias",
                    &[2],
                    0,
                    [0.5f32, -0.25]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                ),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    #[test]
    fn reads_variables_scalars_and_aliases() -> anyhow::Result<()> {
        let mut model = parse(sample())?;
        assert_eq!(model.spec_name(), Some("WhisperSpec"));
        assert_eq!(model.scalar_int("decoder/num_heads")?, Some(6));
        assert_eq!(model.scalar_int("encoder/num_heads")?, None);
        assert_eq!(
            model.resolve("decoder/projection/weight"),
            Some("decoder/embeddings/weight")
        );
        assert_eq!(model.shape("decoder/projection/weight"), Some(&[2, 3][..]));
        assert_eq!(
            model.read_f32("decoder/projection/weight")?,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(
            model.read_f16_bytes("encoder/layer_0/ffn/linear_0/bias")?,
            f16_bytes(&[0.5, -0.25])
        );
        assert_eq!(
            model.read_f16_bytes("decoder/embeddings/weight")?,
            f16_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        assert!(model.has_prefix("encoder/layer_0/"));
        assert!(!model.has_prefix("encoder/layer_1/"));
        Ok(())
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_problem() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let err = match parse(bytes[..cut].to_vec()) {
                Ok(_) => panic!("truncation at {cut} was accepted"),
                Err(err) => format!("{err:#}"),
            };
            assert!(err.starts_with("model.bin: "), "{err}");
            assert!(err.contains("unexpected end of file reading"), "{err}");
        }
        // A cut inside the embedding data names that tensor.
        let data_start = bytes
            .windows(4)
            .position(|w| w == f16_bytes(&[1.0, 2.0]).as_slice())
            .expect("embedding data present");
        let err = parse(bytes[..data_start + 3].to_vec())
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some(
                "model.bin: unexpected end of file reading tensor 'decoder/embeddings/weight' \
                 (needs 12 bytes at offset 96, but the file has 99 bytes)"
            )
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // Deterministic pseudo-random bytes (xorshift), with and without a plausible version.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let len = round * 7 % 300;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if round % 2 == 0 && bytes.len() >= 4 {
                bytes[..4].copy_from_slice(&6u32.to_le_bytes());
            }
            let result = parse(bytes);
            assert!(result.is_err(), "round {round} parsed garbage");
        }
        let err = parse(b"\x7fELF-not-a-model".to_vec())
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("model.bin: unsupported binary version")),
            "{err:?}"
        );
    }

    #[test]
    fn inconsistent_sizes_and_trailing_bytes_are_errors() {
        let bad_size = model_bin(&[("w", &[4], 4, vec![0; 6])], &[]);
        let err = parse(bad_size).err().map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("model.bin: tensor 'w' declares 6 bytes, but shape [4] of F16 needs 8")
        );

        let mut trailing = sample();
        trailing.extend_from_slice(b"junk");
        let err = parse(trailing).err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("4 unexpected bytes after the end")),
            "{err:?}"
        );

        let huge = model_bin(
            &[("w", &[u32::MAX as usize, u32::MAX as usize], 4, vec![])],
            &[],
        );
        assert!(parse(huge).is_err());
    }

    #[test]
    fn dequantizes_int8_rows() -> anyhow::Result<()> {
        let bytes = model_bin(
            &[
                ("w", &[2, 2], 1, vec![127, 0xc1 /* -63 */, 10, 20]),
                (
                    "w_scale",
                    &[2],
                    0,
                    [127.0f32, 10.0]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                ),
            ],
            &[],
        );
        let mut model = parse(bytes)?;
        let values = model.read_f32("w")?;
        assert_eq!(values, vec![1.0, -63.0 / 127.0, 1.0, 2.0]);
        Ok(())
    }
}
