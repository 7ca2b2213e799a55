//! Host references of the GEMM kernels, in higher precision than the kernels: exact
//! integer accumulation and f64 scaling, rounded once to f16. The tests compare kernel
//! outputs against these with tolerances derived from the kernels' own rounding.
//! (The dequant/quantize references are bit-exact models and live in [`crate::formats`].)

use half::f16;

use crate::formats::{check_len, FormatError};

/// Largest number of outputs `M·N` a reference produces: its two outputs (f16 values and
/// f64 magnitudes) must each fit in one allocation (at most `isize::MAX` bytes).
const MAX_OUTPUTS: usize = isize::MAX as usize / std::mem::size_of::<f64>();

/// Checks the GEMM dimensions of a reference: M, N and K non-zero
/// ([`FormatError::ZeroDimension`], `arg` `"M"`, `"N"` or `"K"`), and the operand sizes
/// M·K, N·K and the output size M·N representable ([`FormatError::ShapeOverflow`]).
fn check_gemm_dims(m: usize, n: usize, k: usize) -> Result<(), FormatError> {
    for (arg, dim) in [("M", m), ("N", n), ("K", k)] {
        if dim == 0 {
            return Err(FormatError::ZeroDimension { arg });
        }
    }
    let overflow = |rows, cols| FormatError::ShapeOverflow { rows, cols };
    m.checked_mul(k).ok_or(overflow(m, k))?;
    n.checked_mul(k).ok_or(overflow(n, k))?;
    match m.checked_mul(n) {
        Some(outputs) if outputs <= MAX_OUTPUTS => Ok(()),
        _ => Err(overflow(m, n)),
    }
}

/// Checks the operand lengths of a reference, `(argument, expected, actual)` in order,
/// then the optional `bias` `[n]`: the first mismatch is the error.
fn check_lengths(lengths: &[(&'static str, usize, usize)], bias: Option<&[f16]>, n: usize) -> Result<(), FormatError> {
    for &(arg, expected, got) in lengths {
        check_len(arg, expected, got)?;
    }
    bias.map_or(Ok(()), |b| check_len("bias", n, b.len()))
}

/// Reference of `gemm_w8a8`:
/// `C[m, n] = f16(Σ_k A[m,k]·W[n,k] · a_scale[m] · w_scale[n] + bias[n])`
/// with the sum in exact integers and the scaling in f64.
///
/// Also returns, per element, the magnitude `|Σ·a_scale·w_scale| + |bias|` the kernel's
/// f32 rounding errors are relative to ([`gemm_w8a8_tolerance`]).
///
/// Errors: [`FormatError::ZeroDimension`] (M, N or K zero),
/// [`FormatError::ShapeOverflow`] (M·K, N·K or M·N too large),
/// [`FormatError::LengthMismatch`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8_reference(
    a_q: &[i8],
    a_scale: &[f32],
    w_q: &[i8],
    w_scale: &[f32],
    bias: Option<&[f16]>,
    m: usize,
    n: usize,
    k: usize,
) -> Result<(Vec<f16>, Vec<f64>), FormatError> {
    check_gemm_dims(m, n, k)?;
    check_lengths(
        &[
            ("a_q", m * k, a_q.len()),
            ("a_scale", m, a_scale.len()),
            ("w_q", n * k, w_q.len()),
            ("w_scale", n, w_scale.len()),
        ],
        bias,
        n,
    )?;
    let mut out = Vec::with_capacity(m * n);
    let mut magnitude = Vec::with_capacity(m * n);
    for i in 0..m {
        let a_row = &a_q[i * k..(i + 1) * k];
        for j in 0..n {
            let w_row = &w_q[j * k..(j + 1) * k];
            let acc: i64 = a_row.iter().zip(w_row).map(|(&a, &w)| i64::from(a) * i64::from(w)).sum();
            let scaled = acc as f64 * f64::from(a_scale[i]) * f64::from(w_scale[j]);
            let b = bias.map_or(0.0, |b| b[j].to_f64());
            out.push(f16_from_f64_rn(scaled + b));
            magnitude.push(scaled.abs() + b.abs());
        }
    }
    Ok((out, magnitude))
}

/// f32 rounding bound of `gemm_w8a8`'s epilogue, relative to the magnitude
/// `|Σ·a_scale·w_scale| + |bias|`: int32 → f32 (exact below 2^24), two f32 multiplies
/// and the bias add, three roundings of at most 2⁻²⁴ each, rounded up to 2⁻²².
pub const W8A8_EPILOGUE_REL_ERROR: f64 = 1.0 / (1u64 << 22) as f64;

/// The bound this crate's tests hold every `gemm_w8a8` output to:
/// `|c − reference| ≤ 1 ulp_f16(reference) + 2⁻²²·magnitude`, with `reference` and
/// `magnitude` from [`gemm_w8a8_reference`].
///
/// Why: the int32 accumulation is exact (K ≤ 131072 cannot overflow), so the only
/// roundings are the epilogue's f32 operations ([`W8A8_EPILOGUE_REL_ERROR`]) and the
/// final rounding to f16. A value within a few f32 ulps of an f16 rounding boundary may
/// round to the neighbouring f16 (1 ulp); when the bias cancels the product, the f32
/// error of the operands, not of the small result, bounds the difference (the second
/// term).
pub fn gemm_w8a8_tolerance(reference: f64, magnitude: f64) -> f64 {
    f16_ulp(reference) + W8A8_EPILOGUE_REL_ERROR * magnitude
}

/// f32 accumulation error of the weight-only GEMMs per term of K, relative to
/// `Σ_k |a·w| + |bias|`: one f32 rounding per addition, 2⁻²⁴ when rounded to nearest
/// (the simulator), up to 2⁻²³ where the tensor cores' accumulation truncates; the GPU
/// tests have held this bound on H100 and H200.
pub const WEIGHT_ONLY_ACC_REL_ERROR_PER_K: f64 = 1.0 / (1u64 << 23) as f64;

/// The bound this crate's tests hold every `gemm_w4a16` / `gemm_w8a16` output to:
/// `|c − reference| ≤ 1 ulp_f16(reference) + K·2⁻²³·magnitude`, with `reference` and
/// `magnitude` from [`gemm_weight_only_reference`] (the same f16 weights the kernel
/// dequantizes bit for bit).
///
/// Why: each f16 × f16 product is exact in f32; the f32 accumulation of K terms (in the
/// tensor cores and across split-K partials) errs by at most about K·2⁻²⁴·Σ|a·w|, the
/// bias add by 2⁻²⁴ of the magnitude; the final rounding to f16 can then land on the
/// neighbouring f16 of the correctly rounded reference (1 ulp). Per term the bound is
/// [`WEIGHT_ONLY_ACC_REL_ERROR_PER_K`]: twice a round-to-nearest addition's error, one
/// truncating addition's.
pub fn weight_only_tolerance(reference: f64, magnitude: f64, k: usize) -> f64 {
    f16_ulp(reference) + k as f64 * WEIGHT_ONLY_ACC_REL_ERROR_PER_K * magnitude
}

/// The distance between `x` and the next f16 away from zero (for |x| beyond the f16
/// range, the ulp at the largest finite f16).
pub fn f16_ulp(x: f64) -> f64 {
    let a = x.abs().min(f16::MAX.to_f64());
    // Subnormal f16 spacing is 2^-24; normal spacing is 2^(exponent - 10).
    if a < 2f64.powi(-14) {
        2f64.powi(-24)
    } else {
        2f64.powi(a.log2().floor() as i32 - 10)
    }
}

/// `x` rounded once to the nearest f16, ties to even (IEEE 754 roundTiesToEven).
///
/// `half::f16::from_f64` may round twice (through f32), which is not a valid reference
/// for a kernel whose only rounding is the final one.
pub fn f16_from_f64_rn(x: f64) -> f16 {
    /// Largest finite f16 plus half its ulp: the tie between 65504 and the overflow
    /// threshold, which rounds (to the even "mantissa") to infinity.
    const F16_OVERFLOW: f64 = 65520.0;
    /// Smallest normal f16, 2^-14; below it the spacing is the subnormal 2^-24.
    const F16_MIN_NORMAL: f64 = 6.103515625e-5;
    const F16_MANTISSA_BITS: i32 = 10;
    const F16_EXPONENT_BIAS: i32 = 15;
    if x.is_nan() {
        return f16::NAN;
    }
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    if a >= F16_OVERFLOW {
        return f16::from_bits(sign | 0x7c00);
    }
    if a < F16_MIN_NORMAL {
        // Multiples of 2^-24; 1024 * 2^-24 is the smallest normal, whose encoding
        // 0x0400 is exactly 1024, so a round-up into the normal range encodes itself.
        let units = (a * 2f64.powi(24)).round_ties_even() as u16;
        return f16::from_bits(sign | units);
    }
    // a is a normal f64 here: its exponent field is exact.
    let exponent = ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let mut mantissa = (a * 2f64.powi(F16_MANTISSA_BITS - exponent)).round_ties_even() as u32; // in [1024, 2048]
    let mut exponent = exponent;
    if mantissa == 2048 {
        mantissa = 1024;
        exponent += 1;
    }
    if exponent + F16_EXPONENT_BIAS >= 31 {
        return f16::from_bits(sign | 0x7c00);
    }
    let bits = (((exponent + F16_EXPONENT_BIAS) as u32) << F16_MANTISSA_BITS) | (mantissa - 1024);
    f16::from_bits(sign | bits as u16)
}

/// Reference of the weight-only GEMMs (`gemm_w4a16`, `gemm_w8a16`): `C[m, n] =
/// f16(Σ_k A[m,k]·W[n,k] + bias[n])` with `W` the dequantized f16 weights `[N, K]`
/// ([`WeightOnlyWeights::dequantize`](crate::formats::WeightOnlyWeights::dequantize)):
/// each product of two f16 is exact in f64, the sum is accumulated in f64 and rounded
/// once to f16.
///
/// Also returns, per element, `Σ_k |A[m,k]·W[n,k]| + |bias[n]|`, the magnitude the
/// kernel's f32 accumulation error is bounded by ([`weight_only_tolerance`]).
///
/// Errors: [`FormatError::ZeroDimension`] (M, N or K zero),
/// [`FormatError::ShapeOverflow`] (M·K, N·K or M·N too large),
/// [`FormatError::LengthMismatch`].
pub fn gemm_weight_only_reference(
    a: &[f16],
    w: &[f16],
    bias: Option<&[f16]>,
    m: usize,
    n: usize,
    k: usize,
) -> Result<(Vec<f16>, Vec<f64>), FormatError> {
    check_gemm_dims(m, n, k)?;
    check_lengths(&[("a", m * k, a.len()), ("w", n * k, w.len())], bias, n)?;
    let a64: Vec<f64> = a.iter().map(|v| v.to_f64()).collect();
    let w64: Vec<f64> = w.iter().map(|v| v.to_f64()).collect();
    let mut out = Vec::with_capacity(m * n);
    let mut magnitude = Vec::with_capacity(m * n);
    for a_row in a64.chunks_exact(k) {
        for (j, w_row) in w64.chunks_exact(k).enumerate() {
            let (sum, abs) =
                a_row.iter().zip(w_row).fold((0.0f64, 0.0f64), |(s, m), (&x, &y)| (s + x * y, m + (x * y).abs()));
            let b = bias.map_or(0.0, |b| b[j].to_f64());
            out.push(f16_from_f64_rn(sum + b));
            magnitude.push(abs + b.abs());
        }
    }
    Ok((out, magnitude))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounding_is_single_and_ties_to_even() {
        // Every f16 is exact; midpoints between neighbours round to the even one.
        for bits in 0u16..0x7bff {
            let v = f16::from_bits(bits);
            assert_eq!(f16_from_f64_rn(v.to_f64()).to_bits(), bits);
            let next = f16::from_bits(bits + 1).to_f64();
            let mid = (v.to_f64() + next) / 2.0;
            let even = if bits % 2 == 0 { bits } else { bits + 1 };
            assert_eq!(f16_from_f64_rn(mid).to_bits(), even, "midpoint above {v}");
            assert_eq!(f16_from_f64_rn(-mid).to_bits(), even | 0x8000);
            // Just above the midpoint rounds up, just below rounds down.
            assert_eq!(f16_from_f64_rn(mid + mid * 1e-12).to_bits(), bits + 1);
            assert_eq!(f16_from_f64_rn(mid - mid * 1e-12).to_bits(), bits);
        }
        assert!(f16_from_f64_rn(65520.0).is_infinite());
        assert_eq!(f16_from_f64_rn(65519.99).to_f64(), 65504.0);
    }

    #[test]
    fn gemm_references_reject_zero_and_overflowing_dimensions() {
        use FormatError::{ShapeOverflow, ZeroDimension};
        let big = 1usize << 63;
        assert_eq!(gemm_weight_only_reference(&[], &[], None, 1, 1, 0), Err(ZeroDimension { arg: "K" }));
        assert_eq!(gemm_weight_only_reference(&[], &[], None, 0, 1, 1), Err(ZeroDimension { arg: "M" }));
        // M·K wraps to 0: must not pass the length checks with empty operands.
        assert_eq!(gemm_weight_only_reference(&[], &[], None, 2, 2, big), Err(ShapeOverflow { rows: 2, cols: big }));
        let r = gemm_w8a8_reference(&[], &[1.0; 2], &[], &[1.0; 2], None, 2, 2, big);
        assert_eq!(r, Err(ShapeOverflow { rows: 2, cols: big }));
        assert_eq!(gemm_w8a8_reference(&[], &[], &[], &[], None, 1, 0, 1), Err(ZeroDimension { arg: "N" }));
        assert_eq!(gemm_w8a8_reference(&[], &[], &[], &[], None, 1, 1, 0), Err(ZeroDimension { arg: "K" }));
        // N·K overflowing with a valid M·K.
        let r = gemm_w8a8_reference(&[0; 2], &[1.0], &[], &[], None, 1, big, 2);
        assert_eq!(r, Err(ShapeOverflow { rows: big, cols: 2 }));
        // The outputs M·N (with K = 1) beyond one allocation.
        let r = gemm_weight_only_reference(&[], &[], None, 1 << 31, 1 << 31, 1);
        assert_eq!(r, Err(ShapeOverflow { rows: 1 << 31, cols: 1 << 31 }));
        // Still exact on a valid problem.
        let one = f16::ONE;
        let (c, mag) = gemm_weight_only_reference(&[one; 2], &[one; 2], None, 1, 1, 2).unwrap();
        assert_eq!((c, mag), (vec![f16::from_f32(2.0)], vec![2.0]));
    }

    #[test]
    fn ulp_matches_f16_spacing() {
        assert_eq!(f16_ulp(1.0), 2f64.powi(-10));
        assert_eq!(f16_ulp(1.5), 2f64.powi(-10));
        assert_eq!(f16_ulp(2.0), 2f64.powi(-9));
        assert_eq!(f16_ulp(1e-6), 2f64.powi(-24));
    }
}
