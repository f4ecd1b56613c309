//! Decoding type DIEs into [`GoType`]s and struct members.

use super::die::{members_of, read_attrs, DieAttrs};
use super::reader::Dwarf;
use super::types::{Field, GoKind, GoType, TypeRef, MAX_TYPEDEF_CHAIN};
use gimli::DebugInfoOffset;
use std::collections::{HashSet, VecDeque};

/// `abi.Kind` values as written in `DW_AT_go_kind` (masked with 0x1f).
mod kind {
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const INT64: u8 = 6;
    pub const UINT: u8 = 7;
    pub const UINT64: u8 = 11;
    pub const UINTPTR: u8 = 12;
    pub const FLOAT32: u8 = 13;
    pub const FLOAT64: u8 = 14;
    pub const COMPLEX64: u8 = 15;
    pub const COMPLEX128: u8 = 16;
    pub const CHAN: u8 = 18;
    pub const INTERFACE: u8 = 20;
    pub const MAP: u8 = 21;
    pub const SLICE: u8 = 23;
    pub const STRING: u8 = 24;
    pub const UNSAFE_POINTER: u8 = 26;
    pub const MASK: u8 = 0x1f;
}

/// Deepest embedded-field nesting searched for promoted fields.
const MAX_EMBED_DEPTH: usize = 4;
/// Most members parsed for one struct (Go structs are far smaller).
const MAX_MEMBERS: usize = 1 << 16;

impl Dwarf {
    /// Read the attributes of the DIE at `.debug_info` offset `off`.
    pub(super) fn die_attrs(&self, off: u64) -> Option<DieAttrs> {
        let data = self.data()?;
        let u = self.unit_of(data, off)?;
        let (header, abbrevs) = self.unit_header(data, u)?;
        let uoff = DebugInfoOffset(usize::try_from(off).ok()?).to_unit_offset(&header)?;
        let mut raw = header.entries_raw(&abbrevs, Some(uoff)).ok()?;
        let abbrev = raw.read_abbreviation().ok()??;
        read_attrs(&mut raw, abbrev, data.units[u].start).ok()
    }

    /// The DIE at `off` and its direct children (capped), each with attributes.
    pub(super) fn die_with_children(&self, off: u64) -> Option<(DieAttrs, Vec<DieAttrs>)> {
        let data = self.data()?;
        let u = self.unit_of(data, off)?;
        let unit_start = data.units[u].start;
        let (header, abbrevs) = self.unit_header(data, u)?;
        let uoff = DebugInfoOffset(usize::try_from(off).ok()?).to_unit_offset(&header)?;
        let mut raw = header.entries_raw(&abbrevs, Some(uoff)).ok()?;
        let base = raw.next_depth();
        let abbrev = raw.read_abbreviation().ok()??;
        let root = read_attrs(&mut raw, abbrev, unit_start).ok()?;
        let mut children = Vec::new();
        if !abbrev.has_children() {
            return Some((root, children));
        }
        while !raw.is_empty() && children.len() < MAX_MEMBERS {
            let depth = raw.next_depth();
            if depth <= base {
                break;
            }
            let ab = match raw.read_abbreviation() {
                Ok(Some(ab)) => ab,
                // A null entry ends a sibling list; the loop head checks depth.
                Ok(None) => continue,
                Err(_) => break,
            };
            if depth == base + 1 {
                match read_attrs(&mut raw, ab, unit_start) {
                    Ok(a) => children.push(a),
                    Err(_) => break,
                }
            } else if raw.skip_attributes(ab.attributes()).is_err() {
                break;
            }
        }
        Some((root, children))
    }

    pub(super) fn parse_members(&self, t: TypeRef) -> Option<Vec<Field>> {
        let (_, children) = self.die_with_children(t)?;
        Some(members_of(children))
    }

    /// Size of what `t` names, following typedefs without decoding members.
    pub(super) fn peek_size(&self, t: TypeRef) -> Option<u64> {
        let mut cur = t;
        for _ in 0..MAX_TYPEDEF_CHAIN {
            let a = self.die_attrs(cur)?;
            match a.tag {
                gimli::DW_TAG_pointer_type => return Some(a.byte_size.unwrap_or(8)),
                gimli::DW_TAG_typedef => cur = a.ty?,
                _ => return a.byte_size,
            }
        }
        None
    }

    pub(super) fn parse_type(&self, t: TypeRef) -> Option<GoType> {
        let (a, children) = self.die_with_children(t)?;
        let go_kind = a.go_kind.map(|k| k & kind::MASK);
        let runtime_type_off = a.runtime_type.and_then(|r| self.runtime_type_offset(r));
        let runtime_type = match (runtime_type_off, self.types_base) {
            (Some(off), Some(base)) => base.checked_add(off),
            _ => None,
        };
        let mut size = a.byte_size.unwrap_or(0);
        let kind = match a.tag {
            gimli::DW_TAG_base_type => match go_kind {
                Some(kind::BOOL) => GoKind::Bool,
                Some(kind::INT..=kind::INT64) => GoKind::Int,
                Some(kind::UINT..=kind::UINT64) => GoKind::Uint,
                Some(kind::UINTPTR) => GoKind::Uintptr,
                Some(kind::FLOAT32 | kind::FLOAT64) => GoKind::Float,
                Some(kind::COMPLEX64 | kind::COMPLEX128) => GoKind::Complex,
                Some(kind::UNSAFE_POINTER) => GoKind::UnsafePointer,
                Some(_) => GoKind::Unknown,
                None => match a.encoding.map(gimli::DwAte) {
                    Some(gimli::DW_ATE_boolean) => GoKind::Bool,
                    Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char) => GoKind::Int,
                    Some(gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char) => GoKind::Uint,
                    Some(gimli::DW_ATE_address) => GoKind::Uintptr,
                    Some(gimli::DW_ATE_float) => GoKind::Float,
                    Some(gimli::DW_ATE_complex_float) => GoKind::Complex,
                    _ => GoKind::Unknown,
                },
            },
            gimli::DW_TAG_pointer_type => {
                size = a.byte_size.unwrap_or(8);
                let unsafe_ptr = go_kind == Some(kind::UNSAFE_POINTER)
                    || (a.ty.is_none() && a.name.as_deref() == Some("unsafe.Pointer"));
                if unsafe_ptr {
                    GoKind::UnsafePointer
                } else {
                    GoKind::Pointer { elem: a.ty }
                }
            }
            gimli::DW_TAG_structure_type => match (go_kind, a.go_elem) {
                (Some(kind::SLICE), Some(elem)) => GoKind::Slice { elem },
                (Some(kind::STRING), _) => GoKind::String,
                _ => GoKind::Struct {
                    fields: members_of(children),
                },
            },
            gimli::DW_TAG_array_type => {
                let len = children
                    .iter()
                    .find(|c| c.tag == gimli::DW_TAG_subrange_type)
                    .and_then(|c| c.count.or_else(|| c.upper_bound.map(|u| u.wrapping_add(1))))
                    .unwrap_or(0);
                match a.ty {
                    Some(elem) => GoKind::Array { elem, len },
                    None => GoKind::Unknown,
                }
            }
            gimli::DW_TAG_subroutine_type => {
                size = a.byte_size.unwrap_or(8);
                GoKind::Func
            }
            gimli::DW_TAG_typedef => {
                let target = a.ty;
                // Size: maps and chans are pointers; others name a sized type.
                size = target.and_then(|t| self.peek_size(t)).unwrap_or(0);
                // The pointed-to header struct of a map/chan typedef.
                let header = || {
                    let p = self.die_attrs(target?)?;
                    (p.tag == gimli::DW_TAG_pointer_type)
                        .then_some(p.ty)
                        .flatten()
                };
                match (go_kind, target) {
                    (Some(kind::MAP), _) => match (a.go_key, a.go_elem) {
                        (Some(key), Some(elem)) => GoKind::Map {
                            key,
                            elem,
                            header: header(),
                        },
                        _ => GoKind::Unknown,
                    },
                    (Some(kind::CHAN), _) => match a.go_elem {
                        Some(elem) => GoKind::Chan {
                            elem,
                            header: header(),
                        },
                        None => GoKind::Unknown,
                    },
                    (Some(kind::INTERFACE), Some(target)) => {
                        let target_name = self.die_attrs(target).and_then(|t| t.name);
                        let empty = target_name.as_deref() == Some("runtime.eface")
                            || a.name.as_deref() == Some("interface {}");
                        GoKind::Interface { empty }
                    }
                    (_, Some(target)) => GoKind::Typedef { target },
                    (_, None) => GoKind::Unknown,
                }
            }
            _ => GoKind::Unknown,
        };
        Some(GoType {
            name: a.name.unwrap_or_default(),
            size,
            kind,
            runtime_type,
            runtime_type_off,
        })
    }

    /// A member of struct-shaped `t` by name; searches embedded fields
    /// breadth-first (Go's promotion rule: shallowest wins) if not direct.
    pub(super) fn find_member(&self, t: TypeRef, name: &str) -> Option<Field> {
        let mut queue: VecDeque<(TypeRef, u64, usize)> = VecDeque::from([(t, 0, 0)]);
        let mut seen = HashSet::new();
        while let Some((cur, base, depth)) = queue.pop_front() {
            if !seen.insert(cur) {
                continue;
            }
            let Some(fields) = self.fields(cur) else {
                continue;
            };
            if let Some(f) = fields.iter().find(|f| f.name == name) {
                return Some(Field {
                    offset: base.checked_add(f.offset)?,
                    ..f.clone()
                });
            }
            if depth < MAX_EMBED_DEPTH {
                for f in fields.iter().filter(|f| f.embedded) {
                    if let Some(off) = base.checked_add(f.offset) {
                        queue.push_back((f.ty, off, depth + 1));
                    }
                }
            }
        }
        None
    }
}
