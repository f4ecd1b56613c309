//! Raw DIE attribute decoding shared by the unit index and the type decoder.

use super::types::{
    Field, TypeRef, DW_AT_GO_ELEM, DW_AT_GO_EMBEDDED_FIELD, DW_AT_GO_KEY, DW_AT_GO_KIND,
    DW_AT_GO_RUNTIME_TYPE,
};
use gimli::{
    AttributeSpecification, AttributeValue, DwTag, EndianSlice, RunTimeEndian, UnitHeader,
    UnitOffset,
};

pub(super) type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Attributes of one DIE that the type decoder cares about.
#[derive(Debug)]
pub(super) struct DieAttrs {
    pub(super) tag: DwTag,
    pub(super) name: Option<String>,
    pub(super) byte_size: Option<u64>,
    pub(super) go_kind: Option<u8>,
    pub(super) runtime_type: Option<u64>,
    pub(super) ty: Option<TypeRef>,
    pub(super) go_elem: Option<TypeRef>,
    pub(super) go_key: Option<TypeRef>,
    pub(super) encoding: Option<u8>,
    pub(super) member_offset: Option<u64>,
    pub(super) embedded: bool,
    pub(super) count: Option<u64>,
    pub(super) upper_bound: Option<u64>,
    pub(super) location: Option<Vec<u8>>,
    pub(super) const_value: Option<i64>,
}

/// What a depth-1 DIE is, for the name index.
#[derive(PartialEq, Eq, Clone, Copy)]
pub(super) enum IndexClass {
    Type,
    Var,
    Const,
    Skip,
}

pub(super) fn index_class(tag: DwTag) -> IndexClass {
    match tag {
        gimli::DW_TAG_base_type
        | gimli::DW_TAG_typedef
        | gimli::DW_TAG_structure_type
        | gimli::DW_TAG_pointer_type
        | gimli::DW_TAG_array_type
        | gimli::DW_TAG_subroutine_type
        | gimli::DW_TAG_unspecified_type => IndexClass::Type,
        gimli::DW_TAG_variable => IndexClass::Var,
        gimli::DW_TAG_constant => IndexClass::Const,
        _ => IndexClass::Skip,
    }
}

pub(super) fn attr_u64<R: gimli::Reader>(v: &AttributeValue<R>) -> Option<u64> {
    match *v {
        AttributeValue::Addr(a) => Some(a),
        AttributeValue::Data1(x) => Some(x.into()),
        AttributeValue::Data2(x) => Some(x.into()),
        AttributeValue::Data4(x) => Some(x.into()),
        AttributeValue::Data8(x) => Some(x),
        AttributeValue::Udata(x) => Some(x),
        AttributeValue::Sdata(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

pub(super) fn attr_i64<R: gimli::Reader>(v: &AttributeValue<R>) -> Option<i64> {
    match *v {
        AttributeValue::Sdata(x) => Some(x),
        AttributeValue::Data1(x) => Some(x as i8 as i64),
        AttributeValue::Data2(x) => Some(x as i16 as i64),
        AttributeValue::Data4(x) => Some(x as i32 as i64),
        AttributeValue::Data8(x) => Some(x as i64),
        AttributeValue::Udata(x) => i64::try_from(x).ok(),
        _ => None,
    }
}

pub(super) fn attr_string(v: &AttributeValue<Reader<'_>>) -> Option<String> {
    match v {
        AttributeValue::String(s) => Some(String::from_utf8_lossy(s.slice()).into_owned()),
        _ => None,
    }
}

/// Fields from the `DW_TAG_member` children of a struct DIE.
pub(super) fn members_of(children: Vec<DieAttrs>) -> Vec<Field> {
    children
        .into_iter()
        .filter(|c| c.tag == gimli::DW_TAG_member)
        .filter_map(|c| {
            Some(Field {
                name: c.name.unwrap_or_default(),
                offset: c.member_offset.unwrap_or(0),
                ty: c.ty?,
                embedded: c.embedded,
            })
        })
        .collect()
}

/// The `DW_AT_name` of a unit's root DIE (the package path for Go CUs).
pub(super) fn root_name(
    header: &UnitHeader<Reader<'_>>,
    abbrevs: &gimli::Abbreviations,
) -> Option<String> {
    let mut raw = header.entries_raw(abbrevs, None).ok()?;
    let abbrev = raw.read_abbreviation().ok()??;
    for spec in abbrev.attributes() {
        let attr = raw.read_attribute(*spec).ok()?;
        if spec.name() == gimli::DW_AT_name {
            return attr_string(&attr.raw_value());
        }
    }
    None
}

/// Read every attribute of the entry whose abbreviation was just read.
pub(super) fn read_attrs(
    raw: &mut gimli::EntriesRaw<'_, '_, Reader<'_>>,
    abbrev: &gimli::Abbreviation,
    unit_start: u64,
) -> gimli::Result<DieAttrs> {
    let mut a = DieAttrs {
        tag: abbrev.tag(),
        name: None,
        byte_size: None,
        go_kind: None,
        runtime_type: None,
        ty: None,
        go_elem: None,
        go_key: None,
        encoding: None,
        member_offset: None,
        embedded: false,
        count: None,
        upper_bound: None,
        location: None,
        const_value: None,
    };
    let as_ref = |v: &AttributeValue<Reader<'_>>| -> Option<TypeRef> {
        match *v {
            AttributeValue::DebugInfoRef(o) => Some(o.0 as u64),
            AttributeValue::UnitRef(UnitOffset(o)) => unit_start.checked_add(o as u64),
            _ => None,
        }
    };
    for spec in abbrev.attributes() {
        let spec: &AttributeSpecification = spec;
        let v = raw.read_attribute(*spec)?.raw_value();
        match spec.name() {
            gimli::DW_AT_name => a.name = attr_string(&v),
            gimli::DW_AT_byte_size => a.byte_size = attr_u64(&v),
            gimli::DW_AT_type => a.ty = as_ref(&v),
            gimli::DW_AT_encoding => a.encoding = attr_u64(&v).and_then(|e| u8::try_from(e).ok()),
            gimli::DW_AT_data_member_location => a.member_offset = attr_u64(&v),
            gimli::DW_AT_count => a.count = attr_u64(&v),
            gimli::DW_AT_upper_bound => a.upper_bound = attr_u64(&v),
            gimli::DW_AT_location => {
                if let AttributeValue::Exprloc(e) = v {
                    a.location = Some(e.0.slice().to_vec());
                } else if let AttributeValue::Block(b) = v {
                    a.location = Some(b.slice().to_vec());
                }
            }
            gimli::DW_AT_const_value => a.const_value = attr_i64(&v),
            DW_AT_GO_KIND => a.go_kind = attr_u64(&v).map(|k| k as u8),
            DW_AT_GO_KEY => a.go_key = as_ref(&v),
            DW_AT_GO_ELEM => a.go_elem = as_ref(&v),
            DW_AT_GO_EMBEDDED_FIELD => {
                a.embedded =
                    matches!(v, AttributeValue::Flag(true)) || attr_u64(&v).is_some_and(|x| x != 0)
            }
            DW_AT_GO_RUNTIME_TYPE => a.runtime_type = attr_u64(&v),
            _ => {}
        }
    }
    Ok(a)
}
