//! Pure semantics of PTX operations: functions of register values with no machine
//! state, each written from the PTX ISA text and tested on its own.

pub mod bits;
pub mod convert;
pub mod float;
pub mod mma;
pub mod types;
pub mod warp;
pub mod wgmma;
