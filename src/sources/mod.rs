//! Every input gospy analyzes, opened into one value ([`Source`]): capture
//! metadata, memory, where the executable may be found, and warnings. A `.gss`
//! snapshot, an ELF core (gcore, kernel, systemd-coredump `.zst`) and an
//! in-memory capture all look the same from here on.
//!
//! Files are told apart by their content, by the first opener of
//! [`OPENERS`] that claims them (delve's `openFns` is the model): a new input
//! format is one file here plus one entry in that list.
//!
//! Depends on `binary` and `memory` only, never on the decoders above.

pub mod elfcore;
pub mod exe;
pub mod gss;
pub mod snapshot;
pub mod source;
pub mod write_core;

pub use source::{over_image, ExeHint, SessionMemory, Source, SourceMemory};

use crate::binary::Binary;
use crate::memory::SparseMemory;
use crate::model::Capture;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

/// One input format.
pub struct Opener {
    pub name: &'static str,
    /// Whether a file starting with these bytes (at most [`HEAD_LEN`], fewer
    /// for a shorter file) is this format's.
    pub claims: fn(head: &[u8]) -> bool,
    pub open: fn(path: &Path) -> Result<Source>,
}

/// How many leading bytes the openers decide by.
pub const HEAD_LEN: usize = 64;

/// Tried in order; the last one claims every file, so that an unknown file
/// gets the snapshot reader's explanation (bad magic, truncated...).
pub const OPENERS: &[Opener] = &[
    Opener {
        name: "ELF core",
        claims: elfcore::claims,
        open: elfcore::open,
    },
    Opener {
        name: "gospy snapshot",
        claims: |_| true,
        open: gss::open,
    },
];

/// The opener that claims the file at `path` (the last one when it cannot
/// be read: its error says why).
pub fn opener_for(path: &Path) -> &'static Opener {
    let head = read_head(path);
    OPENERS
        .iter()
        .find(|o| (o.claims)(&head))
        .unwrap_or(&OPENERS[OPENERS.len() - 1])
}

/// Open the file at `path`, whatever its format.
pub fn open(path: &Path) -> Result<Source> {
    (opener_for(path).open)(path)
}

/// Up to [`HEAD_LEN`] leading bytes of the file; empty when unreadable.
fn read_head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut head = Vec::with_capacity(HEAD_LEN);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(HEAD_LEN as u64).read_to_end(&mut head);
    }
    head
}

/// A fresh in-memory capture of a live process, with the executable it was
/// taken with.
pub fn from_capture(cap: Capture, bin: Arc<Binary>) -> Source {
    let sparse = SparseMemory::new(
        cap.regions
            .into_iter()
            .map(|r| (r.addr, Arc::<[u8]>::from(r.data)))
            .collect(),
    );
    Source {
        warnings: cap.meta.warnings.clone(),
        meta: cap.meta,
        exe: ExeHint::Loaded(bin),
        memory: SourceMemory::Ready(Box::new(sparse)),
    }
}
