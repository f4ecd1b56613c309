//! Dominator tree of the heap graph and retained sizes (Cooper, Harvey,
//! Kennedy: "A Simple, Fast Dominance Algorithm", iterative over reverse
//! postorder).
//!
//! Node numbering: 0 is a super-root pointing to every root; roots are
//! `1..=R` (root `r` is node `r + 1`); object `i` is node `R + 1 + i`.
//! An object dominated by a root is retained by it: freeing the root would
//! free it. An object two roots reach is dominated by the super-root only.

use super::graph::HeapGraph;

/// No dominator: the node is unreachable from the roots.
pub const NONE: u32 = u32::MAX;

/// The dominator tree.
#[derive(Debug, Clone, Default)]
pub struct Dominators {
    /// Number of roots R.
    pub roots: usize,
    /// Immediate dominator of every node ([`NONE`] when unreachable; the
    /// super-root is its own).
    pub idom: Vec<u32>,
    /// Reachable nodes in reverse postorder (the super-root first).
    pub rpo: Vec<u32>,
}

impl Dominators {
    pub fn root_node(&self, r: usize) -> u32 {
        (r + 1) as u32
    }
    pub fn object_node(&self, i: usize) -> u32 {
        (self.roots + 1 + i) as u32
    }
    /// The object of node `n`, if it is one.
    pub fn node_object(&self, n: u32) -> Option<usize> {
        (n as usize).checked_sub(self.roots + 1)
    }
    /// The root of node `n`, if it is one.
    pub fn node_root(&self, n: u32) -> Option<usize> {
        (n >= 1 && (n as usize) <= self.roots).then(|| n as usize - 1)
    }
}

/// Successors of node `n`.
pub fn successors(g: &HeapGraph, n: u32, mut f: impl FnMut(u32)) {
    let r = g.roots.len();
    let base = (r + 1) as u32;
    if n == 0 {
        (1..=r as u32).for_each(f);
    } else if (n as usize) <= r {
        g.root_out
            .row(n as usize - 1)
            .iter()
            .for_each(|&j| f(j + base));
    } else {
        g.out
            .row(n as usize - r - 1)
            .iter()
            .for_each(|&j| f(j + base));
    }
}

/// Reverse postorder from the super-root (iterative DFS).
fn reverse_postorder(g: &HeapGraph, nodes: usize) -> Vec<u32> {
    let mut seen = vec![false; nodes];
    let mut post: Vec<u32> = Vec::with_capacity(nodes);
    // (node, next successor index)
    let mut stack: Vec<(u32, u32)> = vec![(0, 0)];
    seen[0] = true;
    while let Some(&mut (n, ref mut k)) = stack.last_mut() {
        // Successor k of n (rows are slices: cheap to index).
        let next = nth_successor(g, n, *k);
        match next {
            Some(s) => {
                *k += 1;
                if !seen[s as usize] {
                    seen[s as usize] = true;
                    stack.push((s, 0));
                }
            }
            None => {
                post.push(n);
                stack.pop();
            }
        }
    }
    post.reverse();
    post
}

fn nth_successor(g: &HeapGraph, n: u32, k: u32) -> Option<u32> {
    let r = g.roots.len();
    let base = (r + 1) as u32;
    if n == 0 {
        return (k < r as u32).then_some(k + 1);
    }
    let row = if (n as usize) <= r {
        g.root_out.row(n as usize - 1)
    } else {
        g.out.row(n as usize - r - 1)
    };
    row.get(k as usize).map(|&j| j + base)
}

/// The dominator tree of `g` with a super-root over every root.
pub fn dominators(g: &HeapGraph) -> Dominators {
    let roots = g.roots.len();
    let nodes = roots + 1 + g.objects;
    let rpo = reverse_postorder(g, nodes);
    let mut order = vec![NONE; nodes];
    for (k, &n) in rpo.iter().enumerate() {
        order[n as usize] = k as u32;
    }
    // Predecessors of reachable nodes, as CSR.
    let mut count = vec![0u32; nodes + 1];
    for &n in &rpo {
        successors(g, n, |s| count[s as usize + 1] += 1);
    }
    for i in 0..nodes {
        count[i + 1] += count[i];
    }
    let mut fill = count.clone();
    let mut preds = vec![0u32; count[nodes] as usize];
    for &n in &rpo {
        successors(g, n, |s| {
            preds[fill[s as usize] as usize] = n;
            fill[s as usize] += 1;
        });
    }
    let mut idom = vec![NONE; nodes];
    idom[0] = 0;
    let mut changed = true;
    while changed {
        changed = false;
        for &n in rpo.iter().skip(1) {
            let ps = &preds[count[n as usize] as usize..count[n as usize + 1] as usize];
            let mut new = NONE;
            for &p in ps {
                if idom[p as usize] == NONE {
                    continue;
                }
                new = if new == NONE {
                    p
                } else {
                    intersect(&idom, &order, p, new)
                };
            }
            if new != NONE && idom[n as usize] != new {
                idom[n as usize] = new;
                changed = true;
            }
        }
    }
    Dominators { roots, idom, rpo }
}

fn intersect(idom: &[u32], order: &[u32], mut a: u32, mut b: u32) -> u32 {
    while a != b {
        while order[a as usize] > order[b as usize] {
            a = idom[a as usize];
        }
        while order[b as usize] > order[a as usize] {
            b = idom[b as usize];
        }
    }
    a
}

/// Retained (bytes, objects) of every node: its own size plus its
/// dominator subtree's. `size(i)`: bytes of object `i`.
pub fn retained(d: &Dominators, size: impl Fn(usize) -> u64) -> Vec<(u64, u64)> {
    let mut ret = vec![(0u64, 0u64); d.idom.len()];
    for &n in &d.rpo {
        if let Some(i) = d.node_object(n) {
            ret[n as usize] = (size(i), 1);
        }
    }
    for &n in d.rpo.iter().rev() {
        let p = d.idom[n as usize];
        if n != 0 && p != NONE {
            let (b, o) = ret[n as usize];
            ret[p as usize].0 += b;
            ret[p as usize].1 += o;
        }
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goruntime::heap::graph::Csr;
    use crate::goruntime::heap::roots::{Root, RootKind};

    fn csr(rows: &[&[u32]]) -> Csr {
        let mut c = Csr {
            off: vec![0],
            targets: vec![],
        };
        for r in rows {
            c.targets.extend_from_slice(r);
            c.off.push(c.targets.len() as u32);
        }
        c
    }

    fn root(n: &str) -> Root {
        Root {
            name: n.into(),
            kind: RootKind::Global,
            goroutine: None,
            function: None,
        }
    }

    #[test]
    fn shared_and_owned() {
        // roots a, b; a -> 0 -> 1 -> 2; b -> 3; 0 -> 3 (3 shared); 4 unreachable.
        let g = HeapGraph {
            objects: 5,
            out: csr(&[&[1, 3], &[2], &[], &[], &[0]]),
            roots: vec![root("a"), root("b")],
            root_out: csr(&[&[0], &[3]]),
            ..Default::default()
        };
        let d = dominators(&g);
        let r = retained(&d, |_| 10);
        assert_eq!(r[d.root_node(0) as usize], (30, 3));
        assert_eq!(r[d.root_node(1) as usize], (0, 0));
        assert_eq!(d.idom[d.object_node(3) as usize], 0);
        assert_eq!(d.idom[d.object_node(4) as usize], NONE);
        assert_eq!(r[0], (40, 4));
    }
}
