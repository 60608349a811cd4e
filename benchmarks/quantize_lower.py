"""Quantizes a float16 ggml Whisper model to q4_0, q5_0 or q5_1, as ggml's reference
quantizers (`quantize_row_*_ref`) do: the measurement tool behind BENCHMARKS.md's lower bit
widths. steno ships q8_0 only (`cargo xtask quantize`, in Rust); these were measured and not
kept. Like the Rust quantizer, it converts the 2-D float16 tensors (the weight matrices) and
copies everything else.

    target/serve-venv/bin/python benchmarks/quantize_lower.py \
        models/ggml-tiny.en.bin /tmp/tiny.en-q4_0.bin q4_0

Needs numpy (the venv `cargo xtask test` makes for the server's clients has it).
"""
import struct
import sys

import numpy as np

# ggml_type of the tensors and the model's ftype (GGML_FTYPE_MOSTLY_*) per format.
TYPES = {"q4_0": (2, 2), "q5_0": (6, 8), "q5_1": (7, 9)}
# whisper.cpp reads the quantization format's version from the ftype's thousands.
QNT_VERSION = 2


def safe_inverse(d):
    return np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0)


def f16_bytes(values):
    return values.astype(np.float16).view(np.uint8).reshape(-1, 2)


def q4_0(x):
    """Blocks of 32: a float16 scale (the value of largest magnitude over -8), 16 bytes of
    4-bit values offset by 8 (element j in the low nibble of byte j, element j+16 high)."""
    x = x.reshape(-1, 32)
    signed_max = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]
    d = signed_max / -8
    q = np.minimum(15, (x * safe_inverse(d)[:, None] + 8.5).astype(np.int8)).astype(np.uint8)
    nibbles = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    return np.concatenate([f16_bytes(d), nibbles], axis=1).tobytes()


def q5(x, with_min):
    """q5_0 (scale from the largest magnitude over -16, values offset by 16) or q5_1 (scale
    and minimum): the low 4 bits as in q4_0, the fifth bits in a 32-bit word."""
    x = x.reshape(-1, 32)
    if with_min:
        lo, hi = x.min(axis=1), x.max(axis=1)
        d = (hi - lo) / 31
        q = ((x - lo[:, None]) * safe_inverse(d)[:, None] + 0.5).astype(np.uint8)
    else:
        signed_max = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]
        d = signed_max / -16
        q = np.minimum(31, (x * safe_inverse(d)[:, None] + 16.5).astype(np.int8))
        q = q.astype(np.uint8)
    nibbles = ((q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)).astype(np.uint8)
    fifth = ((q >> 4) & 1).astype(np.uint32)
    qh = (fifth[:, :16] << np.arange(16, dtype=np.uint32)).sum(axis=1) | (
        fifth[:, 16:] << np.arange(16, 32, dtype=np.uint32)
    ).sum(axis=1)
    parts = [f16_bytes(d)] + ([f16_bytes(lo)] if with_min else [])
    parts += [qh.astype("<u4").view(np.uint8).reshape(-1, 4), nibbles]
    return np.concatenate(parts, axis=1).tobytes()


def main():
    source, destination, kind = sys.argv[1:4]
    ttype, ftype = TYPES[kind]
    data = open(source, "rb").read()
    at = 0

    def take(n):
        nonlocal at
        at += n
        return data[at - n : at]

    def i32():
        return struct.unpack("<i", take(4))[0]

    out = bytearray(take(4))  # magic
    hparams = [i32() for _ in range(11)]
    if hparams[10] != 1:
        sys.exit(f"{source}: not a float16 model (ftype {hparams[10]})")
    hparams[10] = ftype + QNT_VERSION * 1000
    out += struct.pack("<11i", *hparams)
    # The mel filterbank and the vocabulary are copied as they are.
    start = at
    n_mel, n_fft = i32(), i32()
    take(n_mel * n_fft * 4)
    for _ in range(i32()):
        take(i32())
    out += data[start:at]
    converted = 0
    while at < len(data):
        n_dims, name_len, tensor_type = i32(), i32(), i32()
        dims = [i32() for _ in range(n_dims)]
        name = take(name_len)
        values = take(int(np.prod(dims)) * (4 if tensor_type == 0 else 2))
        if tensor_type == 1 and n_dims == 2:
            x = np.frombuffer(values, dtype="<f2").astype(np.float32)
            values = q4_0(x) if kind == "q4_0" else q5(x, kind == "q5_1")
            tensor_type = ttype
            converted += 1
        out += struct.pack("<3i", n_dims, name_len, tensor_type)
        out += struct.pack(f"<{n_dims}i", *dims) + name + values
    open(destination, "wb").write(out)
    print(f"{destination}: {converted} tensors to {kind}, {len(out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
