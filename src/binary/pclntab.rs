//! STUB — replaced by the real parser.
#[derive(Debug, thiserror::Error)]
#[error("pclntab: {0}")]
pub struct PclnError(pub String);
pub struct Pclntab;
#[derive(Clone, Copy, Debug)]
pub struct FuncInfo { pub entry: u64 }
#[derive(Clone, Debug, PartialEq)]
pub struct SrcFrame { pub function: String, pub file: String, pub line: u32, pub inlined: bool, pub func_id: u8 }
#[derive(Clone, Copy, Debug)]
pub enum SpecialFunc { Wrapper, Gopanic, Sigpanic, Panicwrap }
impl Pclntab {
    pub fn is_go120_plus(&self) -> bool { todo!() }
    pub fn text_start(&self) -> u64 { todo!() }
    pub fn min_pc(&self) -> u64 { todo!() }
    pub fn max_pc(&self) -> u64 { todo!() }
    pub fn nfunc(&self) -> usize { todo!() }
    pub fn find_func(&self, _pc: u64) -> Option<FuncInfo> { todo!() }
    pub fn func_by_name(&self, _name: &str) -> Option<FuncInfo> { todo!() }
    pub fn func_name(&self, _f: &FuncInfo) -> &str { todo!() }
    pub fn func_id(&self, _f: &FuncInfo) -> u8 { todo!() }
    pub fn func_flag(&self, _f: &FuncInfo) -> u8 { todo!() }
    pub fn is_wrapper(&self, _f: &FuncInfo) -> bool { todo!() }
    pub fn wrapper_func_id(&self) -> u8 { todo!() }
    pub fn func_id_is(&self, _id: u8, _which: SpecialFunc) -> bool { todo!() }
    pub fn pcsp(&self, _f: &FuncInfo, _pc: u64) -> Option<i64> { todo!() }
    pub fn file_line(&self, _f: &FuncInfo, _pc: u64) -> Option<(&str, u32)> { todo!() }
    pub fn frames(&self, _f: &FuncInfo, _pc: u64) -> Vec<SrcFrame> { todo!() }
}
