//! `gospy info CORE`: the core's own notes, and the Go details of its
//! executable loaded exactly as an analysis would load it.

use super::session::Session;
use crate::sources::elfcore::{self, CoreInfo};
use anyhow::Result;
use std::path::Path;

/// What `gospy info` reports about a core file: its notes, and the Go
/// version and build ids of its executable when `bin` or the path recorded
/// in NT_FILE gives one that matches the core.
pub fn core_info(path: &Path, bin: Option<&Path>) -> Result<CoreInfo> {
    let mut info = elfcore::core_info(path)?;
    // The same loading (and build id check) as an analysis.
    match Session::open_file(path, bin) {
        Ok(s) => {
            info.binary = Some(s.binary_source.clone());
            info.go_version = Some(s.meta.go_version.clone());
            info.go_build_id = s.meta.go_build_id.clone();
            info.gnu_build_id = s.meta.gnu_build_id.clone();
            for w in s.load_warnings.iter().chain(&s.warnings) {
                if !info.warnings.contains(w) {
                    info.warnings.push(w.clone());
                }
            }
        }
        Err(e) => info.binary_error = Some(format!("{e:#}")),
    }
    Ok(info)
}
