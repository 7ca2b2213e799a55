//! PTX simulator (work in progress).

pub mod semantics;
