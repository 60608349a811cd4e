//! Converts a CTranslate2 Whisper model (the format faster-whisper uses) to whisper.cpp's ggml
//! format.
//!
//! Both hold the same weights. The differences handled here:
//! - names: CTranslate2's `encoder/layer_0/self_attention/linear_1/weight` is whisper.cpp's
//!   `encoder.blocks.0.attn.out.weight` (see `whisper-arch.h`);
//! - fusion: CTranslate2 stacks self-attention query/key/value into one `linear_0` (rows in that
//!   order) and cross-attention key/value into one `linear_1`; whisper.cpp wants them apart;
//! - key biases: Whisper has none, CTranslate2 stores zeros in the fused bias; whisper.cpp has no
//!   tensor for them, and dropping them is exact anyway (a key bias adds the same `q·b` to every
//!   score of a query, which softmax ignores);
//! - the output projection is an alias of the token embedding, which whisper.cpp reuses;
//! - types: whisper.cpp wants matrices (and conv kernels) in f16, vectors, conv biases and
//!   positional embeddings in f32; conv biases shaped `[n_state, 1]`;
//! - extras in the ggml file: the mel filterbank (computed here) and the vocabulary as raw bytes.

mod ct2;
mod ggml;
mod mel;
mod quantize;
mod vocab;

pub use quantize::quantize_q8_0;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};

use ct2::Ct2Model;
use ggml::{HParams, TensorData, TensorType};

/// Whisper's front end: 16 kHz audio, 400-sample FFT window.
const SAMPLE_RATE: f64 = 16_000.0;
const N_FFT: usize = 400;
/// Every Whisper size has 64-dimensional attention heads; only used when a model omits its head
/// counts.
const HEAD_DIM: usize = 64;
/// Whisper's convolutions have width 3.
const CONV_WIDTH: usize = 3;

const TOKEN_EMBEDDING: &str = "decoder/embeddings/weight";
const OUTPUT_PROJECTION: &str = "decoder/projection/weight";

/// Converts the CTranslate2 model in `model_dir` (its `model.bin` and `vocabulary.txt`) to a
/// ggml file at `out`, atomically: a failure leaves any earlier file at `out` as it was.
///
/// # Errors
/// When the model cannot be read, is not a Whisper model whisper.cpp can represent, or `out`
/// cannot be written; the message names the file.
pub fn convert(model_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut model = Ct2Model::open(&model_dir.join("model.bin"))?;
    let tokens = vocab::read_text_tokens(&model_dir.join("vocabulary.txt"))?;
    let (tensors, bytes) = write_atomically(out, |w| {
        let tensors = write_ggml(&mut model, &tokens, w)?;
        Ok((tensors, w.written))
    })?;
    eprintln!(
        "{}: wrote {tensors} tensors, {:.1} MB, in {:.1} s",
        out.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the whole ggml file; returns the number of tensors.
fn write_ggml<R: Read + Seek>(
    model: &mut Ct2Model<R>,
    tokens: &[Vec<u8>],
    w: &mut impl Write,
) -> anyhow::Result<usize> {
    let dims = WhisperDims::from_model(model)?;
    check_architecture_flags(model)?;
    ensure!(
        tokens.len() < dims.n_vocab,
        "{}: the token embedding has only {} rows, but vocabulary.txt has {} tokens up to \
         <|endoftext|>",
        model.label(),
        dims.n_vocab,
        tokens.len()
    );
    let plan = tensor_plan(&dims);
    // Validate everything that can be validated before the first byte is written.
    check_coverage(model, &plan)?;

    ggml::write_header(w, &dims.hparams()?)?;
    let filters = mel::slaney_mel_filterbank(SAMPLE_RATE, N_FFT, dims.n_mels);
    ggml::write_mel_filters(w, dims.n_mels, N_FFT / 2 + 1, &filters)?;
    ggml::write_vocab(w, tokens)?;
    let bar = crate::progress::bar(plan.len() as u64, "converting");
    for tensor in &plan {
        write_planned(model, tensor, w)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(plan.len())
}

/// Model dimensions, read from the variable shapes.
#[derive(Debug)]
struct WhisperDims {
    n_vocab: usize,
    n_audio_ctx: usize,
    n_state: usize,
    n_audio_head: usize,
    n_audio_layer: usize,
    n_text_ctx: usize,
    n_text_head: usize,
    n_text_layer: usize,
    n_mels: usize,
}

impl WhisperDims {
    fn from_model<R: Read + Seek>(model: &mut Ct2Model<R>) -> anyhow::Result<Self> {
        let label = model.label().to_owned();
        if let Some(spec) = model.spec_name() {
            ensure!(
                spec == "WhisperSpec",
                "{label}: this is a '{spec}' model, not a Whisper model ('WhisperSpec')"
            );
        }
        let shape = |name: &str, rank: usize| -> anyhow::Result<Vec<usize>> {
            let shape = model.shape(name).with_context(|| {
                format!("{label}: missing variable '{name}' (is this a Whisper model?)")
            })?;
            ensure!(
                shape.len() == rank && shape.iter().all(|&d| d > 0),
                "{label}: '{name}' has shape {shape:?}, expected {rank} non-zero dimensions"
            );
            Ok(shape.to_vec())
        };
        let embedding = shape(TOKEN_EMBEDDING, 2)?;
        let audio_pos = shape("encoder/position_encodings/encodings", 2)?;
        let text_pos = shape("decoder/position_encodings/encodings", 2)?;
        let conv1 = shape("encoder/conv1/weight", 3)?;
        let n_state = embedding[1];
        // whisper.cpp asserts that encoder and decoder widths are equal.
        ensure!(
            audio_pos[1] == n_state && text_pos[1] == n_state && conv1[0] == n_state,
            "{label}: encoder and decoder widths differ ({} vs {n_state}), which whisper.cpp \
             does not support",
            audio_pos[1]
        );
        let count_layers = |stack: &str| {
            (0..)
                .take_while(|i| model.has_prefix(&format!("{stack}/layer_{i}/")))
                .count()
        };
        let n_audio_layer = count_layers("encoder");
        let n_text_layer = count_layers("decoder");
        ensure!(
            n_audio_layer > 0 && n_text_layer > 0,
            "{label}: no encoder or decoder layers found"
        );
        let n_audio_head = head_count(model, "encoder/num_heads", n_state)?;
        let n_text_head = head_count(model, "decoder/num_heads", n_state)?;
        Ok(Self {
            n_vocab: embedding[0],
            n_audio_ctx: audio_pos[0],
            n_state,
            n_audio_head,
            n_audio_layer,
            n_text_ctx: text_pos[0],
            n_text_head,
            n_text_layer,
            n_mels: conv1[1],
        })
    }

    fn hparams(&self) -> anyhow::Result<HParams> {
        let int = |v: usize, what: &str| {
            i32::try_from(v).with_context(|| format!("{what} = {v} does not fit ggml's int32"))
        };
        Ok(HParams {
            n_vocab: int(self.n_vocab, "n_vocab")?,
            n_audio_ctx: int(self.n_audio_ctx, "n_audio_ctx")?,
            n_audio_state: int(self.n_state, "n_audio_state")?,
            n_audio_head: int(self.n_audio_head, "n_audio_head")?,
            n_audio_layer: int(self.n_audio_layer, "n_audio_layer")?,
            n_text_ctx: int(self.n_text_ctx, "n_text_ctx")?,
            n_text_state: int(self.n_state, "n_text_state")?,
            n_text_head: int(self.n_text_head, "n_text_head")?,
            n_text_layer: int(self.n_text_layer, "n_text_layer")?,
            n_mels: int(self.n_mels, "n_mels")?,
            ftype: ggml::FTYPE_F16,
        })
    }
}

/// A stack's head count from its `num_heads` scalar, else Whisper's fixed head width.
fn head_count<R: Read + Seek>(
    model: &mut Ct2Model<R>,
    name: &str,
    n_state: usize,
) -> anyhow::Result<usize> {
    let heads = match model.scalar_int(name)? {
        Some(v) => usize::try_from(v).unwrap_or(0),
        None => n_state / HEAD_DIM,
    };
    ensure!(
        heads > 0 && n_state.is_multiple_of(heads),
        "{}: {heads} attention heads cannot split a width of {n_state} ('{name}')",
        model.label()
    );
    Ok(heads)
}

/// whisper.cpp hard-codes Whisper's decoder: pre-norm, GELU, unscaled embeddings, learned
/// positions. Refuse models whose flags say otherwise rather than produce garbage.
fn check_architecture_flags<R: Read + Seek>(model: &mut Ct2Model<R>) -> anyhow::Result<()> {
    // (flag, required value, meaning); `decoder/activation` 3 is CTranslate2's GELU.
    let required = [
        ("decoder/pre_norm", 1, "pre-norm layers"),
        ("decoder/scale_embeddings", 0, "unscaled embeddings"),
        ("decoder/alibi", 0, "learned positions, not ALiBi"),
        ("decoder/activation", 3, "GELU"),
    ];
    for (flag, expected, meaning) in required {
        if let Some(value) = model.scalar_int(flag)? {
            ensure!(
                value == expected,
                "{}: '{flag}' is {value}, but whisper.cpp only implements {expected} ({meaning})",
                model.label()
            );
        }
    }
    Ok(())
}

/// Which slice along the first dimension of a fused CTranslate2 variable a tensor is.
#[derive(Clone, Copy, Debug)]
struct Part {
    index: usize,
    of: usize,
}

const WHOLE: Part = Part { index: 0, of: 1 };

/// How one whisper.cpp tensor is made from a CTranslate2 variable.
#[derive(Debug)]
struct TensorPlan {
    ggml_name: String,
    source: String,
    /// Shape the CTranslate2 variable must have (row-major).
    source_shape: Vec<usize>,
    part: Part,
    /// ggml dims (`ne`, fastest-varying first, i.e. the row-major shape reversed).
    ggml_dims: Vec<usize>,
    ttype: TensorType,
}

/// Builds [`TensorPlan`]s; the methods name the kinds of tensor whisper.cpp distinguishes.
struct Planner(Vec<TensorPlan>);

impl Planner {
    fn push(
        &mut self,
        ggml_name: String,
        source: String,
        source_shape: Vec<usize>,
        part: Part,
        ggml_dims: Vec<usize>,
        ttype: TensorType,
    ) {
        self.0.push(TensorPlan {
            ggml_name,
            source,
            source_shape,
            part,
            ggml_dims,
            ttype,
        });
    }

    /// A 1-D f32 tensor (biases, layer norms).
    fn vector(&mut self, ggml: String, source: String, n: usize) {
        self.push(ggml, source, vec![n], WHOLE, vec![n], TensorType::F32);
    }

    /// An `[out, in]` f16 weight matrix.
    fn matrix(&mut self, ggml: String, source: String, out: usize, inp: usize) {
        self.push(
            ggml,
            source,
            vec![out, inp],
            WHOLE,
            vec![inp, out],
            TensorType::F16,
        );
    }

    /// Part `index` of `of` `[n, n]` matrices stacked in one `[of * n, n]` variable.
    fn fused_matrix(&mut self, ggml: String, source: String, index: usize, of: usize, n: usize) {
        let part = Part { index, of };
        self.push(
            ggml,
            source,
            vec![of * n, n],
            part,
            vec![n, n],
            TensorType::F16,
        );
    }

    /// Part `index` of `of` length-`n` biases stacked in one variable.
    fn fused_vector(&mut self, ggml: String, source: String, index: usize, of: usize, n: usize) {
        let part = Part { index, of };
        self.push(ggml, source, vec![of * n], part, vec![n], TensorType::F32);
    }

    /// Layer norm `gamma`/`beta` as `weight`/`bias`.
    fn layer_norm(&mut self, ggml: &str, source: &str, n: usize) {
        self.vector(format!("{ggml}.weight"), format!("{source}/gamma"), n);
        self.vector(format!("{ggml}.bias"), format!("{source}/beta"), n);
    }

    /// A plain linear layer (`weight` + `bias`).
    fn linear(&mut self, ggml: &str, source: &str, out: usize, inp: usize) {
        self.matrix(
            format!("{ggml}.weight"),
            format!("{source}/weight"),
            out,
            inp,
        );
        self.vector(format!("{ggml}.bias"), format!("{source}/bias"), out);
    }

    /// A `[out, in, width]` conv kernel (f16) and its bias, stored as `[n, 1]`.
    fn conv(&mut self, ggml: &str, source: &str, out: usize, inp: usize) {
        self.push(
            format!("{ggml}.weight"),
            format!("{source}/weight"),
            vec![out, inp, CONV_WIDTH],
            WHOLE,
            vec![CONV_WIDTH, inp, out],
            TensorType::F16,
        );
        self.push(
            format!("{ggml}.bias"),
            format!("{source}/bias"),
            vec![out],
            WHOLE,
            vec![1, out],
            TensorType::F32,
        );
    }

    /// A `[ctx, n]` positional embedding, kept in f32.
    fn positional(&mut self, ggml: &str, source: &str, ctx: usize, n: usize) {
        self.push(
            ggml.to_owned(),
            source.to_owned(),
            vec![ctx, n],
            WHOLE,
            vec![n, ctx],
            TensorType::F32,
        );
    }

    /// Self-attention: query/key/value fused in `linear_0`, output in `linear_1`.
    fn self_attention(&mut self, ggml: &str, source: &str, n: usize) {
        let fused_w = format!("{source}/linear_0/weight");
        let fused_b = format!("{source}/linear_0/bias");
        self.fused_matrix(format!("{ggml}.query.weight"), fused_w.clone(), 0, 3, n);
        self.fused_vector(format!("{ggml}.query.bias"), fused_b.clone(), 0, 3, n);
        self.fused_matrix(format!("{ggml}.key.weight"), fused_w.clone(), 1, 3, n);
        self.fused_matrix(format!("{ggml}.value.weight"), fused_w, 2, 3, n);
        self.fused_vector(format!("{ggml}.value.bias"), fused_b, 2, 3, n);
        self.linear(&format!("{ggml}.out"), &format!("{source}/linear_1"), n, n);
        self.layer_norm(&format!("{ggml}_ln"), &format!("{source}/layer_norm"), n);
    }

    /// Cross-attention: query in `linear_0`, key/value fused in `linear_1`, output in `linear_2`.
    fn cross_attention(&mut self, ggml: &str, source: &str, n: usize) {
        let fused_w = format!("{source}/linear_1/weight");
        let fused_b = format!("{source}/linear_1/bias");
        self.linear(
            &format!("{ggml}.query"),
            &format!("{source}/linear_0"),
            n,
            n,
        );
        self.fused_matrix(format!("{ggml}.key.weight"), fused_w.clone(), 0, 2, n);
        self.fused_matrix(format!("{ggml}.value.weight"), fused_w, 1, 2, n);
        self.fused_vector(format!("{ggml}.value.bias"), fused_b, 1, 2, n);
        self.linear(&format!("{ggml}.out"), &format!("{source}/linear_2"), n, n);
        self.layer_norm(&format!("{ggml}_ln"), &format!("{source}/layer_norm"), n);
    }

    /// The MLP block: `mlp.0` widens to 4n, `mlp.2` narrows back (`mlp.1` is the GELU).
    fn mlp(&mut self, ggml: &str, source: &str, n: usize) {
        self.linear(
            &format!("{ggml}.mlp.0"),
            &format!("{source}/linear_0"),
            4 * n,
            n,
        );
        self.linear(
            &format!("{ggml}.mlp.2"),
            &format!("{source}/linear_1"),
            n,
            4 * n,
        );
        self.layer_norm(
            &format!("{ggml}.mlp_ln"),
            &format!("{source}/layer_norm"),
            n,
        );
    }
}

/// Every tensor `whisper_model_load` expects, with its CTranslate2 source. whisper.cpp does not
/// care about the order; this is the order of OpenAI's PyTorch `state_dict`, which the official
/// converter (`models/convert-pt-to-ggml.py`) follows, so identical weights give identical files.
fn tensor_plan(d: &WhisperDims) -> Vec<TensorPlan> {
    let n = d.n_state;
    let mut p = Planner(Vec::new());

    p.positional(
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
        d.n_audio_ctx,
        n,
    );
    p.conv("encoder.conv1", "encoder/conv1", n, d.n_mels);
    p.conv("encoder.conv2", "encoder/conv2", n, n);
    for i in 0..d.n_audio_layer {
        let (ggml, source) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        p.self_attention(
            &format!("{ggml}.attn"),
            &format!("{source}/self_attention"),
            n,
        );
        p.mlp(&ggml, &format!("{source}/ffn"), n);
    }
    p.layer_norm("encoder.ln_post", "encoder/layer_norm", n);

    p.positional(
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
        d.n_text_ctx,
        n,
    );
    p.matrix(
        "decoder.token_embedding.weight".to_owned(),
        TOKEN_EMBEDDING.to_owned(),
        d.n_vocab,
        n,
    );
    for i in 0..d.n_text_layer {
        let (ggml, source) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        p.self_attention(
            &format!("{ggml}.attn"),
            &format!("{source}/self_attention"),
            n,
        );
        p.cross_attention(
            &format!("{ggml}.cross_attn"),
            &format!("{source}/attention"),
            n,
        );
        p.mlp(&ggml, &format!("{source}/ffn"), n);
    }
    p.layer_norm("decoder.ln", "decoder/layer_norm", n);
    p.0
}

/// Checks that every planned source exists with the right shape, that the output projection is
/// the token embedding (whisper.cpp has no separate one), and that no weight is left behind.
fn check_coverage<R: Read + Seek>(
    model: &mut Ct2Model<R>,
    plan: &[TensorPlan],
) -> anyhow::Result<()> {
    let label = model.label().to_owned();
    let mut used = BTreeSet::new();
    for t in plan {
        let real = model.resolve(&t.source).with_context(|| {
            format!(
                "{label}: missing variable '{}' (needed for whisper.cpp's '{}')",
                t.source, t.ggml_name
            )
        })?;
        let shape = model.shape(real).unwrap_or_default();
        ensure!(
            shape == t.source_shape.as_slice(),
            "{label}: '{}' has shape {shape:?}, expected {:?} for whisper.cpp's '{}'",
            t.source,
            t.source_shape,
            t.ggml_name
        );
        used.insert(real.to_owned());
    }

    if let Some(projection) = model.resolve(OUTPUT_PROJECTION).map(str::to_owned) {
        let embedding = model.resolve(TOKEN_EMBEDDING).map(str::to_owned);
        if embedding.as_deref() != Some(projection.as_str()) {
            // Not an alias: acceptable only if it holds the same numbers.
            let same = model.shape(&projection) == model.shape(TOKEN_EMBEDDING)
                && model.read_f32(&projection)? == model.read_f32(TOKEN_EMBEDDING)?;
            ensure!(
                same,
                "{label}: '{OUTPUT_PROJECTION}' differs from '{TOKEN_EMBEDDING}'; whisper.cpp \
                 only supports an output projection tied to the token embedding"
            );
        }
        used.insert(projection);
    }

    let unused: Vec<String> = model
        .weight_variables()
        .difference(&used)
        .cloned()
        .collect();
    ensure!(
        unused.is_empty(),
        "{label}: {} weight variable(s) have no place in whisper.cpp's model: {}",
        unused.len(),
        unused.join(", ")
    );
    Ok(())
}

/// Reads, slices, converts and writes one tensor.
fn write_planned<R: Read + Seek>(
    model: &mut Ct2Model<R>,
    t: &TensorPlan,
    w: &mut impl Write,
) -> anyhow::Result<()> {
    match t.ttype {
        TensorType::F32 => {
            let all = model.read_f32(&t.source)?;
            let data = part_of(&all, t, model.label())?;
            ggml::write_tensor(w, &t.ggml_name, &t.ggml_dims, TensorData::F32(data))
        }
        TensorType::F16 => {
            let all = model.read_f16_bytes(&t.source)?;
            let data = part_of(&all, t, model.label())?;
            ggml::write_tensor(w, &t.ggml_name, &t.ggml_dims, TensorData::F16(data))
        }
    }
}

/// The contiguous slice of a fused variable that `t` takes: parts are whole rows, and rows are
/// contiguous in row-major order (so this works on elements and on raw bytes alike).
fn part_of<'a, T>(all: &'a [T], t: &TensorPlan, label: &str) -> anyhow::Result<&'a [T]> {
    let len = all.len() / t.part.of.max(1);
    all.get(t.part.index * len..(t.part.index + 1) * len)
        .filter(|_| all.len().is_multiple_of(t.part.of.max(1)))
        .with_context(|| {
            format!(
                "{label}: '{}' has {} values, which cannot be split for '{}'",
                t.source,
                all.len(),
                t.ggml_name
            )
        })
}

/// Writes `out` through a temporary file in the same directory and renames it into place, so a
/// failed conversion never leaves a partial model at `out`.
fn write_atomically<T>(
    out: &Path,
    write: impl FnOnce(&mut LabelledWriter<BufWriter<File>>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let file_name = out
        .file_name()
        .with_context(|| format!("{}: output path has no file name", out.display()))?;
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);

    let file = File::create(&tmp).with_context(|| {
        format!(
            "{}: cannot create the temporary file for {}",
            tmp.display(),
            out.display()
        )
    })?;
    let guard = RemoveOnDrop(Some(tmp.clone()));
    let mut writer = LabelledWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        label: tmp.display().to_string(),
        written: 0,
    };
    let value = write(&mut writer)?;
    let file = writer
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("{}: cannot flush to disk", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
    guard.disarm();
    Ok(value)
}

/// Deletes the temporary file unless the conversion succeeded.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: the error that got us here is the one worth reporting.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Puts the file name into write errors (e.g. "disk full") and counts bytes written.
struct LabelledWriter<W> {
    inner: W,
    label: String,
    written: u64,
}

impl<W: Write> Write for LabelledWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self
            .inner
            .write(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.label)))?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner
            .flush()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.label)))
    }
}

#[cfg(test)]
mod tests;
