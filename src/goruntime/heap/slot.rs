//! One allocated heap slot ([`HeapObject`]) and the constants of its
//! layout, shared by the object walk (`objects.rs`) and the pointer masks
//! (`ptrmask.rs`).

/// Objects of at most this size keep pointer bits in the span, larger
/// ones a header (`minSizeForMallocHeader`, Go 1.22+).
pub const MIN_SIZE_FOR_HEADER: u64 = 512;

/// One allocated slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapObject {
    pub addr: u64,
    /// Bytes the object occupies (the slot, or the large span's pages).
    pub size: u64,
    /// `mspan.spanclass`: size class << 1 | noscan.
    pub spanclass: u8,
    /// The runtime type recorded for it (allocation header or
    /// `span.largeType`), runtime address; 0 when none.
    pub rtype: u64,
    /// Pointer words of an object of a small-object span, from its exact
    /// pointer mask (`ptrmask::HeapMasks::pointer_count`: span heap bits,
    /// allocation header, or Go 1.19–1.21 heap arena bitmap); 0 for
    /// pointer-free objects; [`PTRS_UNKNOWN`] for large objects and where
    /// no mask could be read.
    pub ptrs: u16,
}

/// [`HeapObject::ptrs`] when the pointer bitmap is not at hand.
pub const PTRS_UNKNOWN: u16 = u16::MAX;

impl HeapObject {
    pub fn noscan(&self) -> bool {
        self.spanclass & 1 == 1
    }
    pub fn size_class(&self) -> u8 {
        self.spanclass >> 1
    }
}
