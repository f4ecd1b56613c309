//! The one place that decides where an executable's runtime layouts come
//! from: its DWARF when present, else the measured per-version tables.
//! Every layout decoder (goroutines, heap, wait objects, recovered globals)
//! asks here, so a stripped binary gets the same answer and the same
//! warning everywhere.

use super::fallback::Tables;
use super::source::LayoutSource;
use crate::binary::dwarf::Dwarf;
use crate::binary::Binary;
use anyhow::{anyhow, Result};

/// The layout source chosen for one executable.
pub struct Layouts<'b> {
    source: Source<'b>,
}

enum Source<'b> {
    Dwarf(&'b Dwarf),
    Tables(Tables),
}

impl<'b> Layouts<'b> {
    /// DWARF when the executable has it, else the tables for its Go version;
    /// an error when it has neither.
    pub fn for_binary(bin: &'b Binary) -> Result<Layouts<'b>> {
        if let Some(d) = bin.dwarf() {
            return Ok(Layouts {
                source: Source::Dwarf(d),
            });
        }
        let t = Tables::for_target(bin.go, bin.elf.arch).ok_or_else(|| {
            anyhow!("the executable has no DWARF debug info and gospy has no runtime layout tables for {}: pass an unstripped build of the same source with --bin", bin.go_version)
        })?;
        Ok(Layouts {
            source: Source::Tables(t),
        })
    }

    /// The chosen source, for the layout decoders.
    pub fn source(&self) -> &dyn LayoutSource {
        match &self.source {
            Source::Dwarf(d) => *d,
            Source::Tables(t) => t,
        }
    }

    /// The DWARF, when that is the choice (for what only DWARF knows:
    /// constants, global types).
    pub fn dwarf(&self) -> Option<&'b Dwarf> {
        match self.source {
            Source::Dwarf(d) => Some(d),
            Source::Tables(_) => None,
        }
    }

    /// The tables, when that is the choice.
    pub fn tables(&self) -> Option<&Tables> {
        match &self.source {
            Source::Dwarf(_) => None,
            Source::Tables(t) => Some(t),
        }
    }

    /// Why the layouts are approximate (the target's Go version was not
    /// measured and a neighbour's tables stand in), to show the user once.
    pub fn warning(&self) -> Option<&str> {
        self.tables()?.approximation.as_deref()
    }
}
