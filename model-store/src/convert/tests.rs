//! End-to-end tests of the conversion on a tiny synthetic Whisper model, checked against the
//! tensor list and shapes of whisper.cpp 1.8.3's `whisper_model_load`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::f16;

use super::convert;
use super::ct2::tests::{TestVar, model_bin};

/// Synthetic dims: width 8 (2 heads), 4 mels, 6 audio frames, 5 text positions, 10 tokens,
/// 2 encoder layers, 1 decoder layer.
const N: usize = 8;
const N_MELS: usize = 4;
const AUDIO_CTX: usize = 6;
const TEXT_CTX: usize = 5;
const N_VOCAB: usize = 10;
const ENC_LAYERS: usize = 2;
const DEC_LAYERS: usize = 1;

/// Deterministic per-variable values. They are multiples of 1/32 below 64, so exact in f16 and
/// every comparison below can be exact.
fn value(name: &str, k: usize) -> f32 {
    let h = name
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    ((h % 700) as usize + k) as f32 / 32.0
}

fn values(name: &str, range: std::ops::Range<usize>) -> Vec<f32> {
    range.map(|k| value(name, k)).collect()
}

/// A variable of the synthetic model: matrices as f16, vectors as f32, like real exports.
fn var(name: &str, shape: &[usize]) -> (String, Vec<usize>, u8, Vec<u8>) {
    let count: usize = shape.iter().product();
    let (dtype, data) = if shape.len() >= 2 {
        let bytes = (0..count)
            .flat_map(|k| f16::from_f32(value(name, k)).to_le_bytes())
            .collect();
        (4, bytes)
    } else {
        (
            0,
            (0..count)
                .flat_map(|k| value(name, k).to_le_bytes())
                .collect(),
        )
    };
    (name.to_owned(), shape.to_vec(), dtype, data)
}

/// An integer scalar: dtype 1 = int8, 2 = int16.
fn scalar(name: &str, dtype: u8, v: i16) -> (String, Vec<usize>, u8, Vec<u8>) {
    let data = if dtype == 1 {
        vec![v.to_le_bytes()[0]]
    } else {
        v.to_le_bytes().to_vec()
    };
    (name.to_owned(), vec![], dtype, data)
}

fn layer_norm(vars: &mut Vec<(String, Vec<usize>, u8, Vec<u8>)>, scope: &str) {
    vars.push(var(&format!("{scope}/gamma"), &[N]));
    vars.push(var(&format!("{scope}/beta"), &[N]));
}

fn linear(vars: &mut Vec<(String, Vec<usize>, u8, Vec<u8>)>, scope: &str, out: usize, inp: usize) {
    vars.push(var(&format!("{scope}/weight"), &[out, inp]));
    vars.push(var(&format!("{scope}/bias"), &[out]));
}

/// The variables CTranslate2's WhisperSpec writes, at synthetic size.
fn synthetic_vars() -> Vec<(String, Vec<usize>, u8, Vec<u8>)> {
    let mut v = vec![
        var("encoder/position_encodings/encodings", &[AUDIO_CTX, N]),
        var("encoder/conv1/weight", &[N, N_MELS, 3]),
        var("encoder/conv1/bias", &[N]),
        var("encoder/conv2/weight", &[N, N, 3]),
        var("encoder/conv2/bias", &[N]),
        scalar("encoder/num_heads", 2, 2),
    ];
    layer_norm(&mut v, "encoder/layer_norm");
    for i in 0..ENC_LAYERS {
        let s = format!("encoder/layer_{i}");
        layer_norm(&mut v, &format!("{s}/self_attention/layer_norm"));
        linear(&mut v, &format!("{s}/self_attention/linear_0"), 3 * N, N);
        linear(&mut v, &format!("{s}/self_attention/linear_1"), N, N);
        layer_norm(&mut v, &format!("{s}/ffn/layer_norm"));
        linear(&mut v, &format!("{s}/ffn/linear_0"), 4 * N, N);
        linear(&mut v, &format!("{s}/ffn/linear_1"), N, 4 * N);
    }
    v.push(var("decoder/embeddings/weight", &[N_VOCAB, N]));
    v.push(var("decoder/position_encodings/encodings", &[TEXT_CTX, N]));
    v.push(scalar("decoder/num_heads", 2, 2));
    v.push(scalar("decoder/pre_norm", 1, 1));
    v.push(scalar("decoder/activation", 1, 3));
    v.push(scalar("decoder/scale_embeddings", 1, 0));
    v.push(scalar("decoder/alibi", 1, 0));
    layer_norm(&mut v, "decoder/layer_norm");
    for i in 0..DEC_LAYERS {
        let s = format!("decoder/layer_{i}");
        layer_norm(&mut v, &format!("{s}/self_attention/layer_norm"));
        linear(&mut v, &format!("{s}/self_attention/linear_0"), 3 * N, N);
        linear(&mut v, &format!("{s}/self_attention/linear_1"), N, N);
        layer_norm(&mut v, &format!("{s}/attention/layer_norm"));
        linear(&mut v, &format!("{s}/attention/linear_0"), N, N);
        linear(&mut v, &format!("{s}/attention/linear_1"), 2 * N, N);
        linear(&mut v, &format!("{s}/attention/linear_2"), N, N);
        layer_norm(&mut v, &format!("{s}/ffn/layer_norm"));
        linear(&mut v, &format!("{s}/ffn/linear_0"), 4 * N, N);
        linear(&mut v, &format!("{s}/ffn/linear_1"), N, 4 * N);
    }
    v
}

const PROJECTION_ALIAS: (&str, &str) = ("decoder/projection/weight", "decoder/embeddings/weight");

fn serialize(vars: &[(String, Vec<usize>, u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
    let borrowed: Vec<TestVar<'_>> = vars
        .iter()
        .map(|(n, s, t, d)| (n.as_str(), s.as_slice(), *t, d.clone()))
        .collect();
    model_bin(&borrowed, aliases)
}

/// A scratch directory holding `model.bin` and `vocabulary.txt`; removed on drop.
struct ModelDir(PathBuf);

impl ModelDir {
    fn new(test: &str, model: &[u8]) -> Self {
        let dir = std::env::temp_dir().join(format!("steno-convert-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        std::fs::write(dir.join("model.bin"), model).expect("write model.bin");
        let vocabulary = "!\n\"\nĠthe\nĊ\n<|endoftext|>\n<|startoftranscript|>\n";
        std::fs::write(dir.join("vocabulary.txt"), vocabulary).expect("write vocabulary");
        Self(dir)
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .expect("list scratch dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect()
    }
}

impl Drop for ModelDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A parsed ggml file, read the way `whisper_model_load` reads it.
struct Ggml {
    hparams: Vec<i32>,
    n_mel: i32,
    n_fft: i32,
    filters: Vec<f32>,
    vocab: Vec<Vec<u8>>,
    /// name -> (ne, ttype, values as f32)
    tensors: BTreeMap<String, (Vec<usize>, i32, Vec<f32>)>,
}

/// Splits the next `n` bytes off `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    head
}

fn take_i32(rest: &mut &[u8]) -> i32 {
    i32::from_le_bytes(take(rest, 4).try_into().expect("4 bytes"))
}

fn read_ggml(path: &Path) -> Ggml {
    let bytes = std::fs::read(path).expect("read ggml");
    let rest = &mut bytes.as_slice();
    assert_eq!(take(rest, 4), 0x6767_6d6cu32.to_le_bytes());
    let hparams: Vec<i32> = (0..11).map(|_| take_i32(rest)).collect();
    let n_mel = take_i32(rest);
    let n_fft = take_i32(rest);
    let filters = (0..n_mel * n_fft)
        .map(|_| f32::from_le_bytes(take(rest, 4).try_into().expect("4 bytes")))
        .collect();
    let n_vocab = take_i32(rest);
    let vocab = (0..n_vocab)
        .map(|_| {
            let len = take_i32(rest) as usize;
            take(rest, len).to_vec()
        })
        .collect();
    let mut tensors = BTreeMap::new();
    while !rest.is_empty() {
        let n_dims = take_i32(rest) as usize;
        let name_len = take_i32(rest) as usize;
        let ttype = take_i32(rest);
        let ne: Vec<usize> = (0..n_dims).map(|_| take_i32(rest) as usize).collect();
        let name = String::from_utf8(take(rest, name_len).to_vec()).expect("utf-8 name");
        let count: usize = ne.iter().product();
        let data = match ttype {
            0 => take(rest, count * 4)
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect(),
            1 => take(rest, count * 2)
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => panic!("unexpected ttype {other}"),
        };
        assert!(
            tensors.insert(name.clone(), (ne, ttype, data)).is_none(),
            "{name} twice"
        );
    }
    Ggml {
        hparams,
        n_mel,
        n_fft,
        filters,
        vocab,
        tensors,
    }
}

/// (name, ne, ttype) of every tensor whisper.cpp 1.8.3's `whisper_model_load` creates, with
/// `wtype` = f16 (ftype 1), written out from that function independently of the converter.
fn whisper_cpp_tensors() -> BTreeMap<String, (Vec<usize>, i32)> {
    let (f32, f16) = (0, 1);
    let mut t = BTreeMap::new();
    let mut add = |name: String, ne: Vec<usize>, ttype: i32| {
        t.insert(name, (ne, ttype));
    };
    add(
        "encoder.positional_embedding".into(),
        vec![N, AUDIO_CTX],
        f32,
    );
    add("encoder.conv1.weight".into(), vec![3, N_MELS, N], f16);
    add("encoder.conv1.bias".into(), vec![1, N], f32);
    add("encoder.conv2.weight".into(), vec![3, N, N], f16);
    add("encoder.conv2.bias".into(), vec![1, N], f32);
    add("encoder.ln_post.weight".into(), vec![N], f32);
    add("encoder.ln_post.bias".into(), vec![N], f32);
    let block = |prefix: &str, add: &mut dyn FnMut(String, Vec<usize>, i32), attn: &str| {
        add(format!("{prefix}.{attn}_ln.weight"), vec![N], f32);
        add(format!("{prefix}.{attn}_ln.bias"), vec![N], f32);
        add(format!("{prefix}.{attn}.query.weight"), vec![N, N], f16);
        add(format!("{prefix}.{attn}.query.bias"), vec![N], f32);
        add(format!("{prefix}.{attn}.key.weight"), vec![N, N], f16);
        add(format!("{prefix}.{attn}.value.weight"), vec![N, N], f16);
        add(format!("{prefix}.{attn}.value.bias"), vec![N], f32);
        add(format!("{prefix}.{attn}.out.weight"), vec![N, N], f16);
        add(format!("{prefix}.{attn}.out.bias"), vec![N], f32);
    };
    let mlp = |prefix: &str, add: &mut dyn FnMut(String, Vec<usize>, i32)| {
        add(format!("{prefix}.mlp_ln.weight"), vec![N], f32);
        add(format!("{prefix}.mlp_ln.bias"), vec![N], f32);
        add(format!("{prefix}.mlp.0.weight"), vec![N, 4 * N], f16);
        add(format!("{prefix}.mlp.0.bias"), vec![4 * N], f32);
        add(format!("{prefix}.mlp.2.weight"), vec![4 * N, N], f16);
        add(format!("{prefix}.mlp.2.bias"), vec![N], f32);
    };
    for i in 0..ENC_LAYERS {
        let prefix = format!("encoder.blocks.{i}");
        block(&prefix, &mut add, "attn");
        mlp(&prefix, &mut add);
    }
    add(
        "decoder.positional_embedding".into(),
        vec![N, TEXT_CTX],
        f32,
    );
    add(
        "decoder.token_embedding.weight".into(),
        vec![N, N_VOCAB],
        f16,
    );
    add("decoder.ln.weight".into(), vec![N], f32);
    add("decoder.ln.bias".into(), vec![N], f32);
    for i in 0..DEC_LAYERS {
        let prefix = format!("decoder.blocks.{i}");
        block(&prefix, &mut add, "attn");
        block(&prefix, &mut add, "cross_attn");
        mlp(&prefix, &mut add);
    }
    t
}

#[test]
fn converts_synthetic_model_to_whisper_cpp_layout() -> anyhow::Result<()> {
    let dir = ModelDir::new("layout", &serialize(&synthetic_vars(), &[PROJECTION_ALIAS]));
    let out = dir.0.join("ggml.bin");
    convert(&dir.0, &out)?;
    let g = read_ggml(&out);
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());

    assert_eq!(g.hparams, [10, 6, 8, 2, 2, 5, 8, 2, 1, 4, 1]);
    assert_eq!((g.n_mel, g.n_fft), (4, 201));
    assert_eq!(g.filters.len(), 4 * 201);
    assert_eq!(
        g.vocab,
        [
            b"!".to_vec(),
            b"\"".to_vec(),
            b" the".to_vec(),
            b"\n".to_vec(),
            b"<|endoftext|>".to_vec()
        ]
    );

    let layouts: BTreeMap<String, (Vec<usize>, i32)> = g
        .tensors
        .iter()
        .map(|(name, (ne, ttype, _))| (name.clone(), (ne.clone(), *ttype)))
        .collect();
    assert_eq!(layouts, whisper_cpp_tensors());
    assert_eq!(g.tensors.len(), 7 + 15 * ENC_LAYERS + 4 + 24 * DEC_LAYERS);

    let data = |name: &str| &g.tensors[name].2;
    // Fused self-attention rows are query, key, value in that order.
    let qkv = "encoder/layer_1/self_attention/linear_0";
    let nn = N * N;
    assert_eq!(
        data("encoder.blocks.1.attn.query.weight"),
        &values(&format!("{qkv}/weight"), 0..nn)
    );
    assert_eq!(
        data("encoder.blocks.1.attn.key.weight"),
        &values(&format!("{qkv}/weight"), nn..2 * nn)
    );
    assert_eq!(
        data("encoder.blocks.1.attn.value.weight"),
        &values(&format!("{qkv}/weight"), 2 * nn..3 * nn)
    );
    assert_eq!(
        data("encoder.blocks.1.attn.query.bias"),
        &values(&format!("{qkv}/bias"), 0..N)
    );
    assert_eq!(
        data("encoder.blocks.1.attn.value.bias"),
        &values(&format!("{qkv}/bias"), 2 * N..3 * N)
    );
    // Fused cross-attention rows are key, value.
    let kv = "decoder/layer_0/attention/linear_1";
    assert_eq!(
        data("decoder.blocks.0.cross_attn.key.weight"),
        &values(&format!("{kv}/weight"), 0..nn)
    );
    assert_eq!(
        data("decoder.blocks.0.cross_attn.value.weight"),
        &values(&format!("{kv}/weight"), nn..2 * nn)
    );
    assert_eq!(
        data("decoder.blocks.0.cross_attn.value.bias"),
        &values(&format!("{kv}/bias"), N..2 * N)
    );
    // Row-major CTranslate2 data is already in ggml element order.
    assert_eq!(
        data("encoder.conv1.weight"),
        &values("encoder/conv1/weight", 0..N * N_MELS * 3)
    );
    assert_eq!(
        data("encoder.conv2.bias"),
        &values("encoder/conv2/bias", 0..N)
    );
    assert_eq!(
        data("decoder.token_embedding.weight"),
        &values("decoder/embeddings/weight", 0..N_VOCAB * N)
    );
    assert_eq!(
        data("decoder.positional_embedding"),
        &values("decoder/position_encodings/encodings", 0..TEXT_CTX * N)
    );
    assert_eq!(
        data("decoder.ln.weight"),
        &values("decoder/layer_norm/gamma", 0..N)
    );
    assert_eq!(
        data("encoder.blocks.0.mlp.2.weight"),
        &values("encoder/layer_0/ffn/linear_1/weight", 0..4 * nn)
    );
    Ok(())
}

#[test]
fn failed_conversion_keeps_the_previous_output() {
    let bytes = serialize(&synthetic_vars(), &[PROJECTION_ALIAS]);
    let dir = ModelDir::new("truncated", &bytes[..bytes.len() - 100]);
    let out = dir.0.join("ggml.bin");
    std::fs::write(&out, b"previous model").expect("write old output");

    let err = convert(&dir.0, &out).err().map(|e| format!("{e:#}"));
    let err = err.expect("truncated model.bin must fail");
    assert!(
        err.contains("model.bin: unexpected end of file reading"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).expect("old output"), b"previous model");
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());

    // A failure detected after the temporary file was created must not leave it behind.
    let mut vars = synthetic_vars();
    let extra = var("decoder/unknown/weight", &[2, 2]);
    vars.push(extra);
    let dir = ModelDir::new("unknown-weight", &serialize(&vars, &[PROJECTION_ALIAS]));
    let err = convert(&dir.0, &dir.0.join("ggml.bin"))
        .err()
        .map(|e| format!("{e:#}"));
    assert!(
        err.as_deref().is_some_and(|e| e.ends_with(
            "1 weight variable(s) have no place in whisper.cpp's \
                                          model: decoder/unknown/weight"
        )),
        "{err:?}"
    );
    assert!(!dir.0.join("ggml.bin").exists());
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
}

#[test]
fn rejects_models_whisper_cpp_cannot_represent() {
    let convert_err =
        |test: &str, vars: &[(String, Vec<usize>, u8, Vec<u8>)], aliases: &[(&str, &str)]| {
            let dir = ModelDir::new(test, &serialize(vars, aliases));
            convert(&dir.0, &dir.0.join("ggml.bin"))
                .err()
                .map(|e| format!("{e:#}"))
        };

    // An output projection that is not the token embedding.
    let mut vars = synthetic_vars();
    vars.push(var("decoder/projection/weight", &[N_VOCAB, N]));
    let err = convert_err("untied", &vars, &[]);
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("'decoder/projection/weight' differs")),
        "{err:?}"
    );

    // A fused q/k/v of the wrong size.
    let mut vars = synthetic_vars();
    let slot = vars
        .iter_mut()
        .find(|v| v.0 == "encoder/layer_0/self_attention/linear_0/weight")
        .expect("present");
    *slot = var(
        "encoder/layer_0/self_attention/linear_0/weight",
        &[2 * N, N],
    );
    let err = convert_err("shape", &vars, &[PROJECTION_ALIAS]);
    assert!(
        err.as_deref().is_some_and(|e| e.ends_with(
            "'encoder/layer_0/self_attention/linear_0/weight' has shape [16, 8], expected \
             [24, 8] for whisper.cpp's 'encoder.blocks.0.attn.query.weight'"
        )),
        "{err:?}"
    );

    // A non-GELU activation.
    let mut vars = synthetic_vars();
    vars.retain(|v| v.0 != "decoder/activation");
    vars.push(scalar("decoder/activation", 1, 0));
    let err = convert_err("relu", &vars, &[PROJECTION_ALIAS]);
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("'decoder/activation' is 0")),
        "{err:?}"
    );
}
