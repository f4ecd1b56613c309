//! A session: one input's memory with its executable, ready for the
//! decoders. [`Session::open`] is the only way to build one.

use crate::goruntime::{Runtime, Target};
use crate::model::CaptureMeta;
use crate::sources::{exe, over_image, SessionMemory, Source};
use anyhow::Result;
use std::path::Path;

pub struct Session {
    pub meta: CaptureMeta,
    pub target: Target,
    pub mem: SessionMemory,
    /// Problems found while loading (damaged chunks...), shown to the user.
    pub warnings: Vec<String>,
    /// About the executable and its layouts (a Go version outside the
    /// supported range, unreadable DWARF, approximate layouts), from loading
    /// them; shown before `warnings`.
    pub load_warnings: Vec<String>,
    /// Where the executable came from, for `info` and error messages.
    pub binary_source: String,
}

impl Session {
    /// A session on any opened input (`sources::open` for a file,
    /// `sources::from_capture` for a live capture). `bin` (`--bin`) takes
    /// precedence over where the input says its executable is.
    pub fn open(src: Source, bin: Option<&Path>) -> Result<Session> {
        let Source {
            mut meta,
            exe: hint,
            memory,
            warnings: mut found,
        } = src;
        let exe = exe::find(hint, &mut meta, &memory, &mut found, bin)?;
        let (memory, mut warnings) = memory.load()?;
        warnings.append(&mut found);
        let target = Target::new(exe.binary.clone(), meta.load_bias)?;
        let mem = over_image(memory, &exe.binary.elf, meta.load_bias);
        let mut load_warnings = exe.binary.warnings.clone();
        load_warnings.extend(target.warnings.iter().cloned());
        Ok(Session {
            load_warnings,
            meta,
            target,
            mem,
            warnings,
            binary_source: exe.source,
        })
    }

    /// [`Session::open`] on the file at `path` (a snapshot or a core).
    pub fn open_file(path: &Path, bin: Option<&Path>) -> Result<Session> {
        Session::open(crate::sources::open(path)?, bin)
    }

    pub fn runtime(&self) -> Runtime<'_, &SessionMemory> {
        Runtime::new(&self.target, &self.mem)
    }
}
