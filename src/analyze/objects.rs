//! Heap objects by type: every allocated object of a heap-complete snapshot
//! (`capture --heap`, `--full`, or a core), typed where the runtime's
//! records or DWARF allow, counted per type or per size class.

use super::session::Session;
use crate::goruntime::heap::objects::{heap_objects, lacks_heap_error, HeapObjects, PTRS_UNKNOWN};
use crate::goruntime::heap::typing::{object_types, ObjectTypes, UNKNOWN};
use crate::goruntime::heap::HeapTarget;
use anyhow::Result;
use std::collections::HashMap;

/// How objects are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// By Go type; untyped objects as "unknown, SIZE B[, N pointers]".
    #[default]
    Type,
    /// By size class ("size class 5 (48 B)", "large").
    SizeClass,
}

/// One group of objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub count: u64,
    pub bytes: u64,
}

/// Every object, its type, and the groups.
#[derive(Debug, Clone, Default)]
pub struct ObjectCensus {
    pub objects: HeapObjects,
    pub types: ObjectTypes,
    pub class_sizes: Vec<u32>,
    pub total_objects: u64,
    pub total_bytes: u64,
    pub typed_objects: u64,
    /// What was skipped or could not be decoded.
    pub warnings: Vec<String>,
}

/// List and type every heap object of `s`. A snapshot whose in-use spans
/// are mostly missing lacks the heap: one clear error.
pub fn census(s: &Session) -> Result<ObjectCensus> {
    let ht = HeapTarget::new(&s.target)?;
    let objs = heap_objects(&s.target, &s.mem)?;
    if objs.spans_in_use == 0 || objs.spans_missing * 2 > objs.spans_in_use {
        if let Some(n) = crate::goruntime::heap::validate::notes(&s.meta.warnings).next() {
            anyhow::bail!("{n}: too few spans were stable to list the heap; capture again, or without --non-blocking");
        }
        return Err(lacks_heap_error(&objs));
    }
    let types = object_types(&s.target, &s.mem, &objs);
    // `--heap --non-blocking`: spans that changed during the copy.
    let mut warnings: Vec<String> = crate::goruntime::heap::validate::notes(&s.meta.warnings)
        .cloned()
        .collect();
    warnings.extend(objs.warnings.iter().cloned());
    warnings.extend(types.warnings.iter().cloned());
    let typed_objects = types.of.iter().filter(|&&t| t != UNKNOWN).count() as u64;
    Ok(ObjectCensus {
        total_objects: objs.objects.len() as u64,
        total_bytes: objs.objects.iter().map(|o| o.size).sum(),
        typed_objects,
        class_sizes: ht.class_sizes.clone(),
        objects: objs,
        types,
        warnings,
    })
}

impl ObjectCensus {
    /// Groups, largest bytes first (then count, then name).
    pub fn groups(&self, by: GroupBy) -> Vec<Group> {
        let mut m: HashMap<String, (u64, u64)> = HashMap::new();
        for (i, o) in self.objects.objects.iter().enumerate() {
            let name = match by {
                GroupBy::Type => match self.types.of[i] {
                    UNKNOWN => match o.ptrs {
                        0 => format!("unknown, {} B, no pointers", o.size),
                        1 => format!("unknown, {} B, 1 pointer", o.size),
                        PTRS_UNKNOWN => format!("unknown, {} B", o.size),
                        n => format!("unknown, {} B, {n} pointers", o.size),
                    },
                    t => self.types.names[t as usize].clone(),
                },
                GroupBy::SizeClass => match o.size_class() {
                    0 => "large (> 32 KiB)".to_string(),
                    c => format!(
                        "size class {c} ({} B)",
                        self.class_sizes.get(c as usize).copied().unwrap_or(0)
                    ),
                },
            };
            let e = m.entry(name).or_default();
            e.0 += 1;
            e.1 += o.size;
        }
        let mut v: Vec<Group> = m
            .into_iter()
            .map(|(name, (count, bytes))| Group { name, count, bytes })
            .collect();
        v.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(b.count.cmp(&a.count))
                .then(a.name.cmp(&b.name))
        });
        v
    }
}
