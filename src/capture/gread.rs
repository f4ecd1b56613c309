//! The pause's g round: every g struct read in pieces on rayon's threads,
//! each piece looked at while it is still in the cache. A g whose key is
//! the one the pre-copy saw (its goroutine did not run since, see
//! [`GKey`]) keeps its pre-copied stack; a dead g needs nothing; the rest
//! are planned by `stacks` from the assembled memory, as before.
//!
//! At 100k goroutines the g structs are ~45 MB: reading them is most of the
//! pause, and looking at them again afterwards (cache misses over 45 MB, an
//! index lookup per g) cost as much again. Here every byte is read once
//! and looked at once, on every core.

use super::precopy::{GKey, PreCopy};
use super::rounds::{merge_sorted, Assembled};
use super::stats::CaptureStats;
use crate::goruntime::{le32, le64, G_DEAD, G_DEAD_EXTRA, G_IDLE, G_SCAN, G_WAITING};
use crate::memory::MemResult;
use crate::model::RegionKind;
use crate::process;

/// What the g round found out about one g (one per entry of the pause's
/// sorted g list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GVerdict {
    /// Its goroutine did not run since the pre-copy: keep the pre-copied
    /// stack at this index of `PreCopy::stacks`.
    Kept(u32),
    /// Dead or idle: no goroutine.
    Dead,
    /// Anything else (running, changed, not pre-copied, not read): planned
    /// from the assembled memory.
    Other,
}

/// Bytes of one piece: read by one `process_vm_readv`, then looked at while
/// in the cache (a core's L2 holds it).
const PIECE: u64 = 256 << 10;
/// Bytes of one batch of pieces: one read system call (~6000 separate
/// spans of g's at 100k goroutines), then the pieces judged while the
/// batch is in the core's L2 cache.
const BATCH: usize = 512 << 10;

/// One piece of a merged range: `[addr, addr + len)`, at `off` in the
/// round's buffer, holding the starts of g's `g0..g1`, part of merged
/// range `range`.
struct Piece {
    addr: u64,
    len: usize,
    g0: usize,
    g1: usize,
    range: usize,
}

/// Cut the merged ranges into pieces at g starts, about [`PIECE`] bytes
/// each. `gaddrs` is sorted and every g starts inside one merged range.
fn pieces(merged: &[(u64, u64, RegionKind)], gaddrs: &[u64]) -> Vec<Piece> {
    let mut out = Vec::with_capacity(merged.len() + (gaddrs.len() >> 8));
    let mut gi = 0usize;
    for (ri, &(ra, rl, _)) in merged.iter().enumerate() {
        let end = ra + rl;
        let mut start = ra;
        let mut g0 = gi;
        while gi < gaddrs.len() && gaddrs[gi] < end {
            let a = gaddrs[gi];
            if a > start && a - start >= PIECE {
                out.push(Piece {
                    addr: start,
                    len: (a - start) as usize,
                    g0,
                    g1: gi,
                    range: ri,
                });
                start = a;
                g0 = gi;
            }
            gi += 1;
        }
        out.push(Piece {
            addr: start,
            len: (end - start) as usize,
            g0,
            g1: gi,
            range: ri,
        });
    }
    out
}

/// What a reader thread needs to judge the g's of its pieces.
struct Judge<'a> {
    gl: &'a crate::goruntime::version::GLayout,
    pre: Option<&'a PreCopy>,
    gsize: usize,
}

impl Judge<'_> {
    /// The g's `gaddrs` (sorted) whose bytes start at `buf[gaddrs[k] - addr]`.
    /// Also each waiting g's `g.waiting` into `wait`.
    fn judge(&self, addr: u64, buf: &[u8], gaddrs: &[u64], out: &mut [GVerdict], wait: &mut [u64]) {
        // Where these g's are in the pre-copy's list (also sorted).
        let mut j = match self.pre {
            Some(pre) => pre
                .gaddrs
                .partition_point(|&x| x < gaddrs.first().copied().unwrap_or(0)),
            None => 0,
        };
        for (k, &a) in gaddrs.iter().enumerate() {
            let o = (a - addr) as usize;
            let Some(b) = buf.get(o..o + self.gsize) else {
                // Runs past its piece (g's overlapping: not the runtime's).
                out[k] = GVerdict::Other;
                continue;
            };
            let status = le32(b, self.gl.atomicstatus) & !G_SCAN;
            if matches!(status, G_DEAD | G_DEAD_EXTRA | G_IDLE) {
                out[k] = GVerdict::Dead;
                continue;
            }
            if status == G_WAITING {
                wait[k] = le64(b, self.gl.waiting);
            }
            out[k] = GVerdict::Other;
            let Some(pre) = self.pre else { continue };
            while j < pre.gaddrs.len() && pre.gaddrs[j] < a {
                j += 1;
            }
            if pre.gaddrs.get(j) != Some(&a) {
                continue;
            }
            let Some(ps) = pre.stacks[j].as_ref() else {
                continue;
            };
            let now = GKey::of(self.gl, &pre.key, b);
            if ps.key.still(&now) && now.stack_start() == ps.sp {
                out[k] = GVerdict::Kept(j as u32);
            }
        }
    }
}

/// What the g round found, one entry per g of the sorted list.
pub(super) struct GRound {
    pub(super) verdicts: Vec<GVerdict>,
    /// `g.waiting` of waiting g's (the first sudog of what they are blocked
    /// on), else 0.
    pub(super) waiting: Vec<u64>,
}

/// Read every g of `gaddrs` (sorted) into `asm` (merged as any round, see
/// `rounds::merge_sorted`) and judge each. Ranges of g's that could not be
/// read are left out, their g's [`GVerdict::Other`] with no sudog.
pub(super) fn read_gs(
    pid: i32,
    gl: &crate::goruntime::version::GLayout,
    gaddrs: &[u64],
    pre: Option<&PreCopy>,
    asm: &mut Assembled,
    stats: &mut CaptureStats,
) -> GRound {
    use rayon::prelude::*;
    let gsize = gl.size as usize;
    let plan: Vec<(u64, u64, RegionKind)> = gaddrs
        .iter()
        .map(|&a| (a, gl.size, RegionKind::G))
        .collect();
    let merged = merge_sorted(&plan);
    drop(plan);
    let pieces = pieces(&merged, gaddrs);
    let total: usize = merged.iter().map(|r| r.1 as usize).sum();
    let mut buf = asm.pool.take(total);
    let mut verdicts = vec![GVerdict::Other; gaddrs.len()];
    let mut waiting = vec![0u64; gaddrs.len()];
    // Batches of pieces, each with its part of the buffer and of the
    // verdicts: one `process_vm_readv` each.
    type Job<'a> = (&'a [Piece], &'a mut [u8], &'a mut [GVerdict], &'a mut [u64]);
    let mut jobs: Vec<Job<'_>> = Vec::new();
    {
        let (mut b, mut v, mut w) = (&mut buf[..], &mut verdicts[..], &mut waiting[..]);
        let mut i = 0;
        while i < pieces.len() {
            let (mut j, mut bytes) = (i, 0usize);
            while j < pieces.len()
                && j - i < process::IOV_MAX
                && (j == i || bytes + pieces[j].len <= BATCH)
            {
                bytes += pieces[j].len;
                j += 1;
            }
            let gs = pieces[j - 1].g1 - pieces[i].g0;
            let (pb, rb) = std::mem::take(&mut b).split_at_mut(bytes);
            let (pv, rv) = std::mem::take(&mut v).split_at_mut(gs);
            let (pw, rw) = std::mem::take(&mut w).split_at_mut(gs);
            jobs.push((&pieces[i..j], pb, pv, pw));
            b = rb;
            v = rv;
            w = rw;
            i = j;
        }
    }
    stats.read_calls += jobs.len();
    let judge = Judge { gl, pre, gsize };
    let live = process::LiveMemory::new(pid);
    let read: Vec<Vec<MemResult<()>>> = jobs
        .into_par_iter()
        .with_max_len(1)
        .map(|(ps, b, v, w)| {
            let ranges: Vec<(u64, usize)> = ps.iter().map(|p| (p.addr, p.len)).collect();
            let res = live.read_ranges_into(&ranges, b);
            let (mut off, g_base) = (0usize, ps[0].g0);
            for (p, r) in ps.iter().zip(&res) {
                if r.is_ok() {
                    let (k0, k1) = (p.g0 - g_base, p.g1 - g_base);
                    judge.judge(
                        p.addr,
                        &b[off..off + p.len],
                        &gaddrs[p.g0..p.g1],
                        &mut v[k0..k1],
                        &mut w[k0..k1],
                    );
                }
                off += p.len;
            }
            res
        })
        .collect();
    let read: Vec<bool> = read.into_iter().flatten().map(|r| r.is_ok()).collect();
    // A merged range is kept when all of its pieces were read; the g's of
    // the others are not in memory.
    let mut range_ok = vec![true; merged.len()];
    for (p, ok) in pieces.iter().zip(&read) {
        range_ok[p.range] &= *ok;
    }
    for p in &pieces {
        if !range_ok[p.range] {
            verdicts[p.g0..p.g1].fill(GVerdict::Other);
            waiting[p.g0..p.g1].fill(0);
        }
    }
    let buf = buf.freeze();
    asm.regions.reserve(merged.len());
    let mut off = 0usize;
    for ((addr, len, kind), ok) in merged.into_iter().zip(range_ok) {
        let len = len as usize;
        if ok {
            stats.bytes_read += len as u64;
            asm.regions.push((addr, buf.slice(off..off + len), kind));
        } else {
            stats.failed_ranges += 1;
        }
        off += len;
    }
    GRound { verdicts, waiting }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cut_at_g_starts() {
        // Three g's of 480 bytes back to back, then one far away.
        let gaddrs = [0x1000, 0x1000 + 480, 0x1000 + 960, 0x10_0000];
        let merged = vec![
            (0x1000, 3 * 480, RegionKind::G),
            (0x10_0000, 480, RegionKind::G),
        ];
        let p = pieces(&merged, &gaddrs);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].addr, p[0].len, p[0].g0, p[0].g1),
            (0x1000, 1440, 0, 3)
        );
        assert_eq!(
            (p[1].addr, p[1].g0, p[1].g1, p[1].range),
            (0x10_0000, 3, 4, 1)
        );
        // A long run is cut near every PIECE bytes, at a g start.
        let n = 2000u64;
        let gaddrs: Vec<u64> = (0..n).map(|i| 0x20_0000 + i * 480).collect();
        let merged = vec![(0x20_0000, n * 480, RegionKind::G)];
        let p = pieces(&merged, &gaddrs);
        assert!(p.len() > 2);
        assert_eq!(p.iter().map(|p| p.len).sum::<usize>(), (n * 480) as usize);
        assert_eq!(p.iter().map(|p| p.g1 - p.g0).sum::<usize>(), n as usize);
        for w in p.windows(2) {
            assert_eq!(w[0].addr + w[0].len as u64, w[1].addr);
            assert_eq!(w[0].g1, w[1].g0);
            assert_eq!(gaddrs[w[1].g0], w[1].addr);
        }
    }
}
