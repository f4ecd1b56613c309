//! The value every input yields once opened: capture metadata, memory,
//! where the executable may be found, and warnings. Kept apart from the
//! openers so that each of them, and `exe.rs`, can use it without cycles.

use crate::binary::elf::{ElfFile, ImageMemory};
use crate::binary::Binary;
use crate::memory::{Layered, Memory};
use crate::model::CaptureMeta;
use anyhow::Result;
use std::sync::Arc;

/// An opened input (a snapshot file, an ELF core, an in-memory capture),
/// ready for `exe::find` and then `analyze::Session::open`.
pub struct Source {
    /// For a core, the fields that come from the executable (build ids, Go
    /// version, load bias) are filled in when it is found.
    pub meta: CaptureMeta,
    pub exe: ExeHint,
    pub memory: SourceMemory,
    /// Problems found so far, shown to the user after the memory's own.
    pub warnings: Vec<String>,
}

/// Reads the embedded executable's bytes (decompressing them).
pub type ReadEmbedded = Box<dyn FnOnce() -> Result<Vec<u8>>>;
/// Loads captured memory, with warnings about what could not be loaded.
pub type LoadMemory = Box<dyn FnOnce() -> Result<(Box<dyn Memory>, Vec<String>)>>;

/// The captured memory, or how to load it. A snapshot decompresses its
/// memory only once its executable is found: a missing executable is
/// reported first, and fast.
pub enum SourceMemory {
    Ready(Box<dyn Memory>),
    Deferred(LoadMemory),
}

impl SourceMemory {
    /// The memory, and warnings about damaged parts of it.
    pub fn load(self) -> Result<(Box<dyn Memory>, Vec<String>)> {
        match self {
            SourceMemory::Ready(m) => Ok((m, Vec::new())),
            SourceMemory::Deferred(f) => f(),
        }
    }
}

/// Where the executable may be found, besides `--bin`.
pub enum ExeHint {
    /// Recorded at capture (a snapshot): its embedded copy, else the path in
    /// `meta.exe_path`; checked against the build ids in `meta`.
    Recorded { embedded: Option<ReadEmbedded> },
    /// Mapped in a core: `path` is the NT_FILE mapping of AT_ENTRY (else of
    /// file offset 0); checked against the build-id notes in the core's
    /// memory. Also what the load bias is derived from.
    Mapped {
        path: Option<String>,
        /// The core has AT_ENTRY in its auxiliary vector (`meta.auxv`).
        has_entry: bool,
        /// Lowest address at which `path` is mapped.
        lowest_map: Option<u64>,
    },
    /// Already loaded (an in-memory capture of a live process).
    Loaded(Arc<Binary>),
}

/// Captured memory (a snapshot's regions, a core's segments...) over the
/// executable's read-only image.
pub type SessionMemory = Layered<Box<dyn Memory>, ImageMemory>;

/// `first`, falling back to the image of `elf` loaded at `bias`.
pub fn over_image<M: Memory>(first: M, elf: &ElfFile, bias: u64) -> Layered<M, ImageMemory> {
    Layered {
        first,
        second: ImageMemory {
            elf: elf.clone(),
            bias,
        },
    }
}
