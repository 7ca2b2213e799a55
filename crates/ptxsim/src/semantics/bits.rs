//! Bit-manipulation instructions on raw register values: `lop3`, `prmt`, `bfe`
//! and `bfi` (PTX ISA 9.7.8.6 "lop3", 9.7.9.7 "prmt", 9.7.1.x "bfe"/"bfi" in the
//! "Integer Arithmetic Instructions" section). Pure functions, total on all inputs.

/// `lop3.b32 d, a, b, c, immLut`: an arbitrary three-input logic function given by
/// its 8-entry truth table (PTX ISA "lop3").
///
/// The ISA defines the table through the constants `ta = 0xF0`, `tb = 0xCC`,
/// `tc = 0xAA`: `immLut` is the function applied bitwise to those constants. Hence
/// bit `4a + 2b + c` of `immLut` is the result for input bits `(a, b, c)`.
pub fn lop3(a: u32, b: u32, c: u32, imm_lut: u8) -> u32 {
    let lut = imm_lut as u32;
    let mut d = 0u32;
    // Each minterm (a, b, c) contributes the mask of the bit positions where the
    // inputs take exactly those values, when its truth-table bit is set.
    for idx in 0..8u32 {
        if (lut >> idx) & 1 == 1 {
            let ma = if idx & 4 != 0 { a } else { !a };
            let mb = if idx & 2 != 0 { b } else { !b };
            let mc = if idx & 1 != 0 { c } else { !c };
            d |= ma & mb & mc;
        }
    }
    d
}

/// Mode of `prmt.b32{.mode}` (PTX ISA "prmt").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrmtMode {
    /// No mode suffix: four 4-bit selectors in `c[15:0]`, one per destination byte.
    Default,
    /// `.f4e`: forward 4 extract.
    F4e,
    /// `.b4e`: backward 4 extract.
    B4e,
    /// `.rc8`: replicate 8.
    Rc8,
    /// `.ecl`: edge clamp left.
    Ecl,
    /// `.ecr`: edge clamp right.
    Ecr,
    /// `.rc16`: replicate 16.
    Rc16,
}

/// `prmt.b32{.mode} d, a, b, c`: picks four bytes of the 8-byte value `{b, a}`
/// (bytes 0..3 from `a`, 4..7 from `b`) into `d` (PTX ISA "prmt").
///
/// Default mode: nibble `i` of `c` selects destination byte `i`; its bits 2:0 name
/// the source byte and bit 3 replaces the byte by its sign bit replicated eight
/// times. Other modes use only `c[1:0]` and a fixed per-mode table of source bytes
/// (the ISA's table for `.f4e .b4e .rc8 .ecl .ecr .rc16`); they never sign-replicate.
pub fn prmt(a: u32, b: u32, c: u32, mode: PrmtMode) -> u32 {
    let src = ((b as u64) << 32) | a as u64;
    let byte = |i: u32| ((src >> (8 * (i & 7))) & 0xff) as u32;
    let s = c & 3;
    // Source byte for destination bytes 0, 1, 2, 3 (ISA table lists them d.b3..d.b0).
    let sel: [u32; 4] = match mode {
        PrmtMode::Default => {
            let mut d = 0u32;
            for i in 0..4 {
                let ctl = (c >> (4 * i)) & 0xf;
                let v = byte(ctl & 7);
                let v = if ctl & 8 != 0 {
                    if v & 0x80 != 0 {
                        0xff
                    } else {
                        0
                    }
                } else {
                    v
                };
                d |= v << (8 * i);
            }
            return d;
        }
        PrmtMode::F4e => [s, s + 1, s + 2, s + 3],
        PrmtMode::B4e => [s, s + 7, s + 6, s + 5],
        PrmtMode::Rc8 => [s; 4],
        PrmtMode::Ecl => [s, s.max(1), s.max(2), 3],
        PrmtMode::Ecr => [0, s.min(1), s.min(2), s],
        PrmtMode::Rc16 => {
            let lo = 2 * (s & 1);
            [lo, lo + 1, lo, lo + 1]
        }
    };
    sel.iter().enumerate().fold(0u32, |d, (i, &k)| d | (byte(k) << (8 * i)))
}

/// Shared body of `bfe` (PTX ISA "bfe"): `msb` is 31 or 63; only bits 7:0 of
/// `pos` and `len` are used.
fn bfe_generic(a: u64, pos: u32, len: u32, msb: u32, signed: bool) -> u64 {
    let pos = pos & 0xff;
    let len = len & 0xff;
    let width = msb + 1;
    let all = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
    if len == 0 {
        return 0;
    }
    // Sign bit of the field: bit min(pos+len-1, msb) of a (signed types only).
    let sbit = signed && (a >> (pos + len - 1).min(msb)) & 1 == 1;
    if pos > msb {
        return if sbit { all } else { 0 };
    }
    // Bits of the field that lie inside the operand.
    let eff = len.min(width - pos);
    let field_mask = if eff >= 64 { u64::MAX } else { (1u64 << eff) - 1 };
    let field = (a >> pos) & field_mask;
    if sbit {
        (field | !field_mask) & all
    } else {
        field
    }
}

/// `bfe.u32 d, a, pos, len`: zero-extended bit-field extract (PTX ISA "bfe").
pub fn bfe_u32(a: u32, pos: u32, len: u32) -> u32 {
    bfe_generic(a as u64, pos, len, 31, false) as u32
}

/// `bfe.s32 d, a, pos, len`: sign-extended bit-field extract (PTX ISA "bfe"); a
/// start position past bit 31 yields bit 31 of `a` replicated.
pub fn bfe_s32(a: u32, pos: u32, len: u32) -> u32 {
    bfe_generic(a as u64, pos, len, 31, true) as u32
}

/// `bfe.u64 d, a, pos, len` (PTX ISA "bfe").
pub fn bfe_u64(a: u64, pos: u32, len: u32) -> u64 {
    bfe_generic(a, pos, len, 63, false)
}

/// `bfe.s64 d, a, pos, len` (PTX ISA "bfe").
pub fn bfe_s64(a: u64, pos: u32, len: u32) -> u64 {
    bfe_generic(a, pos, len, 63, true)
}

/// Shared body of `bfi` (PTX ISA "bfi").
fn bfi_generic(a: u64, b: u64, pos: u32, len: u32, msb: u32) -> u64 {
    let pos = pos & 0xff;
    let len = len & 0xff;
    if len == 0 || pos > msb {
        return b;
    }
    let eff = len.min(msb + 1 - pos);
    let field_mask = if eff >= 64 { u64::MAX } else { (1u64 << eff) - 1 };
    let mask = field_mask << pos;
    (b & !mask) | ((a << pos) & mask)
}

/// `bfi.b32 f, a, b, pos, len`: inserts the low `len` bits of `a` into `b` at
/// `pos` (PTX ISA "bfi"); `len == 0` or `pos > 31` return `b`.
pub fn bfi_b32(a: u32, b: u32, pos: u32, len: u32) -> u32 {
    bfi_generic(a as u64, b as u64, pos, len, 31) as u32
}

/// `bfi.b64 f, a, b, pos, len` (PTX ISA "bfi").
pub fn bfi_b64(a: u64, b: u64, pos: u32, len: u32) -> u64 {
    bfi_generic(a, b, pos, len, 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic generator for property tests (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn u32(&mut self) -> u32 {
            (self.next() >> 32) as u32
        }
    }

    // PTX ISA "lop3": immLut is the operation applied to ta=0xF0, tb=0xCC, tc=0xAA.
    #[test]
    fn lop3_matches_named_functions() {
        let (ta, tb, tc) = (0xF0u8, 0xCCu8, 0xAAu8);
        let mut r = Rng(1);
        for _ in 0..200 {
            let (a, b, c) = (r.u32(), r.u32(), r.u32());
            assert_eq!(lop3(a, b, c, (ta & tb) | tc), (a & b) | c);
            assert_eq!(lop3(a, b, c, ta ^ tb ^ tc), a ^ b ^ c);
            assert_eq!(lop3(a, b, c, ta & !tb), a & !b);
            assert_eq!(lop3(a, b, c, (ta & tb) | (!ta & tc)), (a & b) | (!a & c));
            assert_eq!(lop3(a, b, c, 0), 0);
            assert_eq!(lop3(a, b, c, 0xff), u32::MAX);
            assert_eq!(lop3(a, b, c, ta), a);
            assert_eq!(lop3(a, b, c, tb), b);
            assert_eq!(lop3(a, b, c, tc), c);
        }
        // The int4 -> fp16 trick from ptx-fragments.md: (x & 0x000f000f) | 0x64006400.
        assert_eq!(lop3(0x1234_5678, 0x000f_000f, 0x6400_6400, 0xEA), 0x6404_6408);
    }

    // PTX ISA "prmt", generic form: nibble i of c selects byte i of d from {b,a}.
    #[test]
    fn prmt_default_selects_and_sign_replicates() {
        let a = 0x8382_0100u32; // bytes b0..b3 = 00 01 82 83
        let b = 0x0786_0504u32; // bytes b4..b7 = 04 05 86 07
        assert_eq!(prmt(a, b, 0x3210, PrmtMode::Default), a);
        assert_eq!(prmt(a, b, 0x7654, PrmtMode::Default), b);
        assert_eq!(prmt(a, b, 0x0123, PrmtMode::Default), 0x0001_8283);
        assert_eq!(prmt(a, b, 0x4444, PrmtMode::Default), 0x0404_0404);
        // Bit 3 set: byte 2 (0x82, negative) -> 0xff, byte 1 (0x01) -> 0x00.
        assert_eq!(prmt(a, b, 0x9A9A, PrmtMode::Default), 0x00ff_00ff);
        // Byte 6 (0x86) replicated sign = 0xff; byte 7 (0x07) -> 0.
        assert_eq!(prmt(a, b, 0xFE10, PrmtMode::Default), 0x00ff_0100);
        // Bits above 15 of c are ignored in the generic form.
        assert_eq!(prmt(a, b, 0xABCD_3210, PrmtMode::Default), a);
    }

    // PTX ISA "prmt" mode table (columns d.b3 d.b2 d.b1 d.b0 per c[1:0]).
    #[test]
    fn prmt_modes_follow_isa_table() {
        // Byte k of {b,a} holds value k, so d's bytes spell the selected indices.
        let a = 0x0302_0100u32;
        let b = 0x0706_0504u32;
        let t = |mode, c: u32| prmt(a, b, c, mode);
        let pack = |b3: u32, b2: u32, b1: u32, b0: u32| (b3 << 24) | (b2 << 16) | (b1 << 8) | b0;
        use PrmtMode::*;
        let table: [(PrmtMode, [[u32; 4]; 4]); 6] = [
            (F4e, [[3, 2, 1, 0], [4, 3, 2, 1], [5, 4, 3, 2], [6, 5, 4, 3]]),
            (B4e, [[5, 6, 7, 0], [6, 7, 0, 1], [7, 0, 1, 2], [0, 1, 2, 3]]),
            (Rc8, [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]),
            (Ecl, [[3, 2, 1, 0], [3, 2, 1, 1], [3, 2, 2, 2], [3, 3, 3, 3]]),
            (Ecr, [[0, 0, 0, 0], [1, 1, 1, 0], [2, 2, 1, 0], [3, 2, 1, 0]]),
            (Rc16, [[1, 0, 1, 0], [3, 2, 3, 2], [1, 0, 1, 0], [3, 2, 3, 2]]),
        ];
        for (mode, rows) in table {
            for (sel, r) in rows.iter().enumerate() {
                let want = pack(r[0], r[1], r[2], r[3]);
                assert_eq!(t(mode, sel as u32), want, "{mode:?} sel {sel}");
                // Only c[1:0] matters; no sign replication outside the generic form.
                assert_eq!(t(mode, 0xffff_fff8 | sel as u32), want, "{mode:?} high bits");
            }
        }
        // Negative bytes are copied verbatim in the special modes.
        assert_eq!(prmt(0x8080_8080, 0, 0, Rc8), 0x8080_8080);
    }

    /// Bit-by-bit transcription of the ISA's bfe pseudocode, the oracle.
    fn bfe_oracle(a: u64, b: u32, c: u32, msb: u32, signed: bool) -> u64 {
        let pos = b & 0xff;
        let len = c & 0xff;
        let sbit = if !signed || len == 0 { 0 } else { (a >> (pos + len - 1).min(msb)) & 1 };
        let mut d = 0u64;
        for i in 0..=msb {
            let bit = if i < len && pos + i <= msb { (a >> (pos + i)) & 1 } else { sbit };
            d |= bit << i;
        }
        d
    }

    // PTX ISA "bfe": pos/len use bits 7:0; len 0 -> 0; past msb -> sign fill.
    #[test]
    fn bfe_matches_isa_pseudocode() {
        let mut r = Rng(7);
        let specials = [0u32, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 255, 256, 257, 0x1_0003];
        for _ in 0..300 {
            let a = r.next();
            for &pos in &specials {
                for &len in &specials {
                    let a32 = a as u32;
                    assert_eq!(bfe_u32(a32, pos, len) as u64, bfe_oracle(a32 as u64, pos, len, 31, false));
                    assert_eq!(bfe_s32(a32, pos, len) as u64, bfe_oracle(a32 as u64, pos, len, 31, true));
                    assert_eq!(bfe_u64(a, pos, len), bfe_oracle(a, pos, len, 63, false));
                    assert_eq!(bfe_s64(a, pos, len), bfe_oracle(a, pos, len, 63, true));
                }
            }
        }
        assert_eq!(bfe_s32(0x0000_00f0, 4, 4), 0xffff_ffff);
        assert_eq!(bfe_u32(0x0000_00f0, 4, 4), 0xf);
        assert_eq!(bfe_s32(0x8000_0000, 40, 1), 0xffff_ffff);
        assert_eq!(bfe_u32(0x8000_0000, 40, 1), 0);
        // len 256 is len 0 (only bits 7:0).
        assert_eq!(bfe_u32(0xffff_ffff, 0, 256), 0);
    }

    // PTX ISA "bfi": len 0 or pos past msb returns b; field truncated at msb.
    #[test]
    fn bfi_matches_isa_pseudocode() {
        let mut r = Rng(9);
        for _ in 0..300 {
            let (a, b) = (r.next(), r.next());
            for pos in [0u32, 1, 5, 31, 32, 63, 64, 255, 256, 300] {
                for len in [0u32, 1, 4, 8, 31, 32, 33, 64, 200, 256, 257] {
                    for msb in [31u32, 63] {
                        let (p, l) = (pos & 0xff, len & 0xff);
                        let mut f = if msb == 31 { b & 0xffff_ffff } else { b };
                        let mut i = 0;
                        while i < l && p + i <= msb {
                            f = (f & !(1u64 << (p + i))) | (((a >> i) & 1) << (p + i));
                            i += 1;
                        }
                        if msb == 31 {
                            assert_eq!(bfi_b32(a as u32, b as u32, pos, len) as u64, f);
                        } else {
                            assert_eq!(bfi_b64(a, b, pos, len), f);
                        }
                    }
                }
            }
        }
        assert_eq!(bfi_b32(0xf, 0, 28, 8), 0xf000_0000);
    }
}
