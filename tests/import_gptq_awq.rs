//! The weight-only formats on the host: the kernel layout's position maps and repack are
//! bijections, and the GPTQ / AWQ importers agree with an independent unpacking written
//! from the format descriptions (in this file, directly on the raw int32 words; it never
//! calls the packer). Malformed inputs give typed errors.

use std::collections::HashSet;

use half::f16;
use qkernels::formats::{
    import_awq, import_gptq, pack_weight_only, unpack_weight_only, AwqTensors, CheckpointLayout, GptqTensors,
    GptqVersion, RawTensor, WeightBits, WeightOnlyError, WeightOnlyShape, WeightOnlyWeights,
};
use qkernels::reference::f16_from_f64_rn;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use safetensors::Dtype;

fn rng(test: &str) -> StdRng {
    let seed = rand::rng().random::<u64>();
    println!("{test}: seed {seed}");
    StdRng::seed_from_u64(seed)
}

fn bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f16(v: &[f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

fn random_scales(rng: &mut StdRng, len: usize) -> Vec<f16> {
    (0..len).map(|_| f16::from_f32(rng.random_range(-0.05f32..0.05))).collect()
}

/// A balanced act-order g_idx: K rows shuffled into groups of `group`.
fn random_g_idx(rng: &mut StdRng, k: usize, group: usize) -> Vec<i32> {
    let mut order: Vec<usize> = (0..k).collect();
    order.shuffle(rng);
    let mut g = vec![0i32; k];
    for (pos, &kk) in order.iter().enumerate() {
        g[kk] = (pos / group) as i32;
    }
    g
}

#[test]
fn kernel_layout_positions_are_bijections() {
    for (n, k) in [(64usize, 16usize), (128, 48), (192, 80)] {
        let int4 = WeightOnlyShape::new(WeightBits::Int4, n, k, k).unwrap();
        let mut seen = HashSet::new();
        for nn in 0..n {
            for kk in 0..k {
                let (word, nibble) = int4.code_position(nn, kk).unwrap();
                assert!(word < n * k / 8 && nibble < 8);
                assert!(seen.insert((word, nibble)), "int4 ({nn}, {kk}) collides");
            }
        }
        assert_eq!(seen.len(), n * k);
        let int8 = WeightOnlyShape::new(WeightBits::Int8, n, k, k).unwrap();
        let mut seen = HashSet::new();
        for nn in 0..n {
            for kk in 0..k {
                let (word, byte) = int8.code_position(nn, kk).unwrap();
                assert!(word < n * k / 4 && byte < 4);
                assert!(seen.insert((word, byte)), "int8 ({nn}, {kk}) collides");
            }
        }
        let groups = 3;
        let grouped = WeightOnlyShape::new(WeightBits::Int4, n, groups * 32, 32).unwrap();
        let scales: HashSet<usize> =
            (0..groups).flat_map(|g| (0..n).map(move |nn| grouped.scale_position(g, nn).unwrap())).collect();
        assert_eq!(scales, (0..groups * n).collect());
        let zeros: HashSet<(usize, usize)> =
            (0..groups).flat_map(|g| (0..n).map(move |nn| grouped.zero_position(g, nn).unwrap())).collect();
        assert_eq!(zeros.len(), groups * n);
        assert!(zeros.iter().all(|&(w, nib)| w < groups * n / 8 && nib < 8));
    }
}

/// The position methods answer `None`, not a wrapped index, outside the shape, for a
/// shape the layout cannot hold, and for zero points of 8-bit weights.
#[test]
fn kernel_layout_positions_outside_the_shape_are_none() {
    let int4 = WeightOnlyShape::new(WeightBits::Int4, 128, 64, 32).unwrap();
    assert!(int4.code_position(127, 63).is_some());
    for (n, k) in [(128, 0), (0, 64), (usize::MAX, 0), (0, usize::MAX)] {
        assert_eq!(int4.code_position(n, k), None, "({n}, {k})");
    }
    assert!(int4.scale_position(1, 127).is_some() && int4.zero_position(1, 127).is_some());
    for (g, n) in [(2, 0), (0, 128), (usize::MAX, usize::MAX)] {
        assert_eq!(int4.scale_position(g, n), None, "({g}, {n})");
        assert_eq!(int4.zero_position(g, n), None, "({g}, {n})");
    }
    let int8 = WeightOnlyShape::new(WeightBits::Int8, 128, 64, 64).unwrap();
    assert!(int8.code_position(0, 0).is_some() && int8.scale_position(0, 0).is_some());
    assert_eq!(int8.zero_position(0, 0), None);
    // N = 96 is a valid shape that the layout (64-column blocks) cannot hold.
    let unpackable = WeightOnlyShape::new(WeightBits::Int4, 96, 64, 32).unwrap();
    assert_eq!(unpackable.code_position(0, 0), None);
    assert_eq!(unpackable.scale_position(0, 0), None);
}

#[test]
fn kernel_layout_matches_the_mma_fragment_of_its_lane() {
    // Element (n, k) must sit in the chunk of lane 4 * (n % 8) + (k % 8) / 2 of its unit,
    // in the word of its n8-tile pair, as the (k, k+1) pair of its b register.
    let (n_total, k_total) = (128, 32);
    let shape = WeightOnlyShape::new(WeightBits::Int4, n_total, k_total, k_total).unwrap();
    for n in 0..n_total {
        for k in 0..k_total {
            let (word, nibble) = shape.code_position(n, k).unwrap();
            let unit = (n / 64) * (k_total / 16) + k / 16;
            let lane = 4 * (n % 8) + (k % 8) / 2;
            let tile = (n % 64) / 8;
            assert_eq!(word, (unit * 32 + lane) * 4 + tile / 2);
            assert_eq!(nibble % 4, 2 * (tile % 2) + (k % 16) / 8);
            assert_eq!(nibble / 4, k % 2);
        }
    }
}

#[test]
fn repack_is_a_bijection() {
    let mut rng = rng("repack_bijection");
    for (bits, group, asym, act) in [
        (WeightBits::Int4, 32, false, false),
        (WeightBits::Int4, 64, true, false),
        (WeightBits::Int4, 128, true, true),
        (WeightBits::Int4, 32, false, true),
        (WeightBits::Int4, 256, true, false),
        (WeightBits::Int8, 64, false, false),
        (WeightBits::Int8, 256, false, false),
    ] {
        let (n, k) = (128, 256);
        let max = if bits == WeightBits::Int4 { 16u16 } else { 256 };
        let codes = (0..n * k).map(|_| rng.random_range(0..max) as u8).collect();
        let zeros = asym.then(|| (0..k / group * n).map(|_| rng.random_range(0..16u8)).collect());
        let g_idx = act.then(|| random_g_idx(&mut rng, k, group).into_iter().map(|v| v as u32).collect());
        let shape = WeightOnlyShape::new(bits, n, k, group).unwrap();
        let w = WeightOnlyWeights::new(shape, codes, random_scales(&mut rng, k / group * n), zeros, g_idx).unwrap();
        let packed = pack_weight_only(&w).unwrap();
        assert_eq!(packed.perm().is_some(), act);
        let back = unpack_weight_only(&packed);
        assert_eq!(back, w, "{bits:?} group {group} asym {asym} act {act}");
        assert_eq!(pack_weight_only(&back).unwrap(), packed);
        assert_eq!(back.dequantize(), w.dequantize());
    }
}

/// The dequantized weight straight from the description: f16((q − z) · s), exact product.
fn deq(q: u32, z: u32, s: f16) -> f16 {
    f16_from_f64_rn((f64::from(q) - f64::from(z)) * s.to_f64())
}

#[test]
fn gptq_import_matches_independent_unpacking() {
    let mut rng = rng("gptq_import");
    for (version, group, act) in [
        (GptqVersion::V1, 32, false),
        (GptqVersion::V2, 64, true),
        (GptqVersion::V1, 128, true),
        (GptqVersion::V2, 256, false),
    ] {
        let (k, n) = (256usize, 64usize);
        let groups = k / group;
        let qweight: Vec<i32> = (0..k / 8 * n).map(|_| rng.random::<i32>()).collect();
        let max_stored = if version == GptqVersion::V1 { 15 } else { 16 };
        let qzeros: Vec<i32> = (0..groups * n / 8)
            .map(|_| (0..8).fold(0u32, |w, i| w | (rng.random_range(0..max_stored) << (4 * i))) as i32)
            .collect();
        let scales = random_scales(&mut rng, groups * n);
        let g_idx = if act { random_g_idx(&mut rng, k, group) } else { (0..k).map(|kk| (kk / group) as i32).collect() };
        let (qw, qz, sc, gi) = (bytes_i32(&qweight), bytes_i32(&qzeros), bytes_f16(&scales), bytes_i32(&g_idx));
        let (s_qw, s_qz, s_sc, s_gi) = ([k / 8, n], [groups, n / 8], [groups, n], [k]);
        let tensors = GptqTensors {
            qweight: RawTensor { dtype: Dtype::I32, shape: &s_qw, data: &qw },
            qzeros: RawTensor { dtype: Dtype::I32, shape: &s_qz, data: &qz },
            scales: RawTensor { dtype: Dtype::F16, shape: &s_sc, data: &sc },
            g_idx: Some(RawTensor { dtype: Dtype::I32, shape: &s_gi, data: &gi }),
        };
        let imported = import_gptq(&tensors, version).unwrap();
        assert_eq!(imported.g_idx().is_some(), act);
        let got = imported.dequantize(); // [N, K]
        for kk in 0..k {
            let grp = g_idx[kk] as usize;
            for nn in 0..n {
                let q = (qweight[(kk / 8) * n + nn] as u32 >> (4 * (kk % 8))) & 0xf;
                let stored = (qzeros[grp * (n / 8) + nn / 8] as u32 >> (4 * (nn % 8))) & 0xf;
                let z = if version == GptqVersion::V1 { stored + 1 } else { stored };
                let want = deq(q, z, scales[grp * n + nn]);
                assert_eq!(got[nn * k + kk], want, "{version:?} w[k={kk}, n={nn}]");
            }
        }
    }
}

#[test]
fn awq_import_matches_independent_unpacking() {
    const ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];
    let mut rng = rng("awq_import");
    for group in [32usize, 64, 128] {
        let (k, n) = (256usize, 128usize);
        let groups = k / group;
        let qweight: Vec<i32> = (0..k * n / 8).map(|_| rng.random::<i32>()).collect();
        let qzeros: Vec<i32> = (0..groups * n / 8).map(|_| rng.random::<i32>()).collect();
        let scales = random_scales(&mut rng, groups * n);
        let (qw, qz, sc) = (bytes_i32(&qweight), bytes_i32(&qzeros), bytes_f16(&scales));
        let (s_qw, s_qz, s_sc) = ([k, n / 8], [groups, n / 8], [groups, n]);
        let tensors = AwqTensors {
            qweight: RawTensor { dtype: Dtype::I32, shape: &s_qw, data: &qw },
            qzeros: RawTensor { dtype: Dtype::I32, shape: &s_qz, data: &qz },
            scales: RawTensor { dtype: Dtype::F16, shape: &s_sc, data: &sc },
        };
        let got = import_awq(&tensors).unwrap().dequantize();
        for kk in 0..k {
            for j in 0..n / 8 {
                for (i, &col) in ORDER.iter().enumerate() {
                    let nn = 8 * j + col;
                    let q = (qweight[kk * (n / 8) + j] as u32 >> (4 * i)) & 0xf;
                    let z = (qzeros[(kk / group) * (n / 8) + j] as u32 >> (4 * i)) & 0xf;
                    assert_eq!(got[nn * k + kk], deq(q, z, scales[(kk / group) * n + nn]), "w[k={kk}, n={nn}]");
                }
            }
        }
    }
}

#[test]
fn malformed_checkpoints_get_typed_errors() {
    let (k, n, groups) = (64usize, 64usize, 2usize);
    let qw = bytes_i32(&vec![0x7777_7777; k / 8 * n]);
    let qz = bytes_i32(&vec![0x7777_7777; groups * n / 8]);
    let sc = bytes_f16(&vec![f16::ONE; groups * n]);
    let (s_qw, s_qz, s_sc) = ([k / 8, n], [groups, n / 8], [groups, n]);
    let good = GptqTensors {
        qweight: RawTensor { dtype: Dtype::I32, shape: &s_qw, data: &qw },
        qzeros: RawTensor { dtype: Dtype::I32, shape: &s_qz, data: &qz },
        scales: RawTensor { dtype: Dtype::F16, shape: &s_sc, data: &sc },
        g_idx: None,
    };
    let sym = import_gptq(&good, GptqVersion::V1).unwrap(); // stored 7 + 1 = 8: symmetric
    assert!(sym.zeros().is_none());
    // Wrong dtype.
    let t = GptqTensors { scales: RawTensor { dtype: Dtype::F32, ..good.scales }, ..good };
    assert!(matches!(import_gptq(&t, GptqVersion::V2), Err(WeightOnlyError::Dtype { tensor: "scales", .. })));
    // Wrong shape (qzeros rows disagree with scales).
    let bad_qz = [groups + 1, n / 8];
    let qz_extra = bytes_i32(&vec![0; (groups + 1) * n / 8]);
    let t = GptqTensors { qzeros: RawTensor { dtype: Dtype::I32, shape: &bad_qz, data: &qz_extra }, ..good };
    assert!(matches!(import_gptq(&t, GptqVersion::V2), Err(WeightOnlyError::Shape { tensor: "qzeros", .. })));
    // K not divisible by the number of groups.
    let sc3 = bytes_f16(&vec![f16::ONE; 3 * n]);
    let qz3 = bytes_i32(&vec![0; 3 * n / 8]);
    let (s_sc3, s_qz3) = ([3, n], [3, n / 8]);
    let t = GptqTensors {
        scales: RawTensor { dtype: Dtype::F16, shape: &s_sc3, data: &sc3 },
        qzeros: RawTensor { dtype: Dtype::I32, shape: &s_qz3, data: &qz3 },
        ..good
    };
    assert!(matches!(import_gptq(&t, GptqVersion::V2), Err(WeightOnlyError::NotMultiple { arg: "K", .. })));
    // g_idx out of range, and unbalanced.
    let s_gi = [k];
    let gi = bytes_i32(&(0..k as i32).map(|kk| if kk == 5 { 2 } else { kk / 32 }).collect::<Vec<_>>());
    let t = GptqTensors { g_idx: Some(RawTensor { dtype: Dtype::I32, shape: &s_gi, data: &gi }), ..good };
    assert!(matches!(import_gptq(&t, GptqVersion::V2), Err(WeightOnlyError::GIdxOutOfRange { index: 5, .. })));
    let gi = bytes_i32(&(0..k as i32).map(|kk| if kk == 5 { 1 } else { kk / 32 }).collect::<Vec<_>>());
    let t = GptqTensors { g_idx: Some(RawTensor { dtype: Dtype::I32, shape: &s_gi, data: &gi }), ..good };
    assert!(matches!(import_gptq(&t, GptqVersion::V2), Err(WeightOnlyError::GIdxUnbalanced { group: 0, .. })));
    // v1 cannot store a zero point of 16 (stored nibble 15).
    let qz15 = bytes_i32(&vec![0x7777_777f; groups * n / 8]);
    let t = GptqTensors { qzeros: RawTensor { data: &qz15, ..good.qzeros }, ..good };
    assert_eq!(
        import_gptq(&t, GptqVersion::V1).err(),
        Some(WeightOnlyError::GptqV1ZeroOverflow { group: 0, column: 0 })
    );
    // The report names the group and column of the first bad nibble: word 1 of group 1,
    // nibble 3 (the words of a group row cover 8 columns each).
    let mut words = vec![0x7777_7777i32; groups * n / 8];
    words[n / 8 + 1] = 0x7777_f777;
    let qz_late = bytes_i32(&words);
    let t = GptqTensors { qzeros: RawTensor { data: &qz_late, ..good.qzeros }, ..good };
    assert_eq!(
        import_gptq(&t, GptqVersion::V1).err(),
        Some(WeightOnlyError::GptqV1ZeroOverflow { group: 1, column: 11 })
    );
    assert!(import_gptq(&t, GptqVersion::V2).is_ok(), "v2 stores zero points as they are: 15 is valid");
    // N not a multiple of 8.
    let s_qw12 = [k / 8, 12];
    let qw12 = bytes_i32(&vec![0; k / 8 * 12]);
    let t = GptqTensors { qweight: RawTensor { dtype: Dtype::I32, shape: &s_qw12, data: &qw12 }, ..good };
    assert!(matches!(
        import_gptq(&t, GptqVersion::V2),
        Err(WeightOnlyError::NotMultiple { arg: "N", multiple: 8, .. })
    ));
    // Byte length disagreeing with the shape.
    let t = GptqTensors { qweight: RawTensor { data: &qw[4..], ..good.qweight }, ..good };
    assert!(matches!(import_gptq(&t, GptqVersion::V2), Err(WeightOnlyError::LengthMismatch { .. })));
    // AWQ: scales width disagrees with 8 x qweight columns.
    let s_awq_qw = [k, n / 8];
    let awq_qw = bytes_i32(&vec![0; k * n / 8]);
    let s_sc_wide = [groups, n + 8];
    let sc_wide = bytes_f16(&vec![f16::ONE; groups * (n + 8)]);
    let t = AwqTensors {
        qweight: RawTensor { dtype: Dtype::I32, shape: &s_awq_qw, data: &awq_qw },
        qzeros: good.qzeros,
        scales: RawTensor { dtype: Dtype::F16, shape: &s_sc_wide, data: &sc_wide },
    };
    assert!(matches!(import_awq(&t), Err(WeightOnlyError::Shape { tensor: "scales", .. })));
    // A group size the kernels do not support (K = 64 in 4 groups of 16).
    let sc4 = bytes_f16(&vec![f16::ONE; 4 * n]);
    let qz4 = bytes_i32(&vec![0; 4 * n / 8]);
    let (s_sc4, s_qz4) = ([4, n], [4, n / 8]);
    let t = AwqTensors {
        qweight: RawTensor { dtype: Dtype::I32, shape: &s_awq_qw, data: &awq_qw },
        qzeros: RawTensor { dtype: Dtype::I32, shape: &s_qz4, data: &qz4 },
        scales: RawTensor { dtype: Dtype::F16, shape: &s_sc4, data: &sc4 },
    };
    assert!(matches!(import_awq(&t), Err(WeightOnlyError::UnsupportedGroup { group: 16, .. })));
    // Each layout read by the other's importer: the error names the layout the shapes
    // have. GPTQ's qweight is [K/8, N] = [8, 64]; AWQ's is [K, N/8] = [64, 8].
    let gptq_as_awq = AwqTensors { qweight: good.qweight, qzeros: good.qzeros, scales: good.scales };
    assert_eq!(
        import_awq(&gptq_as_awq).err(),
        Some(WeightOnlyError::OtherCheckpointLayout {
            expected: CheckpointLayout::Awq,
            found: CheckpointLayout::Gptq,
            qweight: s_qw.to_vec(),
            scales: s_sc.to_vec(),
        })
    );
    let awq_as_gptq = GptqTensors { qweight: RawTensor { dtype: Dtype::I32, shape: &s_awq_qw, data: &awq_qw }, ..good };
    let err = import_gptq(&awq_as_gptq, GptqVersion::V2).unwrap_err();
    assert_eq!(
        err,
        WeightOnlyError::OtherCheckpointLayout {
            expected: CheckpointLayout::Gptq,
            found: CheckpointLayout::Awq,
            qweight: s_awq_qw.to_vec(),
            scales: s_sc.to_vec(),
        }
    );
    assert!(err.to_string().contains("import_awq"), "the message names the importer to call: {err}");
    // Shapes that fit both layouts (N = 0) or neither say nothing about the layout.
    assert_eq!(CheckpointLayout::of_shapes(0, 0), None);
    assert_eq!(CheckpointLayout::of_shapes(n, n), Some(CheckpointLayout::Gptq));
    assert_eq!(CheckpointLayout::of_shapes(n / 8, n), Some(CheckpointLayout::Awq));
    assert_eq!(CheckpointLayout::of_shapes(n / 8 + 1, n), None);
}

/// `qk run gemm_w4a16` (and `qk repack` + `--format packed`) on GPTQ and AWQ files written
/// by an independent Python script, against that script's own f64 reference, with the
/// tolerance of tests/gemm_w4a16.rs: 1 ulp_f16(ref) + K·2⁻²³·(Σ|a·w| + |bias|).
#[test]
fn qk_run_matches_an_independent_script_on_gptq_and_awq_files() {
    let dir = tempfile::tempdir().unwrap();
    let seed = rand::rng().random::<u32>().to_string();
    println!("script seed {seed}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/make_gptq_awq.py");
    let status = std::process::Command::new("python3").arg(script).arg(dir.path()).arg(&seed).status().unwrap();
    assert!(status.success(), "python3 {script} failed");
    let qk = env!("CARGO_BIN_EXE_qk");
    // `qk ARGS --inputs INPUT --out ...`, which must fail with one error line: its stderr.
    let qk_refuses = |args: &[&str], input: &std::path::Path| {
        let out = std::process::Command::new(qk)
            .args(args)
            .arg("--inputs")
            .arg(input)
            .arg("--out")
            .arg(dir.path().join("never.safetensors"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "qk {args:?} on {} succeeded", input.display());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        stderr
    };
    for (kind, format) in [("gptq", "gptq"), ("awq", "awq")] {
        let inputs = dir.path().join(format!("{kind}.safetensors"));
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{kind}_ref.json"))).unwrap())
                .unwrap();
        let k = reference["k"].as_u64().unwrap() as usize;
        let want: Vec<f64> = reference["c"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let mag: Vec<f64> = reference["magnitude"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // `qk run` on `file` in `format`, checked against the script's reference.
        let run_and_check = |format: &str, file: &std::path::Path, what: &str| {
            let out = dir.path().join(format!("{kind}_{format}_c.safetensors"));
            let run = std::process::Command::new(qk)
                .args(["run", "gemm_w4a16", "--format", format, "--backend", "sim", "--report", "--inputs"])
                .arg(file)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            assert!(run.status.success(), "{what}: qk run failed: {}", String::from_utf8_lossy(&run.stderr));
            assert!(
                String::from_utf8_lossy(&run.stdout).contains("qk_gemm_w4a16_"),
                "--report names the configuration"
            );
            let bytes = std::fs::read(&out).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let c = st.tensor("c").unwrap();
            assert_eq!(c.dtype(), Dtype::F16);
            let got: Vec<f64> =
                c.data().chunks_exact(2).map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64()).collect();
            assert_eq!(got.len(), want.len());
            for i in 0..got.len() {
                let tol = qkernels::reference::weight_only_tolerance(want[i], mag[i], k);
                assert!(
                    (got[i] - want[i]).abs() <= tol,
                    "{what}: c[{i}] = {}, script reference {} (tol {tol:e})",
                    got[i],
                    want[i]
                );
            }
        };
        run_and_check(format, &inputs, kind);
        // Read as the other format, the shapes disagree, and the error says which layout
        // the tensors have.
        let (other, hint) =
            if kind == "gptq" { ("awq", "--format gptq or gptq_v2)") } else { ("gptq", "--format awq)") };
        let stderr = qk_refuses(&["run", "gemm_w4a16", "--format", other, "--backend", "sim"], &inputs);
        assert!(stderr.contains(hint), "{kind} read as {other}: {stderr}");
        let packed = dir.path().join(format!("{kind}_packed.safetensors"));
        let repack = std::process::Command::new(qk)
            .args(["repack", "--format", format, "--inputs"])
            .arg(&inputs)
            .arg("--out")
            .arg(&packed)
            .output()
            .unwrap();
        assert!(repack.status.success(), "qk repack failed: {}", String::from_utf8_lossy(&repack.stderr));
        let packed_bytes = std::fs::read(&packed).unwrap();
        let st_packed = safetensors::SafeTensors::deserialize(&packed_bytes).unwrap();
        assert!(st_packed.tensor("w_packed").is_ok() && st_packed.tensor("scales_packed").is_ok());
        assert_eq!(st_packed.tensor("perm").is_ok(), kind == "gptq", "act-order keeps its permutation");
        // The repacked file carries the input's `a` and `bias`, so it runs as it is (a
        // dropped bias would put every output a bias away from the reference).
        assert!(st_packed.tensor("a").is_ok() && st_packed.tensor("bias").is_ok(), "repack carries a and bias");
        run_and_check("packed", &packed, &format!("{kind} repacked"));
        // A bias that does not fit the weights is refused at repack time (one error line),
        // not carried into a file `qk run` would then refuse.
        let inputs_bytes = std::fs::read(&inputs).unwrap();
        let st_in = safetensors::SafeTensors::deserialize(&inputs_bytes).unwrap();
        let short_bias = vec![0u8; 2 * 7];
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
            st_in.tensors().into_iter().filter(|(name, _)| name != "bias").collect();
        views.push(("bias".into(), safetensors::tensor::TensorView::new(Dtype::F16, vec![7], &short_bias).unwrap()));
        let bad = dir.path().join(format!("{kind}_short_bias.safetensors"));
        safetensors::serialize_to_file(views, None, &bad).unwrap();
        let stderr = qk_refuses(&["repack", "--format", format], &bad);
        assert!(stderr.contains("tensor `bias` has shape [7]"), "{stderr}");
    }
}

/// Shapes whose N·K overflows (or exceeds the largest allocation) are rejected when the
/// shape is made, so no constructor ever compares a length against a wrapped product:
/// N = 64, K = 2^58 used to wrap N·K to 0, accept empty codes and make
/// `pack_weight_only` index out of bounds (and `PackedWeights::from_parts` accept 0 words).
#[test]
fn weight_only_shapes_whose_size_overflows_are_rejected() {
    let k = 1usize << 58;
    let max = isize::MAX as usize;
    for bits in [WeightBits::Int4, WeightBits::Int8] {
        assert_eq!(
            WeightOnlyShape::new(bits, 64, k, k),
            Err(WeightOnlyError::ShapeOverflow { n: 64, k, max }),
            "{bits:?}"
        );
        // N·K = 2^63 fits in usize but not in one allocation.
        let k63 = 1usize << 62;
        assert_eq!(WeightOnlyShape::new(bits, 2, k63, k63), Err(WeightOnlyError::ShapeOverflow { n: 2, k: k63, max }));
        assert_eq!(WeightOnlyShape::new(bits, usize::MAX, usize::MAX, usize::MAX).map(|s| s.n()).ok(), None);
        // The boundary itself is a valid shape (its codes just cannot be given).
        let edge = WeightOnlyShape::new(bits, 1, max, max).unwrap();
        assert_eq!(edge.weights(), max);
        assert!(matches!(
            WeightOnlyWeights::new(edge, vec![], vec![f16::ONE], None, None),
            Err(WeightOnlyError::LengthMismatch { arg: "codes", expected, got: 0 }) if expected == max
        ));
    }
    // The word count of an arbitrary n x k reports the overflow.
    assert_eq!(WeightBits::Int4.packed_words(64, k), None);
    assert_eq!(WeightBits::Int8.packed_words(64, 16), Some(256));
    assert_eq!(WeightBits::Int4.packed_words(64, 16), Some(128));
    // A huge but representable kernel-layout shape: the word count is exact, so no
    // empty `words` passes.
    let k56 = 1usize << 56;
    let shape = WeightOnlyShape::new(WeightBits::Int4, 64, k56, k56).unwrap();
    assert_eq!(shape.to_string(), format!("4-bit, N = 64, K = {k56}, per-channel"));
    let grouped = WeightOnlyShape::new(WeightBits::Int8, 128, 256, 64).unwrap();
    assert_eq!(grouped.to_string(), "8-bit, N = 128, K = 256, group 64");
    assert_eq!(shape.packed_words(), 64 * k56 / 8);
    let p = qkernels::formats::PackedWeights::from_parts(shape, vec![], vec![f16::ONE; 64], None, None);
    assert!(matches!(
        p,
        Err(WeightOnlyError::LengthMismatch { arg: "words", expected, got: 0 }) if expected == 64 * k56 / 8
    ));
}

/// GPTQ and AWQ tensors whose shapes overflow when multiplied out (element count, byte
/// length, or K = 8 x rows) get typed errors: a 32-byte `qweight` of shape
/// [2^61 + 1, 8] used to import as a K = 8 layer (its byte length wrapped to 32), an N of
/// 2^63 + 8 overflowed a capacity, an AWQ [2^61 + 1, 1] indexed out of bounds, and a
/// zero-sized `qweight` with a huge other dimension overflowed 8 x that dimension.
#[test]
fn checkpoints_with_overflowing_shapes_get_typed_errors() {
    let tensor = |dtype, shape, data| RawTensor { dtype, shape, data };
    let overflow = |r: Result<WeightOnlyWeights, WeightOnlyError>, name: &str| match r {
        Err(WeightOnlyError::TensorOverflow { tensor, .. }) => assert_eq!(tensor, name),
        other => panic!("expected TensorOverflow of `{name}`, got {:?}", other.map(|w| w.shape())),
    };
    // GPTQ: (2^61 + 1)·8 elements of 4 bytes wrap to 32 bytes.
    let (qw, qz, sc) = ([(1usize << 61) + 1, 8], [1usize, 1], [1usize, 8]);
    let g = GptqTensors {
        qweight: tensor(Dtype::I32, &qw, &[0x88; 32]),
        qzeros: tensor(Dtype::I32, &qz, &[0x77; 4]),
        scales: tensor(Dtype::F16, &sc, &[0; 16]),
        g_idx: None,
    };
    for version in [GptqVersion::V1, GptqVersion::V2] {
        overflow(import_gptq(&g, version), "qweight");
    }
    // GPTQ: N = 2^63 + 8, whose byte length (4 N) overflows.
    let n = (1usize << 63) + 8;
    let (qw, qz, sc) = ([1, n], [1, n / 8], [1, n]);
    let g = GptqTensors {
        qweight: tensor(Dtype::I32, &qw, &[0; 32]),
        qzeros: tensor(Dtype::I32, &qz, &[0; 4]),
        scales: tensor(Dtype::F16, &sc, &[0; 16]),
        g_idx: None,
    };
    overflow(import_gptq(&g, GptqVersion::V2), "qweight");
    // GPTQ: a zero-sized qweight whose row count times 8 overflows: the zero N is reported.
    let (qw, qz, sc) = ([1usize << 62, 0], [1usize, 0], [1usize, 0]);
    let g = GptqTensors {
        qweight: tensor(Dtype::I32, &qw, &[]),
        qzeros: tensor(Dtype::I32, &qz, &[]),
        scales: tensor(Dtype::F16, &sc, &[]),
        g_idx: None,
    };
    assert_eq!(import_gptq(&g, GptqVersion::V2).unwrap_err(), WeightOnlyError::ZeroDimension { arg: "N" });
    // GPTQ: an overflowing g_idx.
    let (k, n) = (64usize, 64usize);
    let (qw_data, qz_data, sc_data) = (vec![0; k / 8 * n * 4], vec![0; n / 8 * 4], vec![0; n * 2]);
    let (qw, qz, sc, gi) = ([k / 8, n], [1, n / 8], [1, n], [usize::MAX, 2]);
    let g = GptqTensors {
        qweight: tensor(Dtype::I32, &qw, &qw_data),
        qzeros: tensor(Dtype::I32, &qz, &qz_data),
        scales: tensor(Dtype::F16, &sc, &sc_data),
        g_idx: Some(tensor(Dtype::I32, &gi, &[])),
    };
    assert!(matches!(import_gptq(&g, GptqVersion::V2), Err(WeightOnlyError::Shape { tensor: "g_idx", .. })));
    let gi = [usize::MAX];
    let g = GptqTensors { g_idx: Some(tensor(Dtype::I32, &gi, &[])), ..g };
    overflow(import_gptq(&g, GptqVersion::V2), "g_idx");
    // AWQ: (2^61 + 1) elements of 32 bits wrap to 4 bytes.
    let (qw, qz, sc) = ([(1usize << 61) + 1, 1], [1usize, 1], [1usize, 8]);
    let a = AwqTensors {
        qweight: tensor(Dtype::I32, &qw, &[0; 4]),
        qzeros: tensor(Dtype::I32, &qz, &[0; 4]),
        scales: tensor(Dtype::F16, &sc, &[0; 16]),
    };
    overflow(import_awq(&a), "qweight");
    // AWQ: a zero-sized qweight whose column count times 8 overflows: the zero K is reported.
    let (qw, qz, sc) = ([0, 1usize << 62], [0usize, 1], [0usize, 8]);
    let a = AwqTensors {
        qweight: tensor(Dtype::I32, &qw, &[]),
        qzeros: tensor(Dtype::I32, &qz, &[]),
        scales: tensor(Dtype::F16, &sc, &[]),
    };
    assert_eq!(import_awq(&a).unwrap_err(), WeightOnlyError::ZeroDimension { arg: "K" });
    // scales whose own element count overflows.
    let (qw, qz, sc) = ([8usize, 1], [1usize, 1], [usize::MAX, 8]);
    let a = AwqTensors {
        qweight: tensor(Dtype::I32, &qw, &[0; 32]),
        qzeros: tensor(Dtype::I32, &qz, &[0; 4]),
        scales: tensor(Dtype::F16, &sc, &[0; 16]),
    };
    overflow(import_awq(&a), "scales");
}

/// `group_of` and `zero_of` answer `None` out of range instead of indexing past the
/// end (they used to panic), with and without act-order and zero points.
#[test]
fn weight_only_accessors_return_none_out_of_range() {
    let (n, k, group) = (64usize, 64usize, 32usize);
    let g_idx: Vec<u32> = (0..k as u32).map(|kk| kk % 2).collect(); // act-order: 2 groups of 32
    let shape = WeightOnlyShape::new(WeightBits::Int4, n, k, group).unwrap();
    let zeros: Vec<u8> = (0..2 * n).map(|i| (i % 16) as u8).collect();
    let act = WeightOnlyWeights::new(shape, vec![0; n * k], vec![f16::ONE; 2 * n], Some(zeros), Some(g_idx)).unwrap();
    assert_eq!(act.zero_of(2, 0), None);
    assert_eq!(act.zero_of(0, n), None);
    assert_eq!(act.zero_of(usize::MAX, usize::MAX), None);
    assert_eq!(act.zero_of(1, 3), Some(((n + 3) % 16) as u8));
    assert_eq!(act.group_of(k), None);
    assert_eq!(act.group_of(usize::MAX), None);
    assert_eq!(act.group_of(5), Some(1));
    // Symmetric, contiguous groups: the implicit zero point, k / group.
    let sym = WeightOnlyWeights::new(shape, vec![0; n * k], vec![f16::ONE; 2 * n], None, None).unwrap();
    assert_eq!(sym.zero_of(1, n - 1), Some(WeightBits::Int4.symmetric_zero()));
    assert_eq!(sym.zero_of(2, 0), None);
    assert_eq!(sym.group_of(k - 1), Some(1));
    assert_eq!(sym.group_of(k), None);
}
