//! gospy: inspect running Go programs without changing them.
//!
//! Analysis is a pure function of `(binary, memory)`: a live paused process,
//! a `.gss` snapshot or a fresh in-memory capture all go through the same
//! decoders ([`goruntime`]) and reports ([`report`]).

pub mod analyze;
pub mod binary;
pub mod capture;
pub mod cli;
#[doc(hidden)]
pub mod fuzzing;
pub mod goruntime;
pub mod memory;
pub mod model;
pub mod process;
pub mod report;
pub mod sources;
pub mod text;

/// The `.gss` reader and writer, where library users have always found it.
pub use sources::snapshot;

// Linked in for `cli::analysis_memory_mode` (mimalloc is the binary's
// global allocator; its options are set through the C API).
extern crate mimalloc;
