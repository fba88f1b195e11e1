//! Reading Keras's HDF5 contents with the pure-Rust `hdf5-pure`: string attributes, and float32
//! weights checked against the shape the model expects before anything is allocated.

use std::collections::HashMap;

use hdf5_pure::{AttrValue, Datatype, File};
use ndarray::{ArrayD, IxDyn};

use crate::keras::LoadError;
use crate::shape::Shape;

/// A message-carrying error of this module; the caller adds the path.
pub(crate) type Problem = String;

/// Parses HDF5 bytes. A file shorter than the end its superblock declares is truncated, and
/// refused even when what is left would read.
pub(crate) fn open(bytes: Vec<u8>) -> Result<File, LoadError> {
    let len = bytes.len() as u64;
    let file = File::from_bytes(bytes)
        .map_err(|e| LoadError::sourced(format!("not a readable HDF5 file ({e})"), e))?;
    let superblock = file.superblock();
    let end = superblock
        .eof_address
        .saturating_add(superblock.base_address.get());
    if end > len {
        return Err(format!(
            "the HDF5 file is truncated: its superblock says it ends at byte {end}, but it has \
             {len} bytes"
        )
        .into());
    }
    Ok(file)
}

/// The attributes of the group at `path` (`""` or `"/"` for the root).
pub(crate) fn attrs(file: &File, path: &str) -> Result<HashMap<String, AttrValue>, Problem> {
    let group = if path.is_empty() || path == "/" {
        file.root()
    } else {
        file.group(path)
            .map_err(|e| format!("no group {path} ({e})"))?
    };
    group
        .attrs()
        .map_err(|e| format!("cannot read the attributes of {path:?} ({e})"))
}

/// An attribute as one string, whatever string type h5py stored it as.
pub(crate) fn attr_string(attrs: &HashMap<String, AttrValue>, name: &str) -> Option<String> {
    match attrs.get(name)? {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(s.clone()),
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => {
            Some(value.clone())
        }
        AttrValue::U8Array(bytes) => String::from_utf8(bytes.clone()).ok(),
        other => strings(other).and_then(|v| (v.len() == 1).then(|| v[0].clone())),
    }
}

fn strings(v: &AttrValue) -> Option<Vec<String>> {
    match v {
        AttrValue::StringArray(v)
        | AttrValue::AsciiStringArray(v)
        | AttrValue::VarLenStringArray(v)
        | AttrValue::VarLenAsciiStringArray(v)
        | AttrValue::VarLenAsciiCharArray(v) => Some(v.clone()),
        AttrValue::StringArraySized { values, .. }
        | AttrValue::AsciiStringArraySized { values, .. } => Some(values.clone()),
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(vec![s.clone()]),
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => {
            Some(vec![value.clone()])
        }
        _ => None,
    }
}

/// A list-of-strings attribute, joined back from Keras's chunks (`name0`, `name1`, ...) when
/// Keras split it because it exceeded HDF5's 64 KB attribute limit. An empty list is
/// `Some(vec![])`; a missing attribute is `None`.
pub(crate) fn attr_strings(attrs: &HashMap<String, AttrValue>, name: &str) -> Option<Vec<String>> {
    if let Some(v) = attrs.get(name) {
        return Some(strings(v).unwrap_or_default());
    }
    let mut out = Vec::new();
    let mut found = false;
    for chunk in 0.. {
        match attrs.get(&format!("{name}{chunk}")) {
            Some(v) => {
                found = true;
                out.extend(strings(v).unwrap_or_default());
            }
            None => break,
        }
    }
    found.then_some(out)
}

/// The float32 dataset at `path`, which must have exactly `expected` shape. The shape and the
/// type are checked before the data is read, so a damaged file cannot make this allocate more
/// than the model's own weight.
pub(crate) fn read_weight(
    file: &File,
    path: &str,
    expected: &[usize],
) -> Result<ArrayD<f32>, Problem> {
    let ds = file
        .dataset(path)
        .map_err(|e| format!("missing weight {path} ({e})"))?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(|e| format!("cannot read the shape of weight {path} ({e})"))?
        .into_iter()
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    if shape != expected {
        return Err(format!(
            "weight {path} has shape {}, but the model expects {}",
            Shape::known(&shape),
            Shape::known(expected)
        ));
    }
    match ds.datatype() {
        Ok(Datatype::FloatingPoint { size: 4, .. }) => {}
        Ok(other) => {
            return Err(format!(
                "weight {path} is stored as {}, but seqnn reads float32 weights",
                type_name(&other)
            ))
        }
        Err(e) => return Err(format!("cannot read the type of weight {path} ({e})")),
    }
    let values = ds
        .read_f32()
        .map_err(|e| format!("cannot read weight {path} ({e})"))?;
    ArrayD::from_shape_vec(IxDyn(expected), values)
        .map_err(|_| format!("weight {path} holds fewer values than its shape says"))
}

fn type_name(t: &Datatype) -> String {
    match t {
        Datatype::FloatingPoint { size, .. } => format!("float{}", size * 8),
        Datatype::FixedPoint { size, .. } => format!("a {}-bit integer", size * 8),
        Datatype::String { .. } => "strings".into(),
        _ => "a non-numeric type".into(),
    }
}
