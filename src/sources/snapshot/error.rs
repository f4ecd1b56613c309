//! The snapshot reader's and writer's errors, shared by the container code
//! (mod.rs) and the encoder (format.rs) without either importing the other.

use std::io;

/// Everything that can go wrong reading or writing a snapshot. Messages are
/// one line, meant to be shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("not a gospy snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format version {found} is newer than this gospy supports ({supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("snapshot needs features this gospy does not support (required flags {flags:#x}); a newer gospy can read it")]
    UnsupportedFeatures { flags: u32 },
    #[error("truncated snapshot: header says {expected} bytes, file has {actual}")]
    Truncated { expected: u64, actual: u64 },
    #[error(
        "snapshot is longer than its header says: header says {expected} bytes, file has {actual}"
    )]
    TrailingData { expected: u64, actual: u64 },
    #[error("checksum mismatch in {what}")]
    Checksum { what: String },
    /// One chunk could not be loaded; `regions` describes what it holds.
    #[error("{problem} in chunk {chunk} ({regions})")]
    DamagedChunk {
        chunk: u32,
        problem: String,
        regions: String,
    },
    #[error("embedded binary is damaged: {0}")]
    DamagedBinary(String),
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    #[error("snapshot exceeds this reader's limits: {0}")]
    Limit(String),
    #[error("cannot encode snapshot: {0}")]
    Encode(String),
    #[error("cannot write snapshot: {0}")]
    InvalidCapture(String),
}
