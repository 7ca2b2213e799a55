#!/usr/bin/env python3
"""Independent reference cases for `qk run`, written from the formats' descriptions
with the Python standard library only (no numpy, nothing from the Rust crate).

    qk_cases.py gemm_w8a8 OUT_DIR SEED [--fused]
    qk_cases.py dequant_int4 OUT_DIR SEED

Writes OUT_DIR/inputs.safetensors (the kernel's named inputs) and OUT_DIR/expected.json:
{"output": name, "shape": [...], "values": [f64 reference], "magnitude": [...]} where
`magnitude` is what the kernel's f32 rounding errors are relative to (0 where the
reference is exact up to the final f16 rounding).
"""
import json
import random
import struct
import sys


def write_safetensors(path, tensors):
    """tensors: name -> (dtype, shape, raw bytes). Format: u64 LE header length, JSON header, data."""
    header, data, offset = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + data)


def f16(x):
    """Round a float to the nearest binary16 (struct's 'e' rounds half to even)."""
    return struct.unpack("<e", struct.pack("<e", x))[0]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def gemm_w8a8(out_dir, rng, fused):
    m, n, k = 7, 40, 96
    w_q = [rng.randint(-128, 127) for _ in range(n * k)]
    w_scale = [f32(rng.uniform(1e-4, 2e-2)) for _ in range(n)]
    bias = [f16(rng.uniform(-2, 2)) for _ in range(n)]
    tensors = {
        "w_q": ("I8", [n, k], struct.pack("<%db" % (n * k), *w_q)),
        "w_scale": ("F32", [n], struct.pack("<%df" % n, *w_scale)),
        "bias": ("F16", [n], struct.pack("<%de" % n, *bias)),
    }
    if fused:
        # f16 activations; the per-token quantization follows the documented f32 steps:
        # absmax, inv = f32(127 / absmax), q = round_half_even(f32(x * inv)), scale = f32(absmax / 127).
        a = [f16(rng.uniform(-3, 3)) for _ in range(m * k)]
        tensors["a"] = ("F16", [m, k], struct.pack("<%de" % (m * k), *a))
        a_q, a_scale = [], []
        for i in range(m):
            row = a[i * k:(i + 1) * k]
            absmax = max(abs(v) for v in row)
            inv = f32(127.0 / absmax)
            a_q += [max(-127, min(127, round(f32(v * inv)))) for v in row]
            a_scale.append(f32(absmax / 127.0))
    else:
        a_q = [rng.randint(-128, 127) for _ in range(m * k)]
        a_scale = [f32(rng.uniform(1e-4, 2e-2)) for _ in range(m)]
        tensors["a_q"] = ("I8", [m, k], struct.pack("<%db" % (m * k), *a_q))
        tensors["a_scale"] = ("F32", [m], struct.pack("<%df" % m, *a_scale))
    values, magnitude = [], []
    for i in range(m):
        for j in range(n):
            acc = sum(a_q[i * k + t] * w_q[j * k + t] for t in range(k))
            scaled = acc * a_scale[i] * w_scale[j]
            values.append(scaled + bias[j])
            magnitude.append(abs(scaled) + abs(bias[j]))
    write_safetensors(f"{out_dir}/inputs.safetensors", tensors)
    return {"output": "c", "shape": [m, n], "values": values, "magnitude": magnitude}


def dequant_int4(out_dir, rng):
    n, k, g = 6, 192, 64
    groups = k // g
    q = [rng.randint(0, 15) for _ in range(n * k)]
    scales = [f16(rng.uniform(0.001, 0.1)) for _ in range(n * groups)]
    zeros = [rng.randint(0, 15) for _ in range(n * groups)]
    # Byte j of a row: column 2j in the low nibble, column 2j+1 in the high nibble.
    packed = bytes(q[r * k + 2 * j] | (q[r * k + 2 * j + 1] << 4) for r in range(n) for j in range(k // 2))
    write_safetensors(f"{out_dir}/inputs.safetensors", {
        "packed": ("U8", [n, k // 2], packed),
        "scales": ("F16", [n, groups], struct.pack("<%de" % (n * groups), *scales)),
        "zeros": ("U8", [n, groups], bytes(zeros)),
    })
    values = [(q[r * k + c] - zeros[r * groups + c // g]) * scales[r * groups + c // g] for r in range(n) for c in range(k)]
    return {"output": "out", "shape": [n, k], "values": values, "magnitude": [0.0] * len(values)}


def main():
    kind, out_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    if kind == "gemm_w8a8":
        expected = gemm_w8a8(out_dir, rng, "--fused" in sys.argv)
    elif kind == "dequant_int4":
        expected = dequant_int4(out_dir, rng)
    else:
        sys.exit(f"unknown case {kind}")
    with open(f"{out_dir}/expected.json", "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
