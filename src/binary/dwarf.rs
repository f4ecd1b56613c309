//! STUB — replaced by the real reader.
pub type TypeRef = u64;
#[derive(Debug, thiserror::Error)]
#[error("dwarf: {0}")]
pub struct DwarfError(pub String);
#[derive(Debug, Clone)]
pub struct Field { pub name: String, pub offset: u64, pub ty: TypeRef, pub embedded: bool }
#[derive(Debug, Clone)]
pub struct Global { pub name: String, pub addr: u64, pub ty: Option<TypeRef> }
pub struct Dwarf;
impl Dwarf {
    pub fn load(_elf: &[u8]) -> Result<Option<Dwarf>, DwarfError> { todo!() }
    pub fn size_of(&self, _type_name: &str) -> Option<u64> { todo!() }
    pub fn offset_of(&self, _type_name: &str, _path: &str) -> Option<u64> { todo!() }
    pub fn field(&self, _type_name: &str, _field: &str) -> Option<Field> { todo!() }
    pub fn global(&self, _name: &str) -> Option<Global> { todo!() }
    pub fn constant(&self, _name: &str) -> Option<i64> { todo!() }
}
