//! The pause's stack planning: per g, its pre-copied stack kept or its used
//! stack planned.

use super::gread::GVerdict;
use super::precopy::PreCopy;
use super::rounds::PausedMem;
use crate::goruntime::traceback::stack_state;
use crate::goruntime::{Runtime, Target, G_DEAD, G_RUNNING, M, MAX_STACK};
use crate::model::{RegionKind, Regs};
use std::collections::HashMap;

/// What the pause's stack planning decided, per part of allgs.
#[derive(Default)]
pub(super) struct StackPlan {
    pub(super) live: usize,
    pub(super) kept: usize,
    pub(super) kept_bytes: u64,
    /// Indices (in allgs) of the goroutines whose pre-copied stack is kept:
    /// their regions are added after the resume (cloning 100k shared
    /// buffers' handles is atomic traffic the pause need not wait for).
    pub(super) kept_idx: Vec<u32>,
    /// Label sets of kept goroutines that were pre-copied whole.
    pub(super) kept_labels: Vec<u64>,
    pub(super) plan: Vec<(u64, u64, RegionKind)>,
    pub(super) labels: Vec<u64>,
    pub(super) before: Vec<(u64, crate::capture::nonblocking::GState)>,
}

impl StackPlan {
    pub(super) fn merge(mut a: StackPlan, mut b: StackPlan) -> StackPlan {
        a.live += b.live;
        a.kept += b.kept;
        a.kept_bytes += b.kept_bytes;
        a.kept_idx.append(&mut b.kept_idx);
        a.kept_labels.append(&mut b.kept_labels);
        a.plan.append(&mut b.plan);
        a.labels.append(&mut b.labels);
        a.before.append(&mut b.before);
        a
    }
}

/// What planning a g's stack looks at.
pub(super) struct StackCtx<'a> {
    pub(super) target: &'a Target,
    pub(super) pre: Option<&'a PreCopy>,
    pub(super) pm: &'a PausedMem<'a>,
    pub(super) ms: &'a [M],
    pub(super) tid_regs: &'a HashMap<u64, &'a Regs>,
    pub(super) non_blocking: bool,
}

impl StackCtx<'_> {
    /// Each g: its pre-copied stack kept, or its used stack planned, as the
    /// g round judged it (`verdicts`, one per g). In parallel: g's the
    /// round could not judge are read from the assembled memory.
    pub(super) fn plan(&self, gaddrs: &[u64], verdicts: &[GVerdict]) -> StackPlan {
        use rayon::prelude::*;
        /// G's per task (a task's plan is merged once, not per g).
        const CHUNK: usize = 8192;
        let rt = Runtime::new(self.target, self.pm);
        gaddrs
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut o = StackPlan::default();
                for (k, &a) in chunk.iter().enumerate() {
                    let i = c * CHUNK + k;
                    match verdicts.get(i).copied().unwrap_or(GVerdict::Other) {
                        GVerdict::Kept(j) => keep(self.pre, &mut o, j as usize),
                        GVerdict::Dead => {}
                        GVerdict::Other => self.plan_one(&rt, &mut o, a),
                    }
                }
                o
            })
            .reduce(StackPlan::default, StackPlan::merge)
    }

    /// [`plan`](Self::plan) of the g's at indices `others` of `gaddrs`
    /// only (those [`plan_kept`] left).
    pub(super) fn plan_only(&self, gaddrs: &[u64], others: &[u32]) -> StackPlan {
        let rt = Runtime::new(self.target, self.pm);
        let mut o = StackPlan::default();
        for &i in others {
            if let Some(&a) = gaddrs.get(i as usize) {
                self.plan_one(&rt, &mut o, a);
            }
        }
        o
    }

    /// A g the g round did not keep: its used stack planned.
    fn plan_one(&self, rt: &Runtime<'_, &PausedMem<'_>>, o: &mut StackPlan, a: u64) {
        let Ok(g) = rt.read_g(a) else { return };
        if g.status == G_DEAD || g.is_dead() {
            return;
        }
        o.live += 1;
        if self.non_blocking {
            o.before
                .push((a, crate::capture::nonblocking::GState::of(&g)));
        }
        if g.stack_hi <= g.stack_lo || g.stack_hi - g.stack_lo > MAX_STACK {
            return;
        }
        // A running goroutine's frames may start at its thread's sp.
        let m = (g.status == G_RUNNING)
            .then(|| self.ms.iter().find(|m| m.curg == a))
            .flatten();
        let regs = m.and_then(|m| self.tid_regs.get(&m.procid).copied());
        if let Some(sp) = stack_state(&g, m, regs).capture_start() {
            o.plan.push((sp, g.stack_hi - sp, RegionKind::Stack));
        }
        if g.labels != 0 {
            o.labels.push(g.labels);
        }
    }
}

/// Keep the pre-copied stack at index `j` of the pre-copy.
fn keep(pre: Option<&PreCopy>, o: &mut StackPlan, j: usize) {
    let Some(pre) = pre else { return };
    let Some(ps) = pre.stacks.get(j).and_then(|p| p.as_ref()) else {
        return;
    };
    o.kept += 1;
    o.kept_bytes += ps.data.len() as u64;
    o.live += 1;
    o.kept_idx.push(j as u32);
    let labels = ps.key.labels;
    if labels != 0 {
        if pre.label_sets.contains_key(&labels) {
            o.kept_labels.push(labels);
        } else {
            o.labels.push(labels);
        }
    }
}

/// The kept g's of `verdicts` planned (their pre-copied stacks kept) without
/// the paused memory, as [`StackCtx::plan`] plans them; and the indices of
/// the g's neither kept nor dead, for [`StackCtx::plan_only`].
pub(super) fn plan_kept(pre: Option<&PreCopy>, verdicts: &[GVerdict]) -> (StackPlan, Vec<u32>) {
    let mut o = StackPlan::default();
    let mut others = Vec::new();
    for (i, v) in verdicts.iter().enumerate() {
        match *v {
            GVerdict::Kept(j) => keep(pre, &mut o, j as usize),
            GVerdict::Dead => {}
            GVerdict::Other => others.push(i as u32),
        }
    }
    (o, others)
}
