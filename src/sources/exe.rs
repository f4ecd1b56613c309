//! Finding the executable of an input (`--bin`, the copy embedded in a
//! snapshot, the path recorded at capture, a core's NT_FILE mapping of
//! AT_ENTRY) and checking that it is the one that ran: build ids against the
//! recorded ones, or against the notes a core holds in its memory, and the
//! stripped-twin rule for live targets. Every such check is here.

use super::source::{ExeHint, SourceMemory};
use crate::binary::elf::ElfFile;
use crate::binary::Binary;
use crate::model::CaptureMeta;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::sync::Arc;

/// The executable found for an input.
pub struct Exe {
    pub binary: Arc<Binary>,
    /// Where it came from, for `info` and error messages.
    pub source: String,
}

/// Refuse a binary whose build ids differ from the recorded ones.
pub fn check_build_ids(
    elf: &ElfFile,
    go_id: Option<&str>,
    gnu_id: Option<&str>,
    what: &str,
) -> Result<()> {
    let go_ok = match (go_id, elf.go_build_id.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let gnu_ok = match (gnu_id, elf.gnu_build_id.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let any_compared = (go_id.is_some() && elf.go_build_id.is_some())
        || (gnu_id.is_some() && elf.gnu_build_id.is_some());
    if go_ok && gnu_ok && any_compared {
        return Ok(());
    }
    Err(anyhow!(
        "build id mismatch: {what} was built as {} but the binary offered has {}; pass --bin with the exact executable that ran (same source, Go version and flags), or capture with --embed-binary",
        crate::binary::elf::build_id_string(go_id, gnu_id),
        elf.build_id_string()
    ))
}

/// `--bin` for a live target (`running` is its /proc/PID/exe): the same
/// build, or the unstripped build of a `-s -w` target, which differs in
/// build id only because of the strip flags.
pub fn check_live_bin(running: &ElfFile, offered: &ElfFile, pid: i32) -> Result<()> {
    if let Err(e) = check_build_ids(
        offered,
        running.go_build_id.as_deref(),
        running.gnu_build_id.as_deref(),
        &format!("pid {pid}"),
    ) {
        if let Err(why) = crate::binary::twin::check_stripped_twin(running, offered) {
            return Err(anyhow!(
                "{e} (and it is not the same build without -s -w: {why})"
            ));
        }
    }
    Ok(())
}

/// The executable of an input: `bin` when given, else what `hint` says.
/// For a core, also fills in the metadata that comes from the executable
/// (build ids, Go version, load bias, and the path when NT_FILE has none).
pub fn find(
    hint: ExeHint,
    meta: &mut CaptureMeta,
    memory: &SourceMemory,
    warnings: &mut Vec<String>,
    bin: Option<&Path>,
) -> Result<Exe> {
    match hint {
        ExeHint::Loaded(binary) => Ok(Exe {
            binary,
            source: "live".into(),
        }),
        ExeHint::Recorded { embedded } => {
            let (b, source) = find_recorded(meta, embedded, bin)?;
            Ok(Exe {
                binary: Arc::new(b),
                source,
            })
        }
        ExeHint::Mapped {
            path,
            has_entry,
            lowest_map,
        } => {
            let (b, source) = match bin {
                Some(p) => (Binary::from_path(p)?, p.display().to_string()),
                None => {
                    let orig = path.clone().unwrap_or_default();
                    let p = Path::new(orig.trim_end_matches(" (deleted)"));
                    if orig.is_empty() || !p.exists() {
                        return Err(anyhow!(
                            "cannot find the executable of this core: {orig:?} does not exist here; pass --bin PATH"
                        ));
                    }
                    (Binary::from_path(p)?, orig)
                }
            };
            if b.elf.arch != meta.arch {
                return Err(anyhow!(
                    "{source} is for {} but the core file is for {}; pass --bin with the executable that crashed",
                    b.elf.arch.goarch(),
                    meta.arch.goarch()
                ));
            }
            let bias = core_load_bias(&b, &meta.auxv, has_entry, lowest_map, warnings);
            if let SourceMemory::Ready(m) = memory {
                verify_core_notes(&b, m.as_ref(), bias, warnings)?;
            }
            meta.go_build_id = b.elf.go_build_id.clone();
            meta.gnu_build_id = b.elf.gnu_build_id.clone();
            meta.go_version = b.go_version.clone();
            meta.load_bias = bias;
            meta.exe_path = path.unwrap_or_else(|| source.clone());
            Ok(Exe {
                binary: Arc::new(b),
                source,
            })
        }
    }
}

/// A snapshot's executable: `--bin`, else the embedded copy, else the path
/// recorded at capture; each checked against the recorded build ids.
fn find_recorded(
    meta: &CaptureMeta,
    embedded: Option<super::source::ReadEmbedded>,
    bin: Option<&Path>,
) -> Result<(Binary, String)> {
    let what = format!("the snapshot's program (pid {})", meta.pid);
    let check = |b: &Binary| {
        check_build_ids(
            &b.elf,
            meta.go_build_id.as_deref(),
            meta.gnu_build_id.as_deref(),
            &what,
        )
    };
    if let Some(p) = bin {
        let b = Binary::from_path(p)?;
        check(&b)?;
        return Ok((b, p.display().to_string()));
    }
    if let Some(read) = embedded {
        let data = read()?;
        let b = Binary::from_bytes(Arc::from(data)).context("loading the embedded executable")?;
        check(&b)?;
        return Ok((b, "embedded".to_string()));
    }
    let orig = meta.exe_path.trim_end_matches(" (deleted)").to_string();
    let p = Path::new(&orig);
    if !orig.is_empty() && p.exists() {
        let b = Binary::from_path(p)?;
        return match check(&b) {
            Ok(()) => Ok((b, orig)),
            Err(e) => from_live_process(meta, &orig, &check)
                .ok_or_else(|| e.context(format!("{orig} has changed since the capture"))),
        };
    }
    if let Some(found) = from_live_process(meta, &orig, &check) {
        return Ok(found);
    }
    Err(anyhow!(
        "cannot find the executable for this snapshot: {orig:?} does not exist here (build id {}); pass --bin PATH to the same executable, or capture with --embed-binary",
        crate::binary::elf::build_id_string(meta.go_build_id.as_deref(), meta.gnu_build_id.as_deref())
    ))
}

/// The captured process, when it still runs here (a container's, whose
/// path means nothing in our mount namespace, or a deleted executable):
/// its executable through /proc/PID/exe or /proc/PID/root, accepted only
/// with the recorded build ids (the pid may have been reused).
fn from_live_process(
    meta: &CaptureMeta,
    orig: &str,
    check: &dyn Fn(&Binary) -> Result<()>,
) -> Option<(Binary, String)> {
    if meta.pid <= 0 {
        return None;
    }
    let mut candidates = vec![format!("/proc/{}/exe", meta.pid)];
    if orig.starts_with('/') {
        candidates.push(format!("/proc/{}/root{orig}", meta.pid));
    }
    candidates.into_iter().find_map(|c| {
        let b = Binary::from_path(Path::new(&c)).ok()?;
        check(&b).ok()?;
        Some((b, c))
    })
}

/// A core's load bias: from AT_ENTRY, else (non-PIE) zero, else the lowest
/// mapping of the executable minus its lowest segment.
fn core_load_bias(
    binary: &Binary,
    auxv: &[(u64, u64)],
    has_entry: bool,
    lowest_map: Option<u64>,
    warnings: &mut Vec<String>,
) -> u64 {
    if has_entry {
        return binary.load_bias(auxv);
    }
    if !binary.elf.is_pie {
        return 0;
    }
    let lo_seg = binary
        .elf
        .segments
        .iter()
        .map(|s| s.vaddr)
        .min()
        .unwrap_or(0);
    warnings.push("no auxiliary vector in the core: load bias guessed from its mappings".into());
    lowest_map.map_or(0, |m| m.wrapping_sub(lo_seg & !0xfff))
}

/// Compare the build-id notes of the executable with the bytes the core holds
/// at the same (biased) addresses. Mismatch is an error; a core without those
/// pages only gets a warning.
fn verify_core_notes(
    bin: &Binary,
    mem: &dyn crate::memory::Memory,
    bias: u64,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut compared = false;
    for name in [".note.go.buildid", ".note.gnu.build-id"] {
        let (Some(sec), Some(want)) = (bin.elf.section(name), bin.elf.section_data(name)) else {
            continue;
        };
        let mut got = vec![0u8; want.len()];
        if mem
            .read_exact(sec.addr.wrapping_add(bias), &mut got)
            .is_err()
        {
            continue;
        }
        compared = true;
        if got != want {
            return Err(anyhow!(
                "build id mismatch: the core's copy of {name} differs from the binary offered ({}); pass --bin with the exact executable that crashed",
                bin.elf.build_id_string()
            ));
        }
    }
    if !compared {
        warnings.push(
            "the core does not contain the executable's build-id notes: cannot verify that the binary matches".into(),
        );
    }
    Ok(())
}

/// Why live process `pid`'s executable cannot be opened, from this machine,
/// at the path its `/proc/PID/exe` link names; None when that path is the
/// very file the process runs (same device and inode), or when the link
/// cannot be read at all (the capture itself then fails with the reason).
/// The path may be missing (the target runs in another mount namespace: a
/// container), another file (a container's path that also exists on the
/// host, or a binary replaced on disk) or deleted. Such a snapshot can only
/// be analyzed with its executable embedded, or with `--bin`.
pub fn exe_not_here(pid: i32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let link = format!("/proc/{pid}/exe");
    let shown = std::fs::read_link(&link).ok()?;
    let shown = shown.to_string_lossy().into_owned();
    let running = std::fs::metadata(&link).ok()?;
    let path = shown.strip_suffix(" (deleted)").unwrap_or(&shown);
    match std::fs::metadata(path) {
        Ok(m) if m.dev() == running.dev() && m.ino() == running.ino() => None,
        Ok(_) if shown.ends_with(" (deleted)") => {
            Some(format!("{path} was replaced after the process started"))
        }
        Ok(_) => Some(format!(
            "{path} here is another file: the target runs in another mount namespace"
        )),
        Err(_) if shown.ends_with(" (deleted)") => {
            Some(format!("{path} was deleted after the process started"))
        }
        Err(_) => Some(format!(
            "{path} does not exist here: the target runs in another mount namespace"
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_executable_is_here() {
        assert_eq!(super::exe_not_here(std::process::id() as i32), None);
        // No such process: nothing to say (the capture reports it).
        assert_eq!(super::exe_not_here(i32::MAX), None);
    }
}
