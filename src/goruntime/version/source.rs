//! Where runtime struct layouts come from ([`LayoutSource`]: DWARF or the
//! per-version tables) and the field lookups every layout decoder shares.

use crate::binary::dwarf::{Dwarf, GoKind};

/// Where runtime struct layouts come from.
pub trait LayoutSource {
    /// Offset of a (possibly dotted) field path in a runtime type.
    fn offset_of(&self, ty: &str, path: &str) -> Option<u64>;
    /// Size of a runtime type.
    fn size_of(&self, ty: &str) -> Option<u64>;
    /// Short description for messages ("DWARF", "go1.22 tables").
    fn describe(&self) -> String;
    /// Size in bytes of a field's type.
    fn field_size(&self, ty: &str, path: &str) -> Option<u64>;
    /// Length of an array field whose elements are `elem_size` bytes.
    fn array_len(&self, ty: &str, path: &str, elem_size: u64) -> Option<u64>;
}

impl LayoutSource for Dwarf {
    fn offset_of(&self, ty: &str, path: &str) -> Option<u64> {
        Dwarf::offset_of(self, ty, path)
    }
    fn size_of(&self, ty: &str) -> Option<u64> {
        Dwarf::size_of(self, ty)
    }
    fn describe(&self) -> String {
        "DWARF".into()
    }
    fn field_size(&self, ty: &str, path: &str) -> Option<u64> {
        let f = self.field(ty, path)?;
        self.resolve(f.ty).map(|t| t.size)
    }
    fn array_len(&self, ty: &str, path: &str, _elem_size: u64) -> Option<u64> {
        let f = self.field(ty, path)?;
        match self.resolve(f.ty)?.kind {
            GoKind::Array { len, .. } => Some(len),
            _ => None,
        }
    }
}

/// Field lookups over one [`LayoutSource`] that note what is missing (the
/// layout decoders report all missing fields at once).
pub(crate) struct LayoutCtx<'a> {
    pub d: &'a dyn LayoutSource,
    pub missing: Vec<String>,
}

impl<'a> LayoutCtx<'a> {
    pub fn new(d: &'a dyn LayoutSource) -> Self {
        LayoutCtx {
            d,
            missing: Vec::new(),
        }
    }
    /// Offset of `ty.path`; 0 (and noted) when missing.
    pub fn off(&mut self, ty: &str, path: &str) -> u64 {
        match self.d.offset_of(ty, path) {
            Some(o) => o,
            None => {
                self.missing.push(format!("{ty}.{path}"));
                0
            }
        }
    }
    /// Offset of `ty.path`, which may be absent.
    pub fn opt(&self, ty: &str, path: &str) -> Option<u64> {
        self.d.offset_of(ty, path)
    }
    /// Offset of the first of `paths` that exists (fields renamed across
    /// versions).
    pub fn first(&mut self, ty: &str, paths: &[&str]) -> u64 {
        for p in paths {
            if let Some(o) = self.d.offset_of(ty, p) {
                return o;
            }
        }
        self.missing.push(format!("{ty}.{}", paths.join("|")));
        0
    }
    /// Size of `ty`; 0 (and noted) when unknown.
    pub fn size(&mut self, ty: &str) -> u64 {
        match self.d.size_of(ty) {
            Some(s) => s,
            None => {
                self.missing.push(format!("sizeof({ty})"));
                0
            }
        }
    }
    /// Offset and byte size of a field.
    pub fn field(&mut self, ty: &str, path: &str) -> (u64, u64) {
        let off = self.off(ty, path);
        (off, self.d.field_size(ty, path).unwrap_or(0))
    }
    /// Offset and length of an array field with `elem_size`-byte elements.
    pub fn array(&mut self, ty: &str, path: &str, elem_size: u64) -> (u64, usize) {
        let off = self.off(ty, path);
        match self.d.array_len(ty, path, elem_size) {
            Some(n) => (off, n as usize),
            None => {
                self.missing.push(format!("{ty}.{path} (array length)"));
                (off, 0)
            }
        }
    }
}

impl<T: LayoutSource + ?Sized> LayoutSource for &T {
    fn offset_of(&self, ty: &str, path: &str) -> Option<u64> {
        (**self).offset_of(ty, path)
    }
    fn size_of(&self, ty: &str) -> Option<u64> {
        (**self).size_of(ty)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn field_size(&self, ty: &str, path: &str) -> Option<u64> {
        (**self).field_size(ty, path)
    }
    fn array_len(&self, ty: &str, path: &str, elem_size: u64) -> Option<u64> {
        (**self).array_len(ty, path, elem_size)
    }
}
