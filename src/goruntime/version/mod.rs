//! Everything gospy knows per Go version, in one place: the version type and
//! the supported range, goroutine statuses, wait reasons, the measured
//! layout tables, and the single choice between DWARF and those tables.
//! A new Go version touches this directory only.
//!
//! Children import each other by their own paths (`super::tables::X`),
//! never through this facade.

pub mod choice;
pub mod fallback;
pub mod globals;
pub mod go;
pub mod godebug;
pub mod layout;
pub mod mprof;
pub mod source;
pub mod specials;
pub mod status;
#[rustfmt::skip]
pub mod tables;
#[rustfmt::skip]
pub mod tables_arm64;
pub mod waitreason;

pub use choice::Layouts;
pub use fallback::Tables;
pub use go::{is_supported, support_warning, GoVersion, NEWEST_SUPPORTED, OLDEST_SUPPORTED};
pub use layout::{GLayout, Layout, MLayout, PLayout, SchedLayout};
pub use source::LayoutSource;
pub use status::*;
