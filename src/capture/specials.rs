//! `--heap`: the span specials lists (finalizer, cleanup and weak-handle
//! records, off-heap: fixalloc), which `heap::roots` turns into roots. Read
//! in the pause once the span structs are in memory, one bulk read per list
//! position (`heap::specials::SpecialsWalk`); lists are short (one record
//! per special of the span's objects), the records 48–56 bytes.

use super::rounds::Assembled;
use super::stats::CaptureStats;
use super::walk::PauseReader;
use crate::binary::elf::ImageMemory;
use crate::goruntime::bulk::drive;
use crate::goruntime::heap::specials::{SpecialsLayout, SpecialsWalk};
use crate::goruntime::heap::HeapTarget;
use crate::goruntime::Target;

/// Read rounds at most (the longest list: one round per record).
const MAX_ROUNDS: usize = 4096;

/// The layout, decided before the pause (`--heap` only); a warning when the
/// executable lacks it.
pub(super) fn layout(
    heap: bool,
    ht: Option<&HeapTarget>,
    t: &Target,
    warnings: &mut Vec<String>,
) -> Option<SpecialsLayout> {
    if !heap || ht.is_none() {
        return None;
    }
    match SpecialsLayout::from_binary(&t.bin) {
        Ok(l) => Some(l),
        Err(e) => {
            warnings.push(format!("finalizer and cleanup records not captured: {e}"));
            None
        }
    }
}

/// Reads every in-use span's specials list into `asm`.
#[allow(clippy::too_many_arguments)]
pub(super) fn read(
    pid: i32,
    ht: Option<&HeapTarget>,
    l: Option<&SpecialsLayout>,
    asm: &mut Assembled,
    image: &ImageMemory,
    stats: &mut CaptureStats,
    warnings: &mut Vec<String>,
) {
    let (Some(ht), Some(l)) = (ht, l) else {
        return;
    };
    let mut walk = SpecialsWalk::new(ht, l);
    let mut reader = PauseReader::new(pid, asm, image, stats);
    drive(&mut walk, &mut reader, MAX_ROUNDS, 4096);
    if walk.broken > 0 {
        warnings.push(format!(
            "{} span specials lists not read whole (unreadable record, cycle or bound): finalizers and cleanups past that point are not roots",
            walk.broken
        ));
    }
}
