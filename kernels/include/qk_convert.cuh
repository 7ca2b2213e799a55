/*
 * qk_convert.cuh — register-level conversions between quantized integers and f16.
 */
#ifndef QK_CONVERT_CUH
#define QK_CONVERT_CUH

#include <cuda_fp16.h>
#include <stdint.h>

/* f16 0x6400 is 1024.0 with a zero 10-bit mantissa; OR-ing a 4-bit value v into the
 * low mantissa bits gives exactly 1024 + v (the ulp at 1024 is 1). */
#define QK_F16X2_MAGIC_1024 0x64006400u
/* Selects the low nibble of each 16-bit half. */
#define QK_NIBBLE_MASK_X2 0x000f000fu
/* lop3 truth table of (a & b) | c, built from the canonical operand tables
 * a = 0xF0, b = 0xCC, c = 0xAA (PTX ISA "lop3"). */
#define QK_LOP3_AND_OR ((0xF0 & 0xCC) | 0xAA)

/* Selects bits 4-7 of each 16-bit half: the second nibble of each half's low byte. */
#define QK_HIGH_NIBBLE_MASK_X2 0x00f000f0u

/* (word & MASK) | 0x64006400 in one lop3 instead of two ALU ops: the masked bits land
 * in the mantissas of two f16 that are 1024 plus those bits' value. */
template <uint32_t MASK>
__device__ __forceinline__ uint32_t qk_masked_into_f16x2_1024(uint32_t word) {
    uint32_t out;
    asm("lop3.b32 %0, %1, %2, %3, %4;"
        : "=r"(out)
        : "r"(word), "n"(MASK), "n"(QK_F16X2_MAGIC_1024), "n"(QK_LOP3_AND_OR));
    return out;
}

/* Two nibbles -> two f16 holding 1024 + nibble. Takes the nibbles at bit offsets 0 and
 * 16 of `word`. */
__device__ __forceinline__ uint32_t qk_nibbles_to_f16x2_biased(uint32_t word) {
    return qk_masked_into_f16x2_1024<QK_NIBBLE_MASK_X2>(word);
}

/* The nibbles at bit offsets 4 and 20 of `word` -> two f16 holding 1024 + 16 * nibble,
 * with the same single lop3: the nibble lands on mantissa bits 4-7, and 16 * 15 < 1024
 * keeps it inside the mantissa at ulp 1. Used with qk_nibbles_to_f16x2_biased, one
 * shift of the word by 8 serves four nibble pairs instead of three shifts (Marlin's
 * trick); the caller undoes the factor 16 exactly (a power of two) in an fma. */
__device__ __forceinline__ uint32_t qk_high_nibbles_to_f16x2_biased16(uint32_t word) {
    return qk_masked_into_f16x2_1024<QK_HIGH_NIBBLE_MASK_X2>(word);
}

/* Interleaves the low (selector 0x5410) or high (0x7632) halves of two registers:
 * prmt picks bytes of the 8-byte value {b, a} by the selector's nibbles (PTX ISA
 * "prmt", default mode), so 0x5410 = {a.lo, b.lo} and 0x7632 = {a.hi, b.hi}. */
#define QK_PRMT_LOW_HALVES 0x5410
#define QK_PRMT_HIGH_HALVES 0x7632
__device__ __forceinline__ uint32_t qk_prmt(uint32_t a, uint32_t b, uint32_t selector) {
    uint32_t out;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(out) : "r"(a), "r"(b), "r"(selector));
    return out;
}

/* Two unsigned bytes -> two f16 holding 1024 + byte. prmt picks bytes of {b, a} by the
 * selector's nibbles (PTX ISA "prmt", default mode): with a = word and b = 0x64646464,
 * selector 0x4140 builds {word.byte0, 0x64, word.byte1, 0x64} and 0x4342 the same from
 * bytes 2 and 3. 0x64NN is the f16 1024 + NN (the ulp at 1024 is 1 and NN < 256 fits the
 * 10-bit mantissa), exact like the nibble trick above. */
#define QK_F16X2_MAGIC_BYTES 0x64646464u
#define QK_PRMT_BYTES_01_F16 0x4140
#define QK_PRMT_BYTES_23_F16 0x4342
__device__ __forceinline__ uint32_t qk_bytes_to_f16x2_biased(uint32_t word, uint32_t selector) {
    return qk_prmt(word, QK_F16X2_MAGIC_BYTES, selector);
}

/* Replicates the low (selector 0x1010) or high (0x3232) half of a register into both
 * halves: a scale or zero point shared by the two K elements of a b register. */
#define QK_PRMT_DUP_LOW_HALF 0x1010
#define QK_PRMT_DUP_HIGH_HALF 0x3232

__device__ __forceinline__ __half2 qk_as_half2(uint32_t bits) {
    return *reinterpret_cast<__half2*>(&bits);
}
__device__ __forceinline__ uint32_t qk_half2_bits(__half2 h) {
    return *reinterpret_cast<uint32_t*>(&h);
}

#endif /* QK_CONVERT_CUH */
