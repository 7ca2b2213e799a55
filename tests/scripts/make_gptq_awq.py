#!/usr/bin/env python3
"""Writes a GPTQ (classic, act-order) and an AWQ checkpoint layer as safetensors, with
this script's own f64 reference of c = a . dequant(W)^T + bias, independently of the
qkernels crate (standard library only).

Usage: make_gptq_awq.py OUT_DIR SEED
Writes OUT_DIR/{gptq,awq}.safetensors and OUT_DIR/{gptq,awq}_ref.json with
  {"m", "n", "k", "c": [f64 ...], "magnitude": [sum |a*w| + |bias| ...]} (row-major).

Formats (from their descriptions):
  GPTQ: qweight int32 [K/8, N], nibble i (lowest first) of word (r, n) = q[8r + i, n];
        qzeros int32 [G, N/8], nibble i of word (g, j) = z[g, 8j + i] - 1 (classic);
        scales f16 [G, N]; g_idx int32 [K].
  AWQ:  qweight int32 [K, N/8], nibble i of word (k, j) = q[k, 8j + ORDER[i]];
        qzeros int32 [G, N/8] likewise; scales f16 [G, N]; ORDER = 0, 2, 4, 6, 1, 3, 5, 7.
  w[k, n] = f16((q[k, n] - z[group(k), n]) * s[group(k), n]), group(k) = g_idx[k] or k / g.
"""
import json
import os
import random
import struct
import sys

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def f16(x):
    """Rounds x to the nearest f16 (ties to even) and returns it as a float."""
    return struct.unpack("<e", struct.pack("<e", x))[0]


def to_i32(u):
    return u - (1 << 32) if u >= (1 << 31) else u


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, offset, blobs = {}, 0, []
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def pack_f16(values):
    return struct.pack("<%de" % len(values), *values)


def pack_i32(values):
    return struct.pack("<%di" % len(values), *values)


def reference(a, w, bias, m, n, k):
    """a [m][k], w [k][n] as floats; f64 sums and magnitudes."""
    c, mag = [], []
    for i in range(m):
        for j in range(n):
            s = 0.0
            t = 0.0
            for kk in range(k):
                p = a[i][kk] * w[kk][j]
                s += p
                t += abs(p)
            b = bias[j] if bias is not None else 0.0
            c.append(s + b)
            mag.append(t + abs(b))
    return c, mag


def make(rng, kind, m, n, k, g):
    groups = k // g
    q = [[rng.randrange(16) for _ in range(n)] for _ in range(k)]
    z = [[rng.randrange(1, 16) for _ in range(n)] for _ in range(groups)]  # classic GPTQ cannot store 0
    s = [[f16(rng.choice([-1, 1]) * rng.uniform(0.002, 0.03)) for _ in range(n)] for _ in range(groups)]
    a = [[f16(rng.uniform(-2, 2)) for _ in range(k)] for _ in range(m)]
    bias = [f16(rng.uniform(-1, 1)) for _ in range(n)]
    if kind == "gptq":
        order = list(range(k))
        rng.shuffle(order)
        g_idx = [0] * k
        for pos, kk in enumerate(order):
            g_idx[kk] = pos // g
    else:
        g_idx = [kk // g for kk in range(k)]
    w = [[f16((q[kk][j] - z[g_idx[kk]][j]) * s[g_idx[kk]][j]) for j in range(n)] for kk in range(k)]
    tensors = [("a", "F16", [m, k], pack_f16([x for row in a for x in row])),
               ("bias", "F16", [n], pack_f16(bias)),
               ("scales", "F16", [groups, n], pack_f16([x for row in s for x in row]))]
    if kind == "gptq":
        qweight = []
        for r in range(k // 8):
            for j in range(n):
                word = 0
                for i in range(8):
                    word |= q[8 * r + i][j] << (4 * i)
                qweight.append(to_i32(word))
        qzeros = []
        for gg in range(groups):
            for jw in range(n // 8):
                word = 0
                for i in range(8):
                    word |= (z[gg][8 * jw + i] - 1) << (4 * i)
                qzeros.append(to_i32(word))
        tensors += [("qweight", "I32", [k // 8, n], pack_i32(qweight)),
                    ("qzeros", "I32", [groups, n // 8], pack_i32(qzeros)),
                    ("g_idx", "I32", [k], pack_i32(g_idx))]
    else:
        def awq_words(rows, value):
            out = []
            for r in range(rows):
                for jw in range(n // 8):
                    word = 0
                    for i, col in enumerate(AWQ_ORDER):
                        word |= value(r, 8 * jw + col) << (4 * i)
                    out.append(to_i32(word))
            return out
        tensors += [("qweight", "I32", [k, n // 8], pack_i32(awq_words(k, lambda r, c: q[r][c]))),
                    ("qzeros", "I32", [groups, n // 8], pack_i32(awq_words(groups, lambda r, c: z[r][c])))]
    c, mag = reference(a, w, bias, m, n, k)
    return tensors, {"m": m, "n": n, "k": k, "c": c, "magnitude": mag}


def main():
    out_dir, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    for kind, (m, n, k, g) in (("gptq", (5, 128, 256, 64)), ("awq", (3, 128, 256, 128))):
        tensors, ref = make(rng, kind, m, n, k, g)
        write_safetensors(os.path.join(out_dir, kind + ".safetensors"), tensors)
        with open(os.path.join(out_dir, kind + "_ref.json"), "w") as f:
            json.dump(ref, f)


if __name__ == "__main__":
    main()
