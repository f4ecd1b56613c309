//! Lazy, panic-free reader for the DWARF that the Go linker emits (Go 1.19–1.27).
//!
//! What the Go linker (`cmd/link/internal/ld/dwarf.go`, `cmd/internal/dwarf`) writes:
//! - One compile unit (CU) per package, named by the package path; some packages
//!   get several CUs with the same name (assembly, split units).
//! - Every type DIE is moved into the `runtime` CU (`movetomodule`), at depth 1.
//!   Named structs, slices, funcs, pointers, arrays and interfaces get a
//!   `DW_TAG_typedef` with the same name right after the definition; named base
//!   types (`type myInt int`) are just a `DW_TAG_base_type` with that name.
//! - Strings, slices and interfaces are `DW_TAG_structure_type`s (interfaces are
//!   a typedef to `runtime.eface`/`runtime.iface`) told apart by `DW_AT_go_kind`
//!   (0x2900, the `abi.Kind`). Maps and chans are typedefs whose `DW_AT_type` is
//!   a pointer to a synthesized header struct (`hash<K,V>`/`map<K,V>`,
//!   `hchan<T>`), with `DW_AT_go_key` / `DW_AT_go_elem` naming the Go types.
//! - Globals are `DW_TAG_variable` at depth 1 of their package CU with
//!   `DW_AT_location = DW_OP_addr <link-time address>` (also in DWARF 5).
//! - Constants are `DW_TAG_constant` with `DW_AT_const_value` (sdata).
//! - `DW_AT_go_runtime_type` (0x2904, `DW_FORM_addr`) is an `R_ADDROFF`: the
//!   offset of the type descriptor from the start of its section, i.e. from the
//!   `runtime.types` symbol (`.rodata`/`.go.type`). Zero means "no descriptor".
//! - Names are always inline `DW_FORM_string`; references are `DW_FORM_ref_addr`
//!   (offsets into `.debug_info`). No `DW_AT_sibling`, so skipping a function's
//!   children means walking them.
//! - Sections are zlib-compressed: `SHF_COMPRESSED` (Go 1.19+) or `.zdebug_*`
//!   (older toolchains, `objcopy --compress-debug-sections=zlib-gnu`).
//!
//! Laziness: [`Dwarf::load`] only copies the (compressed) `.debug_info` and
//! `.debug_abbrev` bytes and finds `runtime.types`. Decompression and the unit
//! directory happen on first use; each CU's name index (depth-1 names only, no
//! attribute decoding beyond names and runtime-type offsets) is built the first
//! time a lookup needs that CU; a type's members are parsed when it is asked for.
//!
//! Decompression is the dominant cold cost (whole-section zlib); since `Dwarf`
//! is `Send + Sync`, a caller can overlap it with other work by calling
//! [`Dwarf::prepare`] on another thread right after `load`.
//!
//! Robustness: every read is bounds-checked by gimli; malformed input yields
//! `None`/errors. Typedef chains, embedded-field searches and DIE walks are capped.

mod decode;
mod die;
mod reader;
mod types;

pub use reader::Dwarf;
pub use types::*;

#[cfg(test)]
mod tests;
