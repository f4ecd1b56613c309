//! STUB — replaced by the real module.
use crate::model::{MapEntry, ThreadInfo};
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProcessError(pub String);
pub struct Process { pub pid: i32 }
pub struct PauseGuard;
impl Process {
    pub fn open(_pid: i32) -> Result<Process, ProcessError> { todo!() }
    pub fn exe_path(&self) -> Result<String, ProcessError> { todo!() }
    pub fn exe_bytes(&self) -> Result<Vec<u8>, ProcessError> { todo!() }
    pub fn maps(&self) -> Result<Vec<MapEntry>, ProcessError> { todo!() }
    pub fn auxv(&self) -> Result<Vec<(u64, u64)>, ProcessError> { todo!() }
    pub fn cmdline(&self) -> Result<Vec<String>, ProcessError> { todo!() }
    pub fn pause(&self) -> Result<PauseGuard, ProcessError> { todo!() }
}
impl PauseGuard {
    pub fn threads(&self) -> &[ThreadInfo] { todo!() }
    pub fn resume(self) -> std::time::Duration { todo!() }
}
pub fn read_ranges(_pid: i32, _r: &[(u64, usize)]) -> Vec<Result<Vec<u8>, ProcessError>> { todo!() }
pub fn read_monotonic_ns() -> u64 { todo!() }
