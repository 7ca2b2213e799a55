//! Errors of the simulator: interpreter/usage errors (`SimError`) kept apart from
//! faults of the simulated program (`Hazard`), which carry where they happened.

use std::fmt;

/// One memory access named in a hazard report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Thread index within the block (`%tid`).
    pub tid: [u32; 3],
    /// Warp index within the block.
    pub warp: u32,
    /// PTX source line of the instruction.
    pub line: u32,
    /// True for a write (stores, atomics, cp.async destinations).
    pub write: bool,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by thread ({},{},{}) warp {} at PTX line {}",
            if self.write { "write" } else { "read" },
            self.tid[0],
            self.tid[1],
            self.tid[2],
            self.warp,
            self.line
        )
    }
}

/// What went wrong in the simulated program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HazardKind {
    /// Access outside any allocation / past the block's shared size / past local memory.
    OutOfBounds {
        /// State space name (`global`, `shared`, `local`, `param`).
        space: &'static str,
        /// Access size in bytes.
        size: u32,
    },
    /// Address not a multiple of the access size.
    Misaligned {
        /// State space name.
        space: &'static str,
        /// Access size in bytes.
        size: u32,
    },
    /// Two threads touched the same shared bytes, one writing, with no barrier between.
    SharedRace {
        /// The earlier access.
        first: Access,
        /// The access that detected the race.
        second: Access,
    },
    /// Read of shared bytes never written.
    Uninitialized,
    /// Read of shared bytes that are the destination of a cp.async not yet waited for.
    CpAsyncNotWaited {
        /// The thread that issued the cp.async.
        issuer: [u32; 3],
        /// Line of the cp.async.
        issue_line: u32,
    },
    /// Barrier misuse: divergent barrier, or a barrier that can never complete.
    Barrier {
        /// What was observed.
        detail: String,
    },
    /// `trap` executed.
    Trap,
}

/// A fault of the simulated program, with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hazard {
    /// Kernel name.
    pub kernel: String,
    /// The kind of fault.
    pub kind: HazardKind,
    /// Block index (`%ctaid`).
    pub ctaid: [u32; 3],
    /// Thread index (`%tid`) of the faulting thread.
    pub tid: [u32; 3],
    /// PTX source line of the faulting instruction.
    pub line: u32,
    /// Address involved (space-relative for shared/local), if any.
    pub addr: Option<u64>,
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            HazardKind::OutOfBounds { space, size } => format!("out of bounds {space} access of {size} bytes"),
            HazardKind::Misaligned { space, size } => format!("misaligned {space} access of {size} bytes"),
            HazardKind::SharedRace { first, second } => {
                format!("shared-memory race: {first} and {second} with no barrier between")
            }
            HazardKind::Uninitialized => "read of uninitialized shared memory (never written)".to_string(),
            HazardKind::CpAsyncNotWaited { issuer, issue_line } => format!(
                "read of uninitialized shared memory: destination of a cp.async (thread ({},{},{}), PTX line {issue_line}) not waited for",
                issuer[0], issuer[1], issuer[2]
            ),
            HazardKind::Barrier { detail } => format!("barrier error: {detail}"),
            HazardKind::Trap => "trap executed".to_string(),
        };
        write!(
            f,
            "{what} in kernel `{}`, block ({},{},{}), thread ({},{},{}), PTX line {}",
            self.kernel, self.ctaid[0], self.ctaid[1], self.ctaid[2], self.tid[0], self.tid[1], self.tid[2], self.line
        )?;
        if let Some(a) = self.addr {
            write!(f, ", address {a:#x}")?;
        }
        Ok(())
    }
}

/// An error of the simulator: either a fault of the simulated program (`Hazard`,
/// `Deadlock`) or a usage/interpreter error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The PTX text could not be parsed.
    #[error("PTX parse error at line {line}: {message}")]
    Parse {
        /// Source line.
        line: u32,
        /// What was wrong.
        message: String,
    },
    /// An opcode the simulator does not know (reported at load time).
    #[error("unknown PTX instruction `{opcode}` at line {line}")]
    UnknownInstruction {
        /// The full opcode with modifiers.
        opcode: String,
        /// Source line.
        line: u32,
    },
    /// A known instruction used in a form the simulator does not implement.
    #[error("unsupported: {what} (PTX line {line})")]
    Unsupported {
        /// What is unsupported.
        what: String,
        /// Source line (0 when not tied to one).
        line: u32,
    },
    /// Kernel arguments do not match the parameters.
    #[error("bad kernel arguments for `{kernel}`: {message}")]
    BadArgs {
        /// Kernel name.
        kernel: String,
        /// What was wrong.
        message: String,
    },
    /// No `.entry` of that name.
    #[error("no kernel named `{0}` in the module")]
    UnknownKernel(String),
    /// A bad launch configuration (grid/block shape, shared size).
    #[error("bad launch configuration: {0}")]
    BadLaunch(String),
    /// Host-side memory API misuse (bad address or size).
    #[error("device memory error: {0}")]
    Memory(String),
    /// A fault of the simulated program.
    #[error("hazard: {0}")]
    Hazard(Box<Hazard>),
    /// No thread of any resident block can make progress.
    #[error("deadlock in kernel `{kernel}`: no resident block can make progress; waiting: {}", waiting.join("; "))]
    Deadlock {
        /// Kernel name.
        kernel: String,
        /// One entry per waiting block: block index and the PTX lines its warps wait at.
        waiting: Vec<String>,
    },
}
