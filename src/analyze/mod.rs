//! Analysis sessions: a `(binary, memory)` pair from any input
//! ([`crate::sources`]), and the goroutine model built from it.

mod goroutines;
mod info;
pub mod leaks;
pub mod objects;
pub mod retain;
mod session;

pub use crate::sources::SessionMemory;
pub use goroutines::{BuildOptions, Goroutine, Model};
pub use info::core_info;
pub use session::Session;
