//! `.gss` snapshot files as an input: the reader itself is `snapshot/`.

use super::snapshot::SnapshotFile;
use super::source::{ExeHint, Source, SourceMemory};
use crate::memory::Memory;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::sync::Arc;

/// Open a snapshot file: its metadata and indexes now, its memory (and
/// embedded executable) when asked for.
pub fn open(path: &Path) -> Result<Source> {
    let snap = SnapshotFile::open(path).with_context(|| format!("{}", path.display()))?;
    let meta = snap.meta.clone();
    // Say what a redacted snapshot no longer holds.
    let warnings = meta
        .warnings
        .iter()
        .filter(|w| super::snapshot::format::is_redaction_note(w))
        .cloned()
        .collect();
    let snap = Arc::new(snap);
    let embedded = snap.has_binary().then(|| {
        let snap = snap.clone();
        Box::new(move || {
            snap.binary()
                .context("reading the embedded executable")?
                .ok_or_else(|| anyhow!("embedded executable missing"))
        }) as super::source::ReadEmbedded
    });
    let memory = SourceMemory::Deferred(Box::new(move || {
        let loaded = snap.memory().context("decompressing snapshot memory")?;
        Ok((Box::new(loaded.memory) as Box<dyn Memory>, loaded.warnings))
    }));
    Ok(Source {
        meta,
        exe: ExeHint::Recorded { embedded },
        memory,
        warnings,
    })
}
