//! Scalar types and rounding modes of PTX instructions, shared by the parser, the
//! decoded instruction form and the pure semantics functions.

/// A PTX fundamental type as written in an instruction's type suffix (PTX ISA
/// "Fundamental Types"), plus the packed half-precision pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// `.pred`
    Pred,
    /// `.b8`
    B8,
    /// `.b16`
    B16,
    /// `.b32`
    B32,
    /// `.b64`
    B64,
    /// `.b128`
    B128,
    /// `.u8`
    U8,
    /// `.u16`
    U16,
    /// `.u32`
    U32,
    /// `.u64`
    U64,
    /// `.s8`
    S8,
    /// `.s16`
    S16,
    /// `.s32`
    S32,
    /// `.s64`
    S64,
    /// `.f16`
    F16,
    /// `.f16x2` (two f16 in one 32-bit register, element 0 in the low half)
    F16x2,
    /// `.bf16`
    Bf16,
    /// `.bf16x2`
    Bf16x2,
    /// `.f32`
    F32,
    /// `.f64`
    F64,
    /// `.s4` (mma operands only, 8 per 32-bit register)
    S4,
    /// `.u4` (mma operands only, 8 per 32-bit register)
    U4,
}

impl ScalarType {
    /// Size in bits of one value of this type in a register (packed types count the
    /// whole register; `.pred` counts 1).
    pub fn bits(self) -> u32 {
        use ScalarType::*;
        match self {
            Pred => 1,
            S4 | U4 => 4,
            B8 | U8 | S8 => 8,
            B16 | U16 | S16 | F16 | Bf16 => 16,
            B32 | U32 | S32 | F32 | F16x2 | Bf16x2 => 32,
            B64 | U64 | S64 | F64 => 64,
            B128 => 128,
        }
    }

    /// True for the signed integer types.
    pub fn is_signed_int(self) -> bool {
        matches!(self, ScalarType::S4 | ScalarType::S8 | ScalarType::S16 | ScalarType::S32 | ScalarType::S64)
    }

    /// True for the floating-point types (scalar or packed).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            ScalarType::F16
                | ScalarType::F16x2
                | ScalarType::Bf16
                | ScalarType::Bf16x2
                | ScalarType::F32
                | ScalarType::F64
        )
    }

    /// Parses a type suffix without its dot (`"u32"`, `"f16x2"`).
    pub fn from_suffix(s: &str) -> Option<ScalarType> {
        use ScalarType::*;
        Some(match s {
            "pred" => Pred,
            "b8" => B8,
            "b16" => B16,
            "b32" => B32,
            "b64" => B64,
            "b128" => B128,
            "u8" => U8,
            "u16" => U16,
            "u32" => U32,
            "u64" => U64,
            "s8" => S8,
            "s16" => S16,
            "s32" => S32,
            "s64" => S64,
            "f16" => F16,
            "f16x2" => F16x2,
            "bf16" => Bf16,
            "bf16x2" => Bf16x2,
            "f32" => F32,
            "f64" => F64,
            "s4" => S4,
            "u4" => U4,
            _ => return None,
        })
    }
}

/// Rounding modifier of a floating-point instruction or conversion (PTX ISA
/// "Rounding Modifiers"). The `*i` forms round to an integral value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// `.rn`: to nearest, ties to even.
    Rn,
    /// `.rz`: toward zero.
    Rz,
    /// `.rm`: toward negative infinity.
    Rm,
    /// `.rp`: toward positive infinity.
    Rp,
    /// `.rna`: to nearest, ties away from zero (cvt to tf32/f8 only).
    Rna,
    /// `.rni`: to nearest integer, ties to even.
    Rni,
    /// `.rzi`: to integer toward zero.
    Rzi,
    /// `.rmi`: to integer toward negative infinity.
    Rmi,
    /// `.rpi`: to integer toward positive infinity.
    Rpi,
}

impl Rounding {
    /// Parses a rounding suffix without its dot (`"rn"`, `"rzi"`).
    pub fn from_suffix(s: &str) -> Option<Rounding> {
        use Rounding::*;
        Some(match s {
            "rn" => Rn,
            "rz" => Rz,
            "rm" => Rm,
            "rp" => Rp,
            "rna" => Rna,
            "rni" => Rni,
            "rzi" => Rzi,
            "rmi" => Rmi,
            "rpi" => Rpi,
            _ => return None,
        })
    }
}
