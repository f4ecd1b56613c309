//! STUB — replaced by the real parser.
use super::pclntab::{PclnError, Pclntab};
#[derive(Debug, Clone, Default)]
pub struct ModuleData { pub addr: u64, pub pcheader: u64, pub text: u64, pub etext: u64, pub minpc: u64, pub maxpc: u64,
  pub noptrdata: u64, pub enoptrdata: u64, pub data: u64, pub edata: u64, pub bss: u64, pub ebss: u64, pub noptrbss: u64, pub enoptrbss: u64,
  pub end: u64, pub types: u64, pub etypes: u64, pub rodata: u64, pub gofunc: u64, pub typelinks: Option<(u64, u64)> }
pub fn find_moduledata(_elf: &[u8], _symbol_addr: Option<u64>, _go_minor: u32) -> Result<ModuleData, PclnError> { todo!() }
pub fn load_pclntab(_elf: &[u8], _md: &ModuleData) -> Result<Pclntab, PclnError> { todo!() }
