//! Quantizes a float16 ggml Whisper model to q8_0, as whisper.cpp's own `quantize` tool does:
//! every weight matrix becomes blocks of 32 int8 values with one float16 scale; everything
//! else (conv kernels, biases, norms, positional embeddings) is copied as it is.
//!
//! Measured here (2 cores, tiny.en, BENCHMARKS.md): a q8_0 model decodes about 1.2x faster
//! than the float16 one and writes the same words within noise, so it is steno's default.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use half::f16;

use super::ggml::{
    self, FTYPE_F16, FTYPE_Q8_0, HParams, MAGIC, Q8_0_BLOCK as BLOCK,
    Q8_0_BLOCK_BYTES as BLOCK_BYTES, TensorData, TensorType,
};

/// Writes a q8_0 copy of the float16 ggml model `from` to `to` (atomically: a failure leaves
/// nothing at `to`); returns how many tensors were quantized.
///
/// # Errors
/// When `from` cannot be read or is not a float16 ggml Whisper model, or `to` cannot be
/// written.
pub fn quantize_q8_0(from: &Path, to: &Path) -> anyhow::Result<usize> {
    let started = Instant::now();
    let input = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    let output =
        quantized(&input).with_context(|| format!("{}: cannot quantize", from.display()))?;
    super::write_atomically(to, |w| {
        use std::io::Write;
        w.write_all(&output.bytes)?;
        Ok(())
    })?;
    eprintln!(
        "{}: quantized {} tensors to q8_0, {:.1} MB, in {:.1} s",
        to.display(),
        output.quantized,
        output.bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(output.quantized)
}

/// A quantized model file in memory and how many tensors were quantized.
struct Quantized {
    bytes: Vec<u8>,
    quantized: usize,
}

/// The q8_0 file for the float16 ggml file `input`.
fn quantized(input: &[u8]) -> anyhow::Result<Quantized> {
    let mut r = Reader { data: input, at: 0 };
    let mut out = Vec::with_capacity(input.len() / 2);
    ensure!(
        r.u32()? == MAGIC,
        "not a ggml Whisper model (bad magic number)"
    );
    let mut h = [0i32; 11];
    for value in &mut h {
        *value = r.i32()?;
    }
    ensure!(
        h[10] == FTYPE_F16,
        "its weights are not float16 (ftype {}); only float16 models can be quantized",
        h[10]
    );
    ggml::write_header(
        &mut out,
        &HParams {
            n_vocab: h[0],
            n_audio_ctx: h[1],
            n_audio_state: h[2],
            n_audio_head: h[3],
            n_audio_layer: h[4],
            n_text_ctx: h[5],
            n_text_state: h[6],
            n_text_head: h[7],
            n_text_layer: h[8],
            n_mels: h[9],
            ftype: FTYPE_Q8_0,
        },
    )?;
    // The mel filterbank and vocabulary are copied as they are.
    let copied_from = r.at;
    // Mel filterbank: n_mel, n_fft, then n_mel x n_fft f32.
    let (n_mel, n_fft) = (r.count()?, r.count()?);
    let filters = n_mel.checked_mul(n_fft).and_then(|n| n.checked_mul(4));
    r.skip(filters.context("mel filterbank size overflows")?)?;
    // Vocabulary: a count, then each token as length + bytes.
    let n_vocab = r.count()?;
    for _ in 0..n_vocab {
        let len = r.count()?;
        r.skip(len)?;
    }
    out.extend_from_slice(&input[copied_from..r.at]);

    let mut quantized = 0;
    let bar = crate::progress::bytes_bar(input.len() as u64, "quantizing");
    while !r.done() {
        bar.set_position(r.at as u64);
        let (n_dims, name_len, ttype) = (r.count()?, r.count()?, r.i32()?);
        ensure!(
            (1..=4).contains(&n_dims),
            "a tensor with {n_dims} dims at byte {}",
            r.at
        );
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(r.count()?);
        }
        let name = std::str::from_utf8(r.take(name_len)?)
            .with_context(|| format!("a tensor name that is not UTF-8 at byte {}", r.at))?;
        let elements = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .with_context(|| format!("tensor '{name}': size overflows"))?;
        let (width, float16) = match ttype {
            t if t == TensorType::F32 as i32 => (4, false),
            t if t == TensorType::F16 as i32 => (2, true),
            other => bail!("tensor '{name}' has type {other}, expected f32 or f16"),
        };
        let data = r.take(elements * width)?;
        // whisper.cpp stores exactly its weight matrices in the model's type: the 2-D
        // float16 tensors (conv kernels are 3-D and stay float16, 2-D f32 ones stay f32).
        if float16 && n_dims == 2 {
            ensure!(
                dims[0] % BLOCK == 0,
                "tensor '{name}': rows of {} values do not split into blocks of {BLOCK}",
                dims[0]
            );
            let values: Vec<f32> = data
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            let blocks: Vec<u8> = values.chunks_exact(BLOCK).flat_map(q8_0_block).collect();
            ggml::write_tensor(&mut out, name, &dims, TensorData::Q8_0(&blocks))?;
            quantized += 1;
        } else if float16 {
            ggml::write_tensor(&mut out, name, &dims, TensorData::F16(data))?;
        } else {
            let values: Vec<f32> = data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            ggml::write_tensor(&mut out, name, &dims, TensorData::F32(&values))?;
        }
    }
    bar.finish_and_clear();
    ensure!(quantized > 0, "it has no float16 weight matrix to quantize");
    Ok(Quantized {
        bytes: out,
        quantized,
    })
}

/// One q8_0 block, computed as ggml's `quantize_row_q8_0_ref` does: the scale is the largest
/// magnitude over 127, each value its rounded quotient by the (unrounded) scale.
fn q8_0_block(values: &[f32]) -> [u8; BLOCK_BYTES] {
    let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut block = [0u8; BLOCK_BYTES];
    block[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    for (slot, v) in block[2..].iter_mut().zip(values) {
        // `round` rounds half away from zero, like C's roundf.
        *slot = ((v * inverse).round() as i8) as u8;
    }
    block
}

/// A bounds-checked little-endian reader over the input file.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.data.len());
        let end = end.with_context(|| {
            format!(
                "truncated: {n} bytes wanted at byte {} of {}",
                self.at,
                self.data.len()
            )
        })?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> anyhow::Result<()> {
        self.take(n).map(drop)
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> anyhow::Result<i32> {
        self.u32().map(|v| v as i32)
    }

    /// A non-negative int32 (a count, a length, a dimension).
    fn count(&mut self) -> anyhow::Result<usize> {
        let at = self.at;
        let v = self.i32()?;
        usize::try_from(v).with_context(|| format!("negative count {v} at byte {at}"))
    }

    fn done(&self) -> bool {
        self.at == self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::ggml::TYPE_Q8_0;
    use super::*;

    #[test]
    fn a_block_is_scaled_by_its_largest_magnitude() {
        let mut values = [0.0f32; BLOCK];
        values[0] = 1.27;
        values[1] = -0.635;
        values[2] = 0.005; // 0.5 of a step: rounds away from zero
        values[3] = -0.004;
        let block = q8_0_block(&values);
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        assert!((d - 0.01).abs() < 1e-5, "{d}");
        let q: Vec<i8> = block[2..6].iter().map(|&b| b as i8).collect();
        assert_eq!(q, [127, -64, 1, 0]);
        // All zeros: scale 0, values 0, no division by zero.
        assert_eq!(q8_0_block(&[0.0; BLOCK]), [0; BLOCK_BYTES]);
    }

    #[test]
    fn quantized_values_stay_within_half_a_step() {
        let values: Vec<f32> = (0..BLOCK)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let block = q8_0_block(&values);
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (v, &q) in values.iter().zip(&block[2..]) {
            let back = f32::from(q as i8) * d;
            assert!((back - v).abs() <= d * 0.51, "{v} came back as {back}");
        }
    }

    /// A small model file: header, a 1x2 filterbank, two tokens, a 2-D f16 matrix, a 1-D f32
    /// vector and a 3-D f16 kernel.
    fn tiny_model() -> Vec<u8> {
        let mut f = Vec::new();
        let put = |f: &mut Vec<u8>, v: i32| f.extend_from_slice(&v.to_le_bytes());
        f.extend_from_slice(&MAGIC.to_le_bytes());
        for v in [2, 1500, 32, 1, 1, 448, 32, 1, 1, 1, FTYPE_F16] {
            put(&mut f, v);
        }
        put(&mut f, 1);
        put(&mut f, 2);
        f.extend_from_slice(&[0u8; 8]);
        put(&mut f, 2);
        for token in [&b"a"[..], b"bc"] {
            put(&mut f, token.len() as i32);
            f.extend_from_slice(token);
        }
        let tensor = |f: &mut Vec<u8>, name: &str, ttype: i32, dims: &[i32], data: &[u8]| {
            put(f, dims.len() as i32);
            put(f, name.len() as i32);
            put(f, ttype);
            for &d in dims {
                put(f, d);
            }
            f.extend_from_slice(name.as_bytes());
            f.extend_from_slice(data);
        };
        let matrix: Vec<u8> = (0..64)
            .flat_map(|i| f16::from_f32(i as f32 / 64.0).to_le_bytes())
            .collect();
        tensor(
            &mut f,
            "m.weight",
            TensorType::F16 as i32,
            &[32, 2],
            &matrix,
        );
        tensor(&mut f, "v.bias", TensorType::F32 as i32, &[2], &[0u8; 8]);
        tensor(
            &mut f,
            "conv.weight",
            TensorType::F16 as i32,
            &[1, 1, 2],
            &[0u8; 4],
        );
        f
    }

    #[test]
    fn matrices_are_quantized_and_everything_else_copied() -> anyhow::Result<()> {
        let input = tiny_model();
        let out = quantized(&input)?;
        assert_eq!(out.quantized, 1);
        // The ftype changes; the rest of the header, filters and vocabulary do not.
        assert_eq!(&out.bytes[44..48], &FTYPE_Q8_0.to_le_bytes());
        assert_eq!(out.bytes[..44], input[..44]);
        let tensors_at = 48 + 8 + 8 + 4 + (4 + 1) + (4 + 2);
        assert_eq!(out.bytes[48..tensors_at], input[48..tensors_at]);
        // The matrix: same record header but type 8, then two blocks of 34 bytes.
        let m = &out.bytes[tensors_at..];
        assert_eq!(&m[8..12], &TYPE_Q8_0.to_le_bytes());
        let matrix_end = 12 + 8 + "m.weight".len() + 2 * BLOCK_BYTES;
        // The vector and the kernel are copied byte for byte.
        let rest_in = &input[tensors_at + 12 + 8 + "m.weight".len() + 64 * 2..];
        assert_eq!(&m[matrix_end..], rest_in);
        Ok(())
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let input = tiny_model();
        let err = |bytes: &[u8]| quantized(bytes).err().map(|e| format!("{e:#}"));
        assert!(err(b"nope").unwrap().contains("magic"));
        assert!(
            err(&input[..input.len() - 1])
                .unwrap()
                .contains("truncated")
        );
        let mut already = input.clone();
        already[44..48].copy_from_slice(&FTYPE_Q8_0.to_le_bytes());
        assert!(err(&already).unwrap().contains("not float16"));
    }
}
