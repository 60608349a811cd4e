//! Writer for whisper.cpp's legacy ggml model file, as read by `whisper_model_load`:
//! magic, hyperparameters, mel filterbank, vocabulary, then named tensors. Little-endian.

use std::io::Write;

use anyhow::Context;

/// "ggml" as a little-endian u32 (`GGML_FILE_MAGIC`).
pub(super) const MAGIC: u32 = 0x6767_6d6c;

/// `ftype` for "large tensors in float16" (`GGML_FTYPE_MOSTLY_F16`).
pub(super) const FTYPE_F16: i32 = 1;

/// `ftype` of a q8_0 model: `GGML_FTYPE_MOSTLY_Q8_0` (7) plus the quantization format's
/// version (`GGML_QNT_VERSION` 2) times `GGML_QNT_VERSION_FACTOR` (1000).
pub(super) const FTYPE_Q8_0: i32 = 7 + 2 * 1000;

/// Values per q8_0 block (`QK8_0`).
pub(super) const Q8_0_BLOCK: usize = 32;

/// Bytes per q8_0 block: a float16 scale and 32 int8 values (`sizeof(block_q8_0)`).
pub(super) const Q8_0_BLOCK_BYTES: usize = 2 + Q8_0_BLOCK;

/// The hyperparameters in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HParams {
    pub(super) n_vocab: i32,
    pub(super) n_audio_ctx: i32,
    pub(super) n_audio_state: i32,
    pub(super) n_audio_head: i32,
    pub(super) n_audio_layer: i32,
    pub(super) n_text_ctx: i32,
    pub(super) n_text_state: i32,
    pub(super) n_text_head: i32,
    pub(super) n_text_layer: i32,
    pub(super) n_mels: i32,
    pub(super) ftype: i32,
}

/// Element type of a converted tensor (`ggml_type`: 0 = f32, 1 = f16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TensorType {
    F32 = 0,
    F16 = 1,
}

/// `ggml_type` of a q8_0 tensor, which only the quantizer writes.
pub(super) const TYPE_Q8_0: i32 = 8;

/// Tensor data in its stored type.
pub(super) enum TensorData<'a> {
    F32(&'a [f32]),
    /// Little-endian float16 bytes, two per element.
    F16(&'a [u8]),
    /// q8_0 blocks of [`Q8_0_BLOCK_BYTES`], each holding [`Q8_0_BLOCK`] elements.
    Q8_0(&'a [u8]),
}

fn put_i32(w: &mut impl Write, v: i32) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn to_i32(v: usize, what: &str) -> anyhow::Result<i32> {
    i32::try_from(v).with_context(|| format!("{what} = {v} does not fit ggml's int32 field"))
}

/// Magic and hyperparameters.
pub(super) fn write_header(w: &mut impl Write, h: &HParams) -> anyhow::Result<()> {
    w.write_all(&MAGIC.to_le_bytes())?;
    for v in [
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
        h.ftype,
    ] {
        put_i32(w, v)?;
    }
    Ok(())
}

/// The `n_mel x n_fft` filterbank (`n_fft` here is the bin count, 201 for Whisper).
pub(super) fn write_mel_filters(
    w: &mut impl Write,
    n_mel: usize,
    n_fft: usize,
    filters: &[f32],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        n_mel.checked_mul(n_fft) == Some(filters.len()),
        "mel filterbank has {} values, expected {n_mel} x {n_fft}",
        filters.len()
    );
    put_i32(w, to_i32(n_mel, "n_mel")?)?;
    put_i32(w, to_i32(n_fft, "n_fft")?)?;
    let bytes: Vec<u8> = filters.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.write_all(&bytes)?;
    Ok(())
}

/// The token count, then each token as length + raw bytes.
pub(super) fn write_vocab(w: &mut impl Write, tokens: &[Vec<u8>]) -> anyhow::Result<()> {
    put_i32(w, to_i32(tokens.len(), "vocabulary size")?)?;
    for token in tokens {
        put_i32(w, to_i32(token.len(), "token length")?)?;
        w.write_all(token)?;
    }
    Ok(())
}

/// One tensor: n_dims, name length, type, dims (ggml order: fastest-varying first), name, data.
pub(super) fn write_tensor(
    w: &mut impl Write,
    name: &str,
    dims: &[usize],
    data: TensorData<'_>,
) -> anyhow::Result<()> {
    let (ttype, len) = match data {
        TensorData::F32(d) => (TensorType::F32 as i32, d.len()),
        TensorData::F16(d) => (TensorType::F16 as i32, d.len() / 2),
        TensorData::Q8_0(d) => (TYPE_Q8_0, d.len() / Q8_0_BLOCK_BYTES * Q8_0_BLOCK),
    };
    match data {
        TensorData::F16(d) => anyhow::ensure!(
            d.len() % 2 == 0,
            "tensor '{name}': odd number of float16 bytes"
        ),
        TensorData::Q8_0(d) => anyhow::ensure!(
            d.len() % Q8_0_BLOCK_BYTES == 0,
            "tensor '{name}': q8_0 bytes that are not whole blocks"
        ),
        TensorData::F32(_) => {}
    }
    // whisper.cpp multiplies the dims into an int32 element count.
    let elements = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    anyhow::ensure!(
        elements == Some(len) && to_i32(len, "element count").is_ok(),
        "tensor '{name}': {len} values do not fill dims {dims:?}"
    );
    anyhow::ensure!(
        (1..=4).contains(&dims.len()),
        "tensor '{name}': ggml supports 1 to 4 dims, not {}",
        dims.len()
    );
    put_i32(w, to_i32(dims.len(), "n_dims")?)?;
    put_i32(w, to_i32(name.len(), "name length")?)?;
    put_i32(w, ttype)?;
    for &d in dims {
        put_i32(w, to_i32(d, "dimension")?)?;
    }
    w.write_all(name.as_bytes())?;

    match data {
        TensorData::F32(d) => {
            // Serialise in chunks: one write per value would be slow.
            const CHUNK: usize = 1 << 16;
            let mut buf = Vec::with_capacity(CHUNK * 4);
            for chunk in d.chunks(CHUNK) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
        TensorData::F16(d) | TensorData::Q8_0(d) => w.write_all(d)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    /// Whisper tiny.en, as in OpenAI's checkpoint dims.
    fn tiny_en() -> HParams {
        HParams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
            ftype: FTYPE_F16,
        }
    }

    #[test]
    fn header_bytes_for_tiny_en() -> anyhow::Result<()> {
        let mut out = Vec::new();
        write_header(&mut out, &tiny_en())?;
        #[rustfmt::skip]
        let expected: [u8; 48] = [
            0x6c, 0x6d, 0x67, 0x67, // magic "lmgg" = 0x67676d6c LE
            0x98, 0xca, 0x00, 0x00, // n_vocab 51864
            0xdc, 0x05, 0x00, 0x00, // n_audio_ctx 1500
            0x80, 0x01, 0x00, 0x00, // n_audio_state 384
            0x06, 0x00, 0x00, 0x00, // n_audio_head 6
            0x04, 0x00, 0x00, 0x00, // n_audio_layer 4
            0xc0, 0x01, 0x00, 0x00, // n_text_ctx 448
            0x80, 0x01, 0x00, 0x00, // n_text_state 384
            0x06, 0x00, 0x00, 0x00, // n_text_head 6
            0x04, 0x00, 0x00, 0x00, // n_text_layer 4
            0x50, 0x00, 0x00, 0x00, // n_mels 80
            0x01, 0x00, 0x00, 0x00, // ftype 1 = f16
        ];
        assert_eq!(out, expected);
        Ok(())
    }

    #[test]
    fn tensor_record_layout() -> anyhow::Result<()> {
        let mut out = Vec::new();
        let data: Vec<u8> = [f16::from_f32(1.0), f16::from_f32(-2.0)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write_tensor(&mut out, "a.b", &[1, 2], TensorData::F16(&data))?;
        #[rustfmt::skip]
        let expected = [
            2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, // n_dims, name_len, ttype f16
            1, 0, 0, 0, 2, 0, 0, 0,             // ne[0], ne[1]
            b'a', b'.', b'b',
            0x00, 0x3c, 0x00, 0xc0,             // 1.0, -2.0 as f16
        ];
        assert_eq!(out, expected);
        assert!(write_tensor(&mut out, "x", &[3], TensorData::F32(&[1.0])).is_err());
        Ok(())
    }
}
