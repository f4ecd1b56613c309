//! What holds the memory: retained size per root and per type from the
//! dominator tree of the heap graph, and root paths to objects.
//!
//! Built on [`census`] (every object, typed), [`HeapGraph`] (pointers from
//! the GC's exact masks, conservative only where none is readable: see
//! `goruntime::heap::graph`) and [`dominators`].

use super::objects::{census, ObjectCensus};
use super::session::Session;
use crate::goruntime::heap::dominators::{dominators, retained, successors, Dominators, NONE};
use crate::goruntime::heap::graph::{find_object, HeapGraph};
use crate::goruntime::heap::roots::{scan_roots, RootKind};
use crate::goruntime::heap::typing::UNKNOWN;
use anyhow::{anyhow, Result};
use std::collections::HashMap;

/// Most steps of a root's path (the largest retained chain below it).
const MAX_PATH_DESCENT: usize = 64;

/// Everything the reports need.
pub struct Retention {
    pub census: ObjectCensus,
    pub graph: HeapGraph,
    pub dom: Dominators,
    /// Retained (bytes, objects) per node (see [`Dominators`]).
    pub retained: Vec<(u64, u64)>,
    /// Parent of every node on a shortest path from the super-root.
    parent: Vec<u32>,
    pub warnings: Vec<String>,
}

/// One root's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRetention {
    pub root: String,
    pub kind: RootKind,
    pub goroutine: Option<u64>,
    pub retained_bytes: u64,
    pub retained_objects: u64,
    /// From the root down its largest retained chain (types; runs of one
    /// type folded as `main.Node (×999)`).
    pub path: Vec<String>,
}

/// One path step: node, and its object's address (None for a root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub addr: Option<u64>,
}

/// Builds the graph, the dominator tree and the shortest-path tree.
pub fn retention(s: &Session) -> Result<Retention> {
    let census = census(s)?;
    let scan = scan_roots(&s.target, &s.mem, &census.objects);
    let graph = HeapGraph::build(&s.target, &s.mem, &census.objects, scan);
    let dom = dominators(&graph);
    let sizes = &census.objects.objects;
    let retained = retained(&dom, |i| sizes[i].size);
    let parent = bfs(&graph, dom.idom.len());
    let mut warnings = census.warnings.clone();
    warnings.extend(graph.warnings.iter().cloned());
    Ok(Retention {
        census,
        graph,
        dom,
        retained,
        parent,
        warnings,
    })
}

fn bfs(g: &HeapGraph, nodes: usize) -> Vec<u32> {
    let mut parent = vec![NONE; nodes];
    parent[0] = 0;
    let mut queue = std::collections::VecDeque::from([0u32]);
    while let Some(n) = queue.pop_front() {
        successors(g, n, |s| {
            if parent[s as usize] == NONE {
                parent[s as usize] = n;
                queue.push_back(s);
            }
        });
    }
    parent
}

/// Folds runs of one name: `main.Node (×999)`.
pub fn fold(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for n in names {
        match out.last_mut() {
            Some((l, k)) if *l == n => *k += 1,
            _ => out.push((n, 1)),
        }
    }
    out.into_iter()
        .map(|(n, k)| if k > 1 { format!("{n} (×{k})") } else { n })
        .collect()
}

impl Retention {
    /// The type name of object `i` (or `unknown, SIZE B`).
    pub fn type_name(&self, i: usize) -> String {
        match self.census.types.of.get(i).copied().unwrap_or(UNKNOWN) {
            UNKNOWN => format!("unknown, {} B", self.census.objects.objects[i].size),
            t => self.census.types.names[t as usize].clone(),
        }
    }

    fn node_name(&self, n: u32) -> String {
        if let Some(r) = self.dom.node_root(n) {
            return self.graph.roots[r].name.clone();
        }
        match self.dom.node_object(n) {
            Some(i) => self.type_name(i),
            None => "(roots)".into(),
        }
    }

    /// The shortest path from a root to node `n`, root first; empty when
    /// unreachable.
    pub fn path_to_node(&self, n: u32) -> Vec<Step> {
        let mut v = Vec::new();
        let mut cur = n;
        while cur != 0 && cur != NONE && v.len() <= self.parent.len() {
            v.push(Step {
                name: self.node_name(cur),
                addr: self
                    .dom
                    .node_object(cur)
                    .map(|i| self.census.objects.objects[i].addr),
            });
            cur = self.parent[cur as usize];
        }
        if cur == NONE {
            return Vec::new();
        }
        v.reverse();
        v
    }

    /// Root paths to the object holding `addr`.
    pub fn path_to_addr(&self, addr: u64) -> Result<Vec<Step>> {
        let i = find_object(&self.census.objects, addr)
            .ok_or_else(|| anyhow!("{addr:#x} is not inside an allocated heap object"))?;
        Ok(self.path_to_node(self.dom.object_node(i as usize)))
    }

    /// Objects of type `t`, in address order.
    pub fn objects_of_type(&self, t: &str) -> Vec<usize> {
        (0..self.census.objects.objects.len())
            .filter(|&i| self.type_name(i) == t)
            .collect()
    }

    /// Per root, largest retained bytes first.
    pub fn roots(&self) -> Vec<RootRetention> {
        let children = self.dom_children();
        let mut v: Vec<RootRetention> = self
            .graph
            .roots
            .iter()
            .enumerate()
            .map(|(r, root)| {
                let n = self.dom.root_node(r);
                let (b, o) = self.retained[n as usize];
                RootRetention {
                    root: root.name.clone(),
                    kind: root.kind,
                    goroutine: root.goroutine,
                    retained_bytes: b,
                    retained_objects: o,
                    path: Vec::new(),
                }
            })
            .collect();
        for (r, x) in v.iter_mut().enumerate() {
            if x.retained_bytes > 0 {
                x.path = self.root_path(&children, self.dom.root_node(r));
            }
        }
        v.sort_by(|a, b| {
            b.retained_bytes
                .cmp(&a.retained_bytes)
                .then(a.root.cmp(&b.root))
        });
        v
    }

    /// Dominator-tree children of every node, as CSR (offsets, children).
    fn dom_children(&self) -> (Vec<u32>, Vec<u32>) {
        let n = self.dom.idom.len();
        let mut off = vec![0u32; n + 1];
        for &v in &self.dom.rpo {
            let p = self.dom.idom[v as usize];
            if v != 0 && p != NONE {
                off[p as usize + 1] += 1;
            }
        }
        for i in 0..n {
            off[i + 1] += off[i];
        }
        let mut fill = off.clone();
        let mut kids = vec![0u32; off[n] as usize];
        for &v in &self.dom.rpo {
            let p = self.dom.idom[v as usize];
            if v != 0 && p != NONE {
                kids[fill[p as usize] as usize] = v;
                fill[p as usize] += 1;
            }
        }
        (off, kids)
    }

    /// From root node `n` down the largest retained child, as a path.
    fn root_path(&self, children: &(Vec<u32>, Vec<u32>), n: u32) -> Vec<String> {
        let (off, kids) = children;
        let mut cur = n;
        for _ in 0..MAX_PATH_DESCENT {
            let cs = &kids[off[cur as usize] as usize..off[cur as usize + 1] as usize];
            let Some(c) = cs
                .iter()
                .copied()
                .max_by_key(|&c| (self.retained[c as usize].0, std::cmp::Reverse(c)))
            else {
                break;
            };
            cur = c;
        }
        fold(self.path_to_node(cur).into_iter().map(|s| s.name))
    }

    /// Per type: retained by the objects of the type whose immediate
    /// dominator is not of the same type (a list's head counts its whole
    /// list once), largest first: (type, bytes, objects).
    pub fn types(&self) -> Vec<(String, u64, u64)> {
        let objs = &self.census.objects.objects;
        let key = |i: usize| -> (u32, u64) {
            match self.census.types.of.get(i).copied().unwrap_or(UNKNOWN) {
                UNKNOWN => (UNKNOWN, objs[i].size),
                t => (t, 0),
            }
        };
        let mut m: HashMap<(u32, u64), (u64, u64)> = HashMap::new();
        for &n in &self.dom.rpo {
            let Some(i) = self.dom.node_object(n) else {
                continue;
            };
            let k = key(i);
            let p = self.dom.idom[n as usize];
            if self.dom.node_object(p).is_some_and(|j| key(j) == k) {
                continue;
            }
            let e = m.entry(k).or_default();
            e.0 += self.retained[n as usize].0;
            e.1 += self.retained[n as usize].1;
        }
        let mut v: Vec<(String, u64, u64)> = m
            .into_iter()
            .map(|((t, size), (b, o))| {
                let name = match t {
                    UNKNOWN => format!("unknown, {size} B"),
                    t => self.census.types.names[t as usize].clone(),
                };
                (name, b, o)
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Live bytes and objects unreachable from every root found.
    pub fn unreachable(&self) -> (u64, u64) {
        let (b, o) = self.retained[0];
        (
            self.census.total_bytes.saturating_sub(b),
            self.census.total_objects.saturating_sub(o),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fold_runs() {
        let v = ["a", "b", "b", "c"].map(String::from);
        assert_eq!(super::fold(v), vec!["a", "b (×2)", "c"]);
    }
}
