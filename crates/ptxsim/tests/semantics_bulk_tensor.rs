//! Tensor bulk copies, global -> shared (PTX ISA 9.7.9.25.5.1 "cp.async.bulk.tensor",
//! tile mode, mbarrier completion) and the tensor map that describes the tensor (5.5
//! "Tensor": tensor-map fields, bounding box, out-of-bounds fill, shared-memory
//! swizzle modes): the 128-byte encoding and its validation; boxes of rank 1..5 in
//! and out of bounds, with and without swizzle, compared byte for byte with a host
//! reference computed from the ISA's rules on random data; the instruction forms; the
//! bulk-copy counters; and the hazards of a misaligned destination, an undecodable
//! tensor map and a destination read before the copy's completion was observed.
//!
//! The kernels follow `semantics_bulk.rs`: thread 0 initializes the mbarrier, the
//! block synchronizes, thread 0 arms the mbarrier with the boxes' bytes (expect-tx)
//! and issues the copies, every thread waits for phase 0 with a `try_wait.parity`
//! loop, then the threads copy the destination region of shared memory, word by word,
//! to a global output (followed by the shared address of `buf`, so the host knows the
//! absolute addresses the swizzle depends on).

mod common;

use common::bulk::line_of;
use common::*;
use ptxsim::{
    BulkRule, Gpu, Hazard, HazardKind, KernelArg, LaunchReport, SimError, TensorMap, TensorMapError, TensorSwizzle,
    TENSOR_MAP_BYTES,
};

// ---------------------------------------------------------------------------------
// Host side: tensors, maps and the reference.
// ---------------------------------------------------------------------------------

/// A tensor map with no swizzle.
fn tmap(addr: u64, elem_bytes: u32, dims: &[u64], strides: &[u64], box_dims: &[u32]) -> TensorMap {
    TensorMap {
        global_address: addr,
        elem_bytes,
        dims: dims.to_vec(),
        strides_bytes: strides.to_vec(),
        box_dims: box_dims.to_vec(),
        swizzle: TensorSwizzle::None,
    }
}

/// Bytes spanned by the tensor in global memory (outermost stride times its extent),
/// rounded up to 16.
fn tensor_bytes(elem_bytes: u32, dims: &[u64], strides: &[u64]) -> usize {
    let n = match strides.last() {
        Some(&s) => s * dims[dims.len() - 1],
        None => dims[0] * elem_bytes as u64,
    };
    n.div_ceil(16) as usize * 16
}

/// Random bytes, none zero (so a zero in the result can only be the out-of-bounds fill).
fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| match (rng.next() >> 40) as u8 {
            0 => 0x5a,
            b => b,
        })
        .collect()
}

/// Allocates a tensor of the given shape filled with random bytes; returns its map
/// (no swizzle; `global_address` = the allocation) and the host copy of its bytes.
fn tensor(
    gpu: &mut Gpu,
    rng: &mut Rng,
    elem_bytes: u32,
    dims: &[u64],
    strides: &[u64],
    box_dims: &[u32],
) -> (TensorMap, Vec<u8>) {
    let n = tensor_bytes(elem_bytes, dims, strides);
    let host = random_bytes(rng, n);
    let a = gpu.alloc(n).unwrap();
    gpu.write(a, &host).unwrap();
    (tmap(a, elem_bytes, dims, strides, box_dims), host)
}

/// Uploads 128 tensor-map bytes; returns their global address.
fn up_map_bytes(gpu: &mut Gpu, bytes: &[u8; TENSOR_MAP_BYTES]) -> u64 {
    let a = gpu.alloc(TENSOR_MAP_BYTES).unwrap();
    gpu.write(a, bytes).unwrap();
    a
}

/// Encodes and uploads a tensor map.
fn up_map(gpu: &mut Gpu, m: &TensorMap) -> u64 {
    up_map_bytes(gpu, &m.encode().unwrap_or_else(|e| panic!("{m:?}: {e}")))
}

/// The XOR mask of the swizzle: bits 7.. of the shared address select which 16-byte
/// chunk bits (4..) flip.
fn swizzle_mask(s: TensorSwizzle) -> u64 {
    match s {
        TensorSwizzle::None => 0,
        TensorSwizzle::Bytes32 => 1,
        TensorSwizzle::Bytes64 => 3,
        TensorSwizzle::Bytes128 => 7,
    }
}

/// One tensor copy of a kernel.
#[derive(Clone)]
struct Cp {
    /// The map (its `global_address` is the tensor's device address).
    map: TensorMap,
    /// The tensor's bytes, from `global_address` on.
    host: Vec<u8>,
    /// Box start coordinates, innermost first.
    coords: Vec<i64>,
    /// Destination offset from `buf`.
    dst: u32,
}

impl Cp {
    fn new(map: &TensorMap, host: &[u8], coords: &[i64], dst: u32) -> Cp {
        Cp { map: map.clone(), host: host.to_vec(), coords: coords.to_vec(), dst }
    }
}

/// Writes what copy `cp` lands in shared memory into `region` (shared bytes
/// `buf_addr + region_off ..`), from the ISA's rules alone: box element
/// (i0, .., i_{n-1}) is tensor element (c_0 + i_0, ..), zero when any coordinate is
/// outside `0..dims[d]`; its bytes go to the box offset
/// `elem_bytes * (i0 + box0 * (i1 + box1 * (..)))` from the destination, whose
/// absolute shared address `a` is then swizzled to `a ^ (((a >> 7) & mask) << 4)`.
fn land(cp: &Cp, buf_addr: u64, region_off: u32, region: &mut [Option<u8>]) {
    let m = &cp.map;
    let eb = m.elem_bytes as u64;
    let rank = m.dims.len();
    let mask = swizzle_mask(m.swizzle);
    let n: u64 = m.box_dims.iter().map(|&b| b as u64).product();
    for e in 0..n {
        let mut rest = e;
        let mut inside = true;
        let mut goff = 0u64;
        for d in 0..rank {
            let bd = m.box_dims[d] as u64;
            let i = rest % bd;
            rest /= bd;
            let g = cp.coords[d] + i as i64;
            if g < 0 || g as u64 >= m.dims[d] {
                inside = false;
            } else {
                goff += g as u64 * if d == 0 { eb } else { m.strides_bytes[d - 1] };
            }
        }
        for k in 0..eb {
            let byte = if inside { cp.host[(goff + k) as usize] } else { 0 };
            let a = buf_addr + cp.dst as u64 + e * eb + k;
            let a = a ^ (((a >> 7) & mask) << 4);
            let at = a
                .checked_sub(buf_addr + region_off as u64)
                .filter(|&o| (o as usize) < region.len())
                .unwrap_or_else(|| panic!("test setup: byte lands at shared {a:#x}, outside the region"));
            assert!(region[at as usize].is_none(), "test setup: two copies land on shared {a:#x}");
            region[at as usize] = Some(byte);
        }
    }
}

/// The host's image of the kernel's output region.
fn reference(k: &Kernel, buf_addr: u64) -> Vec<u8> {
    let mut region = vec![None; k.region.1 as usize];
    for cp in &k.copies {
        land(cp, buf_addr, k.region.0, &mut region);
    }
    region
        .into_iter()
        .enumerate()
        .map(|(i, b)| b.unwrap_or_else(|| panic!("test setup: region byte {i} not written by any copy")))
        .collect()
}

/// Compares byte for byte, listing the first mismatches.
fn assert_bytes(got: &[u8], want: &[u8], ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}");
    let bad: Vec<String> = (0..got.len())
        .filter(|&i| got[i] != want[i])
        .take(8)
        .map(|i| format!("byte {i}: got {:#04x}, want {:#04x}", got[i], want[i]))
        .collect();
    let nbad = (0..got.len()).filter(|&i| got[i] != want[i]).count();
    assert!(bad.is_empty(), "{ctx}: {nbad} of {} bytes differ; first: {}", got.len(), bad.join("; "));
}

// ---------------------------------------------------------------------------------
// Device side: the kernel generator.
// ---------------------------------------------------------------------------------

/// How the copy instruction is spelled.
#[derive(Clone, Copy, Debug)]
struct Form {
    /// `shared::cluster` or `shared::cta`.
    space: &'static str,
    /// With the optional `.tile`.
    tile: bool,
    /// With `.L2::cache_hint` and a cache-policy operand.
    hint: bool,
    /// Coordinates as immediates (else registers).
    imm: bool,
}

const DEFAULT_FORM: Form = Form { space: "shared::cluster", tile: true, hint: false, imm: false };

/// A kernel `k(out, map_0, .., map_{n-1})`.
#[derive(Clone)]
struct Kernel {
    copies: Vec<Cp>,
    /// Size and alignment of `buf`.
    buf: (u32, u32),
    /// (offset from `buf`, bytes) of shared memory copied to the output.
    region: (u32, u32),
    form: Form,
    /// `expect_tx`, copies, `arrive` (else `arrive.expect_tx`, copies).
    split: bool,
    /// Thread 0 reads the last copy's destination before waiting (a bug).
    read_early: bool,
    threads: u32,
}

impl Kernel {
    /// One copy into `buf + dst`, `buf` sized and aligned as given; the region is the box.
    fn one(cp: Cp, buf: (u32, u32)) -> Kernel {
        let region = (cp.dst, cp.map.box_bytes() as u32);
        Kernel { copies: vec![cp], buf, region, form: DEFAULT_FORM, split: false, read_early: false, threads: 64 }
    }

    /// Sum of the boxes' bytes: the transaction count.
    fn tx(&self) -> u64 {
        self.copies.iter().map(|c| c.map.box_bytes()).sum()
    }

    /// The copy instruction for copy `j` (destination `%r4`, map `%rd3`, mbarrier `%r3`).
    fn copy_inst(&self, j: usize) -> String {
        let cp = &self.copies[j];
        let f = self.form;
        let coords: Vec<String> = if f.imm {
            cp.coords.iter().map(|c| c.to_string()).collect()
        } else {
            (0..cp.coords.len()).map(|d| format!("%r{}", 10 + d)).collect()
        };
        format!(
            "cp.async.bulk.tensor.{}d.{}.global{}.mbarrier::complete_tx::bytes{} [%r4], [%rd3, {{{}}}], [%r3]{};",
            cp.coords.len(),
            f.space,
            if f.tile { ".tile" } else { "" },
            if f.hint { ".L2::cache_hint" } else { "" },
            coords.join(", "),
            if f.hint { ", %rd9" } else { "" },
        )
    }

    fn ptx(&self) -> String {
        let mut s = String::new();
        let mut l = |x: &str| {
            s.push_str(x);
            s.push('\n');
        };
        l(".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k(\n    .param .u64 p0");
        for j in 0..self.copies.len() {
            l(&format!("    , .param .u64 p{}", j + 1));
        }
        l(")\n{\n.reg .b64 %rd<16>;\n.reg .b32 %r<40>;\n.reg .pred %p<8>;");
        l(&format!(".shared .align {} .b8 buf[{}];", self.buf.1, self.buf.0));
        l(".shared .align 8 .b64 bar;");
        l("ld.param.u64 %rd2, [p0];\nmov.u32 %r1, %tid.x;\nmov.u32 %r2, buf;\nmov.u32 %r3, bar;");
        l("setp.ne.u32 %p2, %r1, 0;\n@%p2 bra $SYNC;\nmbarrier.init.shared::cta.b64 [bar], 1;\n$SYNC:\nbar.sync 0;");
        l("@%p2 bra $WAIT;");
        if self.split {
            l(&format!("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [bar], {};", self.tx()));
        } else {
            l(&format!("mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], {};", self.tx()));
        }
        if self.form.hint {
            l("mov.u64 %rd9, 0;");
        }
        for (j, cp) in self.copies.iter().enumerate() {
            l(&format!("ld.param.u64 %rd3, [p{}];", j + 1));
            l(&format!("add.u32 %r4, %r2, {};", cp.dst));
            if !self.form.imm {
                for (d, c) in cp.coords.iter().enumerate() {
                    l(&format!("mov.b32 %r{}, {c};", 10 + d));
                }
            }
            l(&self.copy_inst(j));
        }
        if self.split {
            l("mbarrier.arrive.shared::cta.b64 _, [bar];");
        }
        if self.read_early {
            l("ld.shared.u32 %r20, [%r4];");
        }
        l("$WAIT:\nmbarrier.try_wait.parity.shared::cta.b64 %p1, [bar], 0;\n@!%p1 bra $WAIT;");
        l("mov.u32 %r5, %r1;\n$COPY:");
        l(&format!("setp.ge.u32 %p3, %r5, {};\n@%p3 bra $END;", self.region.1 / 4));
        l("shl.b32 %r6, %r5, 2;");
        l(&format!("add.u32 %r7, %r6, {};", self.region.0));
        l("add.u32 %r7, %r2, %r7;\nld.shared.u32 %r8, [%r7];");
        l("cvt.u64.u32 %rd4, %r6;\nadd.s64 %rd5, %rd2, %rd4;\nst.global.u32 [%rd5], %r8;");
        l(&format!("add.u32 %r5, %r5, {};\nbra $COPY;", self.threads));
        l("$END:\n@%p2 bra $DONE;");
        l(&format!("st.global.u32 [%rd2+{}], %r2;", self.region.1));
        l("$DONE:\nret;\n}");
        s
    }
}

/// The outcome of one launch.
struct Run {
    result: Result<LaunchReport, SimError>,
    /// The output region (poison where the kernel did not write).
    region: Vec<u8>,
    /// The shared address of `buf` the kernel reported.
    buf_addr: u64,
    text: String,
}

const POISON: u8 = 0xa5;

/// Launches `k` on `gpu` with the tensor maps at `maps` (one per copy).
fn launch(gpu: &mut Gpu, k: &Kernel, maps: &[u64]) -> Run {
    let text = k.ptx();
    let m = module(&text);
    let n = k.region.1 as usize;
    let out = gpu.alloc(n + 4).unwrap();
    gpu.write(out, &vec![POISON; n + 4]).unwrap();
    let mut args = vec![KernelArg::U64(out)];
    args.extend(maps.iter().map(|&a| KernelArg::U64(a)));
    let result = gpu.launch(&m, "k", [1, 1, 1], [k.threads, 1, 1], 0, &args);
    let mut b = vec![0u8; n + 4];
    gpu.read(out, &mut b).unwrap();
    let buf_addr = u32::from_le_bytes(b[n..].try_into().unwrap()) as u64;
    b.truncate(n);
    Run { result, region: b, buf_addr, text }
}

/// Uploads the copies' maps, runs `k`, compares the region with the reference and
/// checks the counters; returns the report.
fn check(gpu: &mut Gpu, k: &Kernel, ctx: &str) -> LaunchReport {
    let maps: Vec<u64> = k.copies.iter().map(|c| up_map(gpu, &c.map)).collect();
    let run = launch(gpu, k, &maps);
    let report = run.result.unwrap_or_else(|e| panic!("{ctx}: {e}\n{}", run.text));
    assert_eq!(run.buf_addr % k.buf.1 as u64, 0, "{ctx}: buf at {:#x}", run.buf_addr);
    assert_bytes(&run.region, &reference(k, run.buf_addr), ctx);
    assert_eq!(report.bulk_copies, k.copies.len() as u64, "{ctx}: {report}");
    assert_eq!(report.bulk_bytes, k.tx(), "{ctx}: {report}");
    report
}

// ---------------------------------------------------------------------------------
// Tensor map encoding.
// ---------------------------------------------------------------------------------

/// A valid 2D map most validation cases start from.
fn valid2d() -> TensorMap {
    tmap(0x1000, 2, &[100, 40], &[256], &[64, 8])
}

// decode(encode(m)) == m for ranks 1..5, every element size and swizzle, and fields at
// their limits; box_bytes is the product of the box and the element size.
#[test]
fn tensor_map_round_trip() {
    let mut maps = vec![
        tmap(0x10, 1, &[16], &[], &[16]),
        tmap(0x7fff_ffff_fff0, 4, &[1 << 32], &[], &[256]),
        valid2d(),
        tmap(0x2_0000_0100, 8, &[6, 5, 4], &[48, 240], &[2, 3, 2]),
        tmap(0x4440, 1, &[40, 3, 4, 2], &[48, 144, 576], &[32, 2, 2, 1]),
        tmap(0x100, 2, &[8, 3, 9, 3, 2], &[16, 48, 1 << 20, (1 << 40) - 16], &[8, 3, 1, 2, 2]),
    ];
    for (s, inner) in [(TensorSwizzle::Bytes32, 16), (TensorSwizzle::Bytes64, 32), (TensorSwizzle::Bytes128, 64)] {
        let mut m = tmap(0xabc0, 2, &[200, 50], &[512], &[inner, 16]);
        m.swizzle = s;
        maps.push(m);
        // A narrower box than the span is fine too (a whole number of 128-byte rows:
        // the simulator's limit for swizzled boxes).
        let mut m = tmap(0xabc0, 4, &[200, 50, 3], &[1024, 65536], &[4, 8, 2]);
        m.swizzle = s;
        maps.push(m);
    }
    for m in &maps {
        let bytes = m.encode().unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(TensorMap::decode(&bytes).as_ref(), Ok(m), "{m:?}");
        let want: u64 = m.box_dims.iter().map(|&b| b as u64).product::<u64>() * m.elem_bytes as u64;
        assert_eq!(m.box_bytes(), want, "{m:?}");
    }
    // Different maps encode differently.
    let enc: Vec<_> = maps.iter().map(|m| m.encode().unwrap()).collect();
    for i in 0..enc.len() {
        for j in i + 1..enc.len() {
            assert_ne!(enc[i], enc[j], "{:?} and {:?}", maps[i], maps[j]);
        }
    }
    // 128 zero bytes are not a tensor map.
    assert_eq!(TensorMap::decode(&[0u8; TENSOR_MAP_BYTES]), Err(TensorMapError::BadMagic));
    // Nor are too few bytes, or a valid encoding with an unknown swizzle code.
    assert_eq!(TensorMap::decode(&enc[0][..64]), Err(TensorMapError::EncodingSize(64)));
    let mut bad_swizzle = enc[0];
    bad_swizzle[6] = 9; // byte 6 holds the swizzle code (tensor_map.rs, mod at)
    assert_eq!(TensorMap::decode(&bad_swizzle), Err(TensorMapError::SwizzleCode(9)));
}

// Each validation rule rejects its map (one mutation per assert); values just inside
// the limits are accepted.
#[test]
fn tensor_map_validation() {
    // Each rejection names its rule: the error is the variant `rule` accepts.
    let rejects = |f: &dyn Fn(&mut TensorMap), what: &str, rule: fn(&TensorMapError) -> bool| {
        let mut m = valid2d();
        f(&mut m);
        match m.encode() {
            Err(e) => assert!(rule(&e), "{what}: rejected for another rule: {e:?}"),
            Ok(_) => panic!("{what}: accepted {m:?}"),
        }
    };
    let accepts = |f: &dyn Fn(&mut TensorMap), what: &str| {
        let mut m = valid2d();
        f(&mut m);
        let b = m.encode().unwrap_or_else(|e| panic!("{what}: rejected {m:?}: {e}"));
        assert_eq!(TensorMap::decode(&b), Ok(m), "{what}");
    };
    assert!(valid2d().encode().is_ok());
    // Rank.
    rejects(
        &|m| {
            m.dims.clear();
            m.strides_bytes.clear();
            m.box_dims.clear();
        },
        "rank 0",
        |e| matches!(e, TensorMapError::Rank(0)),
    );
    rejects(
        &|m| {
            m.dims = vec![16, 2, 2, 2, 2, 2];
            m.strides_bytes = vec![32, 64, 128, 256, 512];
            m.box_dims = vec![8, 1, 1, 1, 1, 1];
        },
        "rank 6",
        |e| matches!(e, TensorMapError::Rank(6)),
    );
    // Inconsistent lengths.
    rejects(&|m| m.box_dims = vec![64], "box_dims shorter than dims", |e| {
        matches!(e, TensorMapError::FieldCounts { box_dims: 1, .. })
    });
    rejects(&|m| m.box_dims = vec![64, 8, 1], "box_dims longer than dims", |e| {
        matches!(e, TensorMapError::FieldCounts { box_dims: 3, .. })
    });
    rejects(&|m| m.strides_bytes = vec![], "no stride for rank 2", |e| {
        matches!(e, TensorMapError::FieldCounts { strides: 0, .. })
    });
    rejects(&|m| m.strides_bytes = vec![256, 4096], "two strides for rank 2", |e| {
        matches!(e, TensorMapError::FieldCounts { strides: 2, .. })
    });
    // Element size.
    rejects(&|m| m.elem_bytes = 3, "elem_bytes 3", |e| matches!(e, TensorMapError::ElemBytes(3)));
    rejects(&|m| m.elem_bytes = 0, "elem_bytes 0", |e| matches!(e, TensorMapError::ElemBytes(0)));
    rejects(&|m| m.elem_bytes = 16, "elem_bytes 16", |e| matches!(e, TensorMapError::ElemBytes(16)));
    // Global address alignment.
    rejects(&|m| m.global_address = 0x1008, "address 8 mod 16", |e| matches!(e, TensorMapError::Misaligned(0x1008)));
    rejects(&|m| m.global_address = 0x1001, "address 1 mod 16", |e| matches!(e, TensorMapError::Misaligned(0x1001)));
    // Dimensions.
    rejects(&|m| m.dims[1] = 0, "a dim of 0", |e| matches!(e, TensorMapError::Dimension { dim: 1, elems: 0 }));
    rejects(&|m| m.dims[1] = (1 << 32) + 1, "a dim above 2^32", |e| {
        matches!(e, TensorMapError::Dimension { dim: 1, .. })
    });
    accepts(&|m| m.dims[1] = 1 << 32, "a dim of 2^32");
    // Strides.
    rejects(&|m| m.strides_bytes[0] = 264, "stride 8 mod 16", |e| {
        matches!(e, TensorMapError::Stride { dim: 1, bytes: 264 })
    });
    rejects(&|m| m.strides_bytes[0] = 1 << 40, "stride 2^40", |e| matches!(e, TensorMapError::Stride { dim: 1, .. }));
    accepts(&|m| m.strides_bytes[0] = (1 << 40) - 16, "stride 2^40 - 16");
    // Box dimensions.
    rejects(&|m| m.box_dims[1] = 0, "a box dim of 0", |e| {
        matches!(e, TensorMapError::BoxDimension { dim: 1, elems: 0 })
    });
    let tall = |m: &mut TensorMap, b: u32| {
        m.dims[1] = 300;
        m.box_dims[1] = b;
    };
    rejects(&|m| tall(m, 257), "a box dim of 257", |e| {
        matches!(e, TensorMapError::BoxDimension { dim: 1, elems: 257 })
    });
    accepts(&|m| tall(m, 256), "a box dim of 256");
    // A box no larger than its tensor (boxes taller than the tensor fault on hardware).
    rejects(
        &|m| {
            m.dims[1] = 7;
            m.box_dims[1] = 8;
        },
        "a box of 8 rows over 7",
        |e| matches!(e, TensorMapError::BoxExceedsTensor { dim: 1, box_elems: 8, tensor_elems: 7 }),
    );
    accepts(
        &|m| {
            m.dims[1] = 8;
            m.box_dims[1] = 8;
        },
        "a box of 8 rows over 8",
    );
    rejects(&|m| m.box_dims[0] = 12, "inner box of 24 bytes", |e| matches!(e, TensorMapError::InnerBoxBytes(24)));
    rejects(&|m| m.box_dims[0] = 0, "inner box of 0", |e| {
        matches!(e, TensorMapError::BoxDimension { dim: 0, elems: 0 })
    });
    accepts(&|m| m.box_dims[0] = 8, "inner box of 16 bytes");
    // The tensor (40 rows of 256 bytes, the last 200 bytes long) must end below 2^64:
    // at the highest 16-byte aligned base it does not; 10 KiB lower it does.
    rejects(&|m| m.global_address = u64::MAX - 15, "a tensor past the address space", |e| {
        matches!(e, TensorMapError::AddressOverflow(_))
    });
    accepts(&|m| m.global_address = u64::MAX - 15 - 10 * 1024, "a tensor ending below 2^64");
    // Swizzle span.
    for (s, span) in [(TensorSwizzle::Bytes32, 32), (TensorSwizzle::Bytes64, 64), (TensorSwizzle::Bytes128, 128)] {
        rejects(
            &|m| {
                m.swizzle = s;
                m.box_dims[0] = span / 2 + 8;
            },
            &format!("{s:?} with an inner box of {} bytes", span + 16),
            |e| matches!(e, TensorMapError::InnerBoxExceedsSwizzle { .. }),
        );
        accepts(
            &|m| {
                m.swizzle = s;
                m.box_dims[0] = span / 2;
            },
            &format!("{s:?} with an inner box of {span} bytes"),
        );
    }
}

// ---------------------------------------------------------------------------------
// Copies.
// ---------------------------------------------------------------------------------

// A 64 x 8 box of 2-byte elements, fully inside a 100 x 40 tensor whose rows are
// padded (256-byte stride for 200-byte rows), at coordinates (17, 5).
#[test]
fn tile_2d_in_bounds() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0x2d_1b);
    let (m, host) = tensor(&mut gpu, &mut rng, 2, &[100, 40], &[256], &[64, 8]);
    let k = Kernel::one(Cp::new(&m, &host, &[17, 5], 0), (1024, 128));
    check(&mut gpu, &k, "2d in bounds");
    // The reference really reads the padded rows: row r of the box is tensor row 5 + r.
    let want = reference(&k, 0);
    assert_eq!(&want[128..132], &host[6 * 256 + 34..6 * 256 + 38]);
}

// Boxes partly (or wholly) outside the tensor: negative coordinates in either
// dimension, boxes running past dims[0] and dims[1]. Out-of-bounds elements are zero.
#[test]
fn tile_2d_out_of_bounds() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0x2d_00b);
    let (m, host) = tensor(&mut gpu, &mut rng, 2, &[100, 40], &[256], &[64, 8]);
    for c in [[-5, 9], [20, -3], [-13, -6], [60, 36], [-7, 35], [99, 39], [-64, 0], [100, 3], [10, -8], [3, 40]] {
        let k = Kernel::one(Cp::new(&m, &host, &c, 0), (1024, 128));
        check(&mut gpu, &k, &format!("coords {c:?}"));
        let want = reference(&k, 0);
        let zeros = want.iter().filter(|&&b| b == 0).count();
        let inside = |c: i64, b: i64, d: i64| (c.max(0)..(c + b).min(d)).count();
        assert_eq!(zeros, 1024 - 2 * inside(c[0], 64, 100) * inside(c[1], 8, 40), "{c:?}");
    }
}

/// A 200 x 50 f16 tensor (512-byte row stride), box `inner` x `rows`, with `swizzle`,
/// copied to `buf + dst` in a 1024-aligned `buf`.
fn swizzled(seed: u64, swizzle: TensorSwizzle, inner: u32, rows: u32, coords: [i64; 2], dst: u32) {
    let mut gpu = Gpu::new();
    let mut rng = Rng(seed);
    let (mut m, host) = tensor(&mut gpu, &mut rng, 2, &[200, 50], &[512], &[inner, rows]);
    m.swizzle = swizzle;
    let bytes = m.box_bytes() as u32;
    let k = Kernel::one(Cp::new(&m, &host, &coords, dst), (dst + bytes, 1024));
    let ctx = format!("{swizzle:?} box {inner}x{rows} at {coords:?} to buf+{dst}");
    check(&mut gpu, &k, &ctx);
    // The test discriminates: the swizzled image differs from the plain one.
    let mut plain = k.clone();
    plain.copies[0].map.swizzle = TensorSwizzle::None;
    assert_ne!(reference(&k, 0), reference(&plain, 0), "{ctx}");
}

// 128-byte swizzle: 64 f16 per row (one 128-byte row), 16 rows (two 1024-byte atoms).
#[test]
fn swizzle_128b() {
    swizzled(0x5128, TensorSwizzle::Bytes128, 64, 16, [70, 20], 0);
}

// 64-byte swizzle: 32 f16 per row, 16 rows; the box starts left of the tensor.
#[test]
fn swizzle_64b() {
    swizzled(0x5064, TensorSwizzle::Bytes64, 32, 16, [-8, 3], 0);
}

// 32-byte swizzle: 16 f16 per row, 16 rows; the box runs past the last row.
#[test]
fn swizzle_32b() {
    swizzled(0x5032, TensorSwizzle::Bytes32, 16, 16, [150, 41], 0);
}

// 128-byte swizzle into a destination 128- but not 1024-aligned (buf + 384): the XOR
// pattern follows the absolute shared address bits 7..9, not the offset in the box.
#[test]
fn swizzle_128b_dst_not_1024_aligned() {
    swizzled(0x5384, TensorSwizzle::Bytes128, 64, 8, [33, 7], 384);
    // The two readings of the rule differ here.
    let mut gpu = Gpu::new();
    let (mut m, host) = tensor(&mut gpu, &mut Rng(1), 2, &[200, 50], &[512], &[64, 8]);
    m.swizzle = TensorSwizzle::Bytes128;
    let abs = Kernel::one(Cp::new(&m, &host, &[0, 0], 384), (1408, 1024));
    let mut rel = abs.clone();
    rel.copies[0].dst = 0;
    rel.region.0 = 0;
    assert_ne!(reference(&abs, 0), reference(&rel, 0));
}

// A 3D box of 4-byte elements, 8 x 4 x 3 from a 12 x 7 x 5 tensor with padded rows and
// planes, crossing the ends of dims 0 and 2 and the start of dim 1.
#[test]
fn tile_3d_u32() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0x3d);
    let (m, host) = tensor(&mut gpu, &mut rng, 4, &[12, 7, 5], &[64, 512], &[8, 4, 3]);
    for c in [[2, 1, 1], [6, -1, 3]] {
        let k = Kernel::one(Cp::new(&m, &host, &c, 0), (384, 128));
        check(&mut gpu, &k, &format!("3d {c:?}"));
    }
}

// A 5D box of 1-byte elements, 32 x 2 x 2 x 2 x 2 from a 40 x 3 x 4 x 2 x 3 tensor;
// in bounds, then out of bounds in dims 0, 2 and 4.
#[test]
fn tile_5d_u8() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0x5d);
    let (m, host) = tensor(&mut gpu, &mut rng, 1, &[40, 3, 4, 2, 3], &[48, 144, 576, 1152], &[32, 2, 2, 2, 2]);
    for c in [[4, 1, 2, 0, 1], [20, 1, -1, 0, 2]] {
        let k = Kernel::one(Cp::new(&m, &host, &c, 128), (640, 128));
        check(&mut gpu, &k, &format!("5d {c:?}"));
    }
}

// The instruction forms: 1D with `.shared::cta`, no `.tile` and an immediate negative
// coordinate; 4D (8-byte elements) with `.L2::cache_hint` and its policy operand;
// 2D with both, immediates, and the expect_tx / arrive order.
#[test]
fn instruction_forms() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0xf0);
    let (m1, h1) = tensor(&mut gpu, &mut rng, 4, &[100], &[], &[64]);
    let mut k = Kernel::one(Cp::new(&m1, &h1, &[-30], 0), (256, 128));
    k.form = Form { space: "shared::cta", tile: false, hint: false, imm: true };
    check(&mut gpu, &k, "1d");
    assert!(k.ptx().contains(
        "cp.async.bulk.tensor.1d.shared::cta.global.mbarrier::complete_tx::bytes [%r4], [%rd3, {-30}], [%r3];"
    ));
    let mut k = Kernel::one(Cp::new(&m1, &h1, &[60], 0), (256, 128));
    k.form.imm = true;
    check(&mut gpu, &k, "1d past the end");

    let (m4, h4) = tensor(&mut gpu, &mut rng, 8, &[6, 5, 4, 3], &[48, 240, 960], &[2, 3, 2, 2]);
    let mut k = Kernel::one(Cp::new(&m4, &h4, &[4, 3, -1, 1], 0), (256, 128));
    k.form = Form { space: "shared::cluster", tile: true, hint: true, imm: false };
    check(&mut gpu, &k, "4d cache hint");
    assert!(k.ptx().contains(
        ".tile.mbarrier::complete_tx::bytes.L2::cache_hint [%r4], [%rd3, {%r10, %r11, %r12, %r13}], [%r3], %rd9;"
    ));

    let (m2, h2) = tensor(&mut gpu, &mut rng, 2, &[100, 40], &[256], &[64, 8]);
    let mut k = Kernel::one(Cp::new(&m2, &h2, &[-3, 33], 0), (1024, 128));
    k.form = Form { space: "shared::cta", tile: true, hint: true, imm: true };
    k.split = true;
    check(&mut gpu, &k, "2d split, immediates, cache hint");
}

// Two copies (different tensors, the second with a 128-byte swizzle at buf + 512) into
// the two halves of a buffer, completing on one mbarrier armed with the sum.
#[test]
fn two_copies_one_mbarrier() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0x2c);
    let (a, ha) = tensor(&mut gpu, &mut rng, 2, &[100, 40], &[256], &[64, 4]);
    let (mut b, hb) = tensor(&mut gpu, &mut rng, 4, &[48, 20], &[192], &[32, 4]);
    b.swizzle = TensorSwizzle::Bytes128;
    for split in [false, true] {
        let k = Kernel {
            copies: vec![Cp::new(&a, &ha, &[30, 11], 0), Cp::new(&b, &hb, &[-2, 17], 512)],
            buf: (1024, 1024),
            region: (0, 1024),
            form: DEFAULT_FORM,
            split,
            read_early: false,
            threads: 64,
        };
        assert!(k.ptx().contains("], 1024;"), "expect-tx of both boxes");
        check(&mut gpu, &k, &format!("two copies, split {split}"));
    }
}

// The counters: three copies of one map (partly out of bounds) count three copies
// and three whole boxes of bytes (zero fill included).
#[test]
fn counters() {
    let mut gpu = Gpu::new();
    let mut rng = Rng(0xc0);
    let (m, host) = tensor(&mut gpu, &mut rng, 4, &[20, 9], &[96], &[16, 4]);
    let k = Kernel {
        copies: vec![
            Cp::new(&m, &host, &[0, 0], 0),
            Cp::new(&m, &host, &[10, 7], 256),
            Cp::new(&m, &host, &[-9, -1], 512),
        ],
        buf: (768, 128),
        region: (0, 768),
        form: DEFAULT_FORM,
        split: false,
        read_early: false,
        threads: 32,
    };
    let r = check(&mut gpu, &k, "counters");
    assert_eq!((r.bulk_copies, r.bulk_bytes), (3, 768), "{r}");
}

// ---------------------------------------------------------------------------------
// Hazards.
// ---------------------------------------------------------------------------------

/// A 2D f16 tensor and its 64 x 8 map, on `gpu`.
fn hazard_tensor(gpu: &mut Gpu, seed: u64) -> (TensorMap, Vec<u8>) {
    tensor(gpu, &mut Rng(seed), 2, &[100, 40], &[256], &[64, 8])
}

/// The launch's bulk hazard.
fn bulk_hazard(run: Run) -> (Hazard, BulkRule, String) {
    match run.result {
        Err(SimError::Hazard(h)) => match &h.kind {
            HazardKind::Bulk(b) => {
                let rule = b.rule;
                (*h, rule, run.text)
            }
            k => panic!("not a bulk-copy hazard: {k:?} ({h})\n{}", run.text),
        },
        Err(e) => panic!("not a hazard: {e}\n{}", run.text),
        Ok(r) => panic!("kernel passed: {r}\n{}", run.text),
    }
}

// A destination 16 bytes into `buf` (16- but not 128-byte aligned) breaks the
// alignment rule; the twin at `buf` itself runs clean.
#[test]
fn hazard_misaligned_destination() {
    let mut gpu = Gpu::new();
    let (m, host) = hazard_tensor(&mut gpu, 0x4a1);
    check(&mut gpu, &Kernel::one(Cp::new(&m, &host, &[3, 4], 0), (1152, 128)), "aligned twin");
    for dst in [16, 64] {
        let mut k = Kernel::one(Cp::new(&m, &host, &[3, 4], dst), (1152, 128));
        k.region = (0, 1024);
        let map = up_map(&mut gpu, &m);
        let (h, rule, text) = bulk_hazard(launch(&mut gpu, &k, &[map]));
        assert_eq!(rule, BulkRule::Alignment, "buf+{dst}: {h}");
        assert_eq!(h.line, line_of(&text, "cp.async.bulk.tensor"), "{h}");
    }
}

// A tensor map that does not decode (128 zero bytes; a valid map with one byte of its
// magic flipped) is reported at the copy; the valid map runs clean.
#[test]
fn hazard_bad_tensor_map() {
    let mut gpu = Gpu::new();
    let (m, host) = hazard_tensor(&mut gpu, 0x4a2);
    let k = Kernel::one(Cp::new(&m, &host, &[3, 4], 0), (1024, 128));
    check(&mut gpu, &k, "valid map");
    let good = m.encode().unwrap();
    // The first byte whose flip makes the map undecodable (the magic).
    let at = (0..TENSOR_MAP_BYTES)
        .find(|&i| {
            let mut b = good;
            b[i] ^= 0xff;
            TensorMap::decode(&b).is_err()
        })
        .expect("some byte flip must break decoding");
    let mut flipped = good;
    flipped[at] ^= 0xff;
    for (what, bytes) in [("zero bytes", [0u8; TENSOR_MAP_BYTES]), ("flipped magic", flipped)] {
        let map = up_map_bytes(&mut gpu, &bytes);
        let (h, rule, text) = bulk_hazard(launch(&mut gpu, &k, &[map]));
        assert_eq!(rule, BulkRule::TensorMap, "{what}: {h}");
        assert_eq!(h.line, line_of(&text, "cp.async.bulk.tensor"), "{what}: {h}");
    }
}

// Thread 0 reads the destination right after issuing the copy, before any wait
// observed the phase complete: the copy is in flight.
#[test]
fn hazard_read_before_wait() {
    let mut gpu = Gpu::new();
    let (m, host) = hazard_tensor(&mut gpu, 0x4a3);
    let mut k = Kernel::one(Cp::new(&m, &host, &[-3, 4], 0), (1024, 128));
    check(&mut gpu, &k, "read after the wait");
    k.read_early = true;
    let map = up_map(&mut gpu, &m);
    let (h, rule, text) = bulk_hazard(launch(&mut gpu, &k, &[map]));
    assert_eq!(rule, BulkRule::InFlight, "{h}");
    assert_eq!((h.line, h.tid), (line_of(&text, "ld.shared.u32 %r20"), [0, 0, 0]), "{h}");
    let HazardKind::Bulk(b) = &h.kind else { unreachable!() };
    assert_eq!(b.other.as_ref().map(|o| o.line), Some(line_of(&text, "cp.async.bulk.tensor")), "{h}");
}

// ---------------------------------------------------------------------------------
// Faults the simulator reports whatever the hazard setting: the copy could not be
// modelled otherwise.
// ---------------------------------------------------------------------------------

/// One thread copies the box at (0, ...) of the tensor map at `p0` into `buf + dst_off`
/// with a `.{dims}d` instruction and waits for it.
fn one_copy_kernel(dims: usize, dst_off: u32, box_bytes: u64) -> String {
    let coords = vec!["0"; dims].join(", ");
    let body = format!(
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %tid.x;\nmov.u32 %r2, buf;\nadd.u32 %r2, %r2, {dst_off};\n\
         mov.u32 %r3, bar;\nsetp.ne.u32 %p1, %r1, 0;\n@%p1 bra $DONE;\nmbarrier.init.shared::cta.b64 [%r3], 1;\n\
         mbarrier.arrive.expect_tx.shared::cta.b64 %rd3, [%r3], {box_bytes};\n\
         cp.async.bulk.tensor.{dims}d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%r2], [%rd1, {{{coords}}}], [%r3];\n\
         $WAIT:\nmbarrier.try_wait.parity.shared::cta.b64 %p2, [%r3], 0;\n@!%p2 bra $WAIT;\n$DONE:\nret;"
    );
    let regs = ".reg .b64 %rd<8>;\n.reg .b32 %r<8>;\n.reg .pred %p<4>;\n\
                .shared .align 1024 .b8 buf[2048];\n.shared .align 8 .b64 bar;";
    wrap("k", 1, regs, &body).replace(".target sm_80", ".target sm_90")
}

/// Launches `one_copy_kernel` on `map` (hazard checks as given) and returns the bulk
/// rule it faulted with.
fn one_copy_fault(map: &TensorMap, dims: usize, dst_off: u32, hazards: bool) -> Result<BulkRule, String> {
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(hazards);
    let src = gpu.alloc(1 << 16).unwrap();
    let mut map = map.clone();
    map.global_address = src;
    let at = up_map(&mut gpu, &map);
    let text = one_copy_kernel(dims, dst_off, map.box_bytes());
    match run1(&mut gpu, &module(&text), "k", 32, &[KernelArg::U64(at)]) {
        Err(SimError::Hazard(h)) => match h.kind {
            HazardKind::Bulk(b) => Ok(b.rule),
            k => Err(format!("{k:?}")),
        },
        Err(e) => Err(e.to_string()),
        Ok(_) => Err("ran clean".into()),
    }
}

// A .2d copy through a rank-3 map (or a .3d one through a rank-2 map) is refused.
#[test]
fn rank_mismatch_is_a_tensor_map_fault() {
    let m3 = tmap(0, 2, &[64, 4, 4], &[128, 512], &[64, 2, 2]);
    let m2 = tmap(0, 2, &[64, 4], &[128], &[64, 2]);
    assert_eq!(one_copy_fault(&m3, 2, 0, true), Ok(BulkRule::TensorMap));
    assert_eq!(one_copy_fault(&m2, 3, 0, true), Ok(BulkRule::TensorMap));
    assert_eq!(one_copy_fault(&m2, 3, 0, false), Ok(BulkRule::TensorMap), "with hazard checks off too");
}

// A destination off the 128-byte grid is refused with hazard checks off as well.
#[test]
fn misaligned_destination_faults_without_hazard_checks() {
    let m = tmap(0, 2, &[64, 4], &[128], &[64, 2]);
    assert_eq!(one_copy_fault(&m, 2, 16, false), Ok(BulkRule::Alignment));
}

// A valid map whose box exceeds the block's shared memory is an out-of-bounds fault at
// the copy, before any of it is gathered (a 512 KiB box here, within the tx-count range).
#[test]
fn box_larger_than_shared_memory_faults() {
    let m = tmap(0, 1, &[256, 256, 8], &[256, 65536], &[256, 256, 8]);
    let got = one_copy_fault(&m, 3, 0, true);
    assert!(matches!(&got, Err(e) if e.contains("OutOfBounds") || e.contains("out of bounds")), "{got:?}");
}

// A swizzled box must be a whole number of 128-byte rows (not modelled otherwise).
#[test]
fn swizzled_box_ending_inside_a_row_is_refused() {
    let mut m = tmap(0x1000, 1, &[16, 9], &[16], &[16, 9]);
    m.swizzle = TensorSwizzle::Bytes32;
    assert_eq!(m.encode(), Err(TensorMapError::SwizzledBoxPartialRow(144)), "144-byte swizzled box");
    m.dims[1] = 16;
    m.box_dims[1] = 16;
    assert!(m.encode().is_ok(), "256-byte swizzled box");
}
