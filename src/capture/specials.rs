//! `--heap`: the span specials lists (finalizer, cleanup and weak-handle
//! records, off-heap: fixalloc), which `heap::roots` turns into roots. Read
//! in the pause once the span structs are in memory, one bulk read per list
//! position (`heap::specials::SpecialsWalk`); lists are short (one record
//! per special of the span's objects), the records 48–56 bytes. Then the
//! finalizer queue's blocks (`runtime.allfin`, persistentalloc'd, 4 KiB
//! each) and, Go 1.25+, the cleanup queue's (`runtime.gcCleanups`, 512
//! bytes each): what they queued to run is a root too.

use super::rounds::Assembled;
use super::stats::CaptureStats;
use super::walk::PauseReader;
use crate::binary::elf::ImageMemory;
use crate::goruntime::bulk::drive;
use crate::goruntime::heap::specials::{
    allfin_addr, cleanup_queue, ChainWalk, SpecialsLayout, SpecialsWalk,
};
use crate::goruntime::heap::HeapTarget;
use crate::goruntime::version::specials::CleanupQueueLayout;
use crate::goruntime::Target;

/// Read rounds at most (the longest list: one round per record).
const MAX_ROUNDS: usize = 4096;

/// What the pause needs, decided before it (`--heap` only).
pub(super) struct SpecialsPlan {
    layout: Option<SpecialsLayout>,
    allfin: Option<u64>,
    cleanups: Option<(u64, CleanupQueueLayout)>,
}

/// The plan; a warning when the executable lacks the layout.
pub(super) fn plan(
    heap: bool,
    ht: Option<&HeapTarget>,
    t: &Target,
    warnings: &mut Vec<String>,
) -> Option<SpecialsPlan> {
    if !heap || ht.is_none() {
        return None;
    }
    let layout = match SpecialsLayout::from_binary(&t.bin) {
        Ok(l) => Some(l),
        Err(e) => {
            warnings.push(format!("finalizer and cleanup records not captured: {e}"));
            None
        }
    };
    Some(SpecialsPlan {
        layout,
        allfin: allfin_addr(t),
        cleanups: cleanup_queue(t),
    })
}

/// Reads every in-use span's specials list and the finalizer queue into
/// `asm`.
pub(super) fn read(
    pid: i32,
    ht: Option<&HeapTarget>,
    plan: Option<&SpecialsPlan>,
    asm: &mut Assembled,
    image: &ImageMemory,
    stats: &mut CaptureStats,
    warnings: &mut Vec<String>,
) {
    let (Some(ht), Some(plan)) = (ht, plan) else {
        return;
    };
    let mut reader = PauseReader::new(pid, asm, image, stats);
    if let Some(l) = plan.layout.as_ref() {
        let mut walk = SpecialsWalk::new(ht, l);
        drive(&mut walk, &mut reader, MAX_ROUNDS, 4096);
        if walk.broken > 0 {
            warnings.push(format!(
                "{} span specials lists not read whole (unreadable record, cycle or bound): finalizers and cleanups past that point are not roots",
                walk.broken
            ));
        }
    }
    let chains = [
        plan.allfin
            .map(|a| ("finalizer queue (runtime.allfin)", ChainWalk::finalizers(a))),
        plan.cleanups.map(|(a, l)| {
            (
                "cleanup queue (runtime.gcCleanups)",
                ChainWalk::cleanups(a, &l),
            )
        }),
    ];
    for (what, mut walk) in chains.into_iter().flatten() {
        drive(&mut walk, &mut reader, MAX_ROUNDS, 4096);
        if walk.broken {
            warnings.push(format!(
                "{what} not read whole: some of what it queued is not a root"
            ));
        }
    }
}
