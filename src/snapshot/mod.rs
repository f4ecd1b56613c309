//! STUB — replaced by the real module.
use crate::model::{Capture, CaptureMeta};
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SnapshotError(pub String);
#[derive(Default)]
pub struct WriteOptions;
pub struct WriteStats { pub file_size: u64 }
pub fn write_file(_p: &std::path::Path, _c: &Capture, _o: &WriteOptions) -> Result<WriteStats, SnapshotError> { todo!() }
pub struct LoadedMemory { pub memory: crate::memory::SparseMemory, pub warnings: Vec<String> }
#[derive(Debug)]
pub struct Stats;
pub struct SnapshotFile { pub meta: CaptureMeta }
impl SnapshotFile {
    pub fn open(_p: &std::path::Path) -> Result<SnapshotFile, SnapshotError> { todo!() }
    pub fn memory(&self) -> Result<LoadedMemory, SnapshotError> { todo!() }
    pub fn has_binary(&self) -> bool { todo!() }
    pub fn binary(&self) -> Result<Option<Vec<u8>>, SnapshotError> { todo!() }
    pub fn stats(&self) -> Stats { todo!() }
}
