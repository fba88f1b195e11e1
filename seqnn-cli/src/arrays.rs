//! The arrays `seqnn predict` reads and writes: NumPy `.npy` files and `.npz` archives of them.
//!
//! ndarray-npy parses each array's header and data, in either byte order and either memory
//! order, as `np.load` does. What is done here is the part that is seqnn's: which dtypes a model
//! takes and what they become, and the checks that keep a file from ending the program.
//!
//! | NumPy dtype | given to the model as |
//! |---|---|
//! | float32 | as is |
//! | float64 | rounded to the nearest float32, as `arr.astype(np.float32)` |
//! | int8, int16, uint8, uint16 | int32 ids, all exact in float32 |
//! | int32, int64, uint32 | as they are ([`seqnn::Element`]); a value beyond ±2^24, which float32 cannot hold exactly, is refused with its position |
//! | uint64 | int64 ids, after the same check |
//! | bool | 0.0 or 1.0 |
//!
//! Before ndarray-npy allocates the array a header describes, the data the header announces is
//! checked against the bytes really there, so a small hostile file cannot ask for terabytes.

use std::fmt::Display;
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{ArrayD, Axis, Slice};
use ndarray_npy::npy::header::{Header, ReadHeaderError};
use ndarray_npy::{ReadNpyExt, ReadableElement, WriteNpyError, WriteNpyExt};
use seqnn::{Element, Error, InputArray, Shape, Shared};

/// The six bytes every `.npy` file starts with.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// One input array, in the element type the model is given it in.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// Values, or ids that came as floats or bools.
    F32(ArrayD<f32>),
    /// Integer ids, each exact in f32.
    I32(ArrayD<i32>),
    /// Integer ids, each exact in f32.
    I64(ArrayD<i64>),
    /// Integer ids, each exact in f32.
    U32(ArrayD<u32>),
}

impl Array {
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::F32(a) => a.shape(),
            Array::I32(a) => a.shape(),
            Array::I64(a) => a.shape(),
            Array::U32(a) => a.shape(),
        }
    }

    /// Samples `start..end`, as the model takes them.
    ///
    /// # Panics
    /// When `start..end` is not within the first axis: the caller slices within the sample
    /// count every input was checked to have.
    pub fn rows(&self, start: usize, end: usize) -> InputArray<'_> {
        let rows = Slice::from(start..end);
        match self {
            Array::F32(a) => InputArray::F32(a.slice_axis(Axis(0), rows)),
            Array::I32(a) => InputArray::I32(a.slice_axis(Axis(0), rows)),
            Array::I64(a) => InputArray::I64(a.slice_axis(Axis(0), rows)),
            Array::U32(a) => InputArray::U32(a.slice_axis(Axis(0), rows)),
        }
    }
}

/// The arrays of an input file.
#[derive(Debug)]
pub struct InputFile {
    path: PathBuf,
    contents: Contents,
}

#[derive(Debug)]
enum Contents {
    /// The one array of a `.npy` file.
    Npy(Array),
    /// The members of a `.npz` archive with their names (`x` for the member `x.npy`), in the
    /// archive's order.
    Npz(Vec<(String, Array)>),
}

/// Reads a `.npy` file or a `.npz` archive (told apart by their first bytes, as `np.load`
/// does). Every array is read, converted and checked here, before any model is loaded.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::File`] naming it, and the member in an
/// archive, for anything wrong with what it holds.
pub fn read(path: &Path) -> Result<InputFile, Error> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let is_npz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    if bytes.starts_with(b"PK") {
        let members = read_npz(&bytes).map_err(|(message, source)| Error::File {
            path: path.to_path_buf(),
            message,
            source,
        })?;
        Ok(InputFile {
            path: path.to_path_buf(),
            contents: Contents::Npz(members),
        })
    } else if is_npz {
        Err(file_error(
            path,
            "not a .npz file: it is not a zip archive, as np.savez writes",
        ))
    } else {
        let array = parse_npy(&bytes)
            .and_then(|a| refuse_scalar(a, "the input"))
            .map_err(|m| file_error(path, m))?;
        Ok(InputFile {
            path: path.to_path_buf(),
            contents: Contents::Npy(array),
        })
    }
}

impl InputFile {
    /// The arrays for a model's inputs, `wanted` its input names, in the model's order: a
    /// `.npy` file's array for a model of one input; the members of a `.npz` archive named
    /// after the inputs, or else `arr_0`, `arr_1`, ... in order (`np.savez(path, a, b)`), or
    /// else its only member for a model of one input.
    ///
    /// # Errors
    /// [`Error::File`] naming the file, the arrays it has and the inputs the model takes, when
    /// they do not match; or when the arrays have different numbers of samples.
    pub fn for_inputs(self, wanted: &[String]) -> Result<Vec<Array>, Error> {
        self.for_names(wanted, "input")
    }

    /// The arrays for a model's outputs (the targets of `fit` and `evaluate`), `wanted` its
    /// output names, matched as [`for_inputs`](InputFile::for_inputs) matches inputs.
    ///
    /// # Errors
    /// As [`for_inputs`](InputFile::for_inputs), naming outputs.
    pub fn for_outputs(self, wanted: &[String]) -> Result<Vec<Array>, Error> {
        self.for_names(wanted, "output")
    }

    /// The arrays for `wanted`, the names of the model's `what`s (`"input"`, `"output"`).
    fn for_names(self, wanted: &[String], what: &str) -> Result<Vec<Array>, Error> {
        let path = self.path;
        let arrays = match self.contents {
            Contents::Npy(array) if wanted.len() == 1 => return Ok(vec![array]),
            Contents::Npy(_) => {
                return Err(file_error(
                    &path,
                    format!(
                        "a .npy file holds one array, and the model has {} {what}s ({}): \
                         give a .npz file with one array per {what}, e.g. {}",
                        wanted.len(),
                        wanted.join(", "),
                        savez_by_name(wanted)
                    ),
                ))
            }
            Contents::Npz(members) => {
                match_members(members, wanted, what).map_err(|m| file_error(&path, m))?
            }
        };
        same_sample_count(&arrays, wanted).map_err(|m| file_error(&path, m))?;
        Ok(arrays)
    }
}

/// The members for `wanted`, in its order: by name, else `arr_0`, `arr_1`, ..., else the one
/// member of a one-input model's archive.
fn match_members(
    mut members: Vec<(String, Array)>,
    wanted: &[String],
    what: &str,
) -> Result<Vec<Array>, String> {
    let in_order: Vec<String> = (0..wanted.len()).map(|i| format!("arr_{i}")).collect();
    if let Some(arrays) = pick(&mut members, wanted).or_else(|| pick(&mut members, &in_order)) {
        return Ok(arrays);
    }
    if wanted.len() == 1 && members.len() == 1 {
        return Ok(members.into_iter().map(|(_, a)| a).collect());
    }
    let names: Vec<&str> = members.iter().map(|(m, _)| m.as_str()).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|n| !names.contains(n))
        .collect();
    let extra: Vec<&str> = names
        .iter()
        .copied()
        .filter(|m| !wanted.iter().any(|n| n == m))
        .collect();
    let mut detail = Vec::new();
    if !missing.is_empty() {
        detail.push(format!("no array for {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        detail.push(format!("not {what}s: {}", extra.join(", ")));
    }
    let holds = if names.is_empty() {
        "no arrays".to_string()
    } else {
        format!("the arrays {}", names.join(", "))
    };
    let in_order: Vec<String> = (0..wanted.len()).map(|i| format!("x{i}")).collect();
    Err(format!(
        "it holds {holds}, and the model's {what}s are {} ({}): name the arrays after the \
         {what}s, {}, or give them in order, np.savez(path, {})",
        wanted.join(", "),
        detail.join("; "),
        savez_by_name(wanted),
        in_order.join(", ")
    ))
}

/// The call that writes arrays named after `inputs`: `np.savez(path, left=..., right=...)`.
fn savez_by_name(inputs: &[String]) -> String {
    let named: Vec<String> = inputs.iter().map(|n| format!("{n}=...")).collect();
    format!("np.savez(path, {})", named.join(", "))
}

/// The arrays named `names`, in that order, taken out of `members` when it holds exactly
/// those names; else `None`, with `members` as it was.
fn pick(members: &mut Vec<(String, Array)>, names: &[String]) -> Option<Vec<Array>> {
    let all_there =
        members.len() == names.len() && names.iter().all(|n| members.iter().any(|(m, _)| m == n));
    if !all_there {
        return None;
    }
    // Names are unique in both lists (a repeated member is refused when the file is read).
    names
        .iter()
        .map(|n| {
            let i = members.iter().position(|(m, _)| m == n)?;
            Some(members.swap_remove(i).1)
        })
        .collect()
}

/// Checks that every input has as many samples (rows of its first axis) as the first.
fn same_sample_count(arrays: &[Array], names: &[String]) -> Result<(), String> {
    let counts: Vec<usize> = arrays
        .iter()
        .map(|a| a.shape().first().copied().unwrap_or(0))
        .collect();
    if counts.windows(2).all(|w| w[0] == w[1]) {
        return Ok(());
    }
    let each: Vec<String> = names
        .iter()
        .zip(&counts)
        .map(|(n, c)| format!("{n} has {c}"))
        .collect();
    Err(format!(
        "Data cardinality is ambiguous: the inputs have different numbers of samples ({}); \
         every input needs one row per sample",
        each.join(", ")
    ))
}

/// A file error: the message, and the reader's error underneath when there is one.
type Failed = (String, Option<seqnn::Source>);

fn sourced(message: String, e: impl std::error::Error + Send + Sync + 'static) -> Failed {
    (message, Some(Shared(Arc::new(e))))
}

/// Every member of an archive, read in full and converted; the names without `.npy`.
fn read_npz(bytes: &[u8]) -> Result<Vec<(String, Array)>, Failed> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| sourced(format!("not a .npz file: a damaged zip archive ({e})"), e))?;
    let mut members: Vec<(String, Array)> = Vec::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| sourced(format!("cannot read member {i} of the archive ({e})"), e))?;
        if member.is_dir() {
            continue;
        }
        let name = member
            .name()
            .map_err(|e| {
                sourced(
                    format!("member {i} has a name that cannot be read ({e})"),
                    e,
                )
            })?
            .into_owned();
        // The declared size bounds what is read, but nothing is reserved from it: a damaged
        // size field costs only the bytes that are really there.
        let declared = member.size();
        let mut data = Vec::new();
        member
            .by_ref()
            .take(declared.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| sourced(format!("cannot unpack {name} ({e})"), e))?;
        if data.len() as u64 != declared {
            return Err((
                format!("{name} is truncated or damaged in the archive"),
                None,
            ));
        }
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let array = parse_npy(&data)
            .and_then(|a| refuse_scalar(a, &format!("the array {key}")))
            .map_err(|m| (format!("{name}: {m}"), None))?;
        if members.iter().any(|(m, _)| *m == key) {
            return Err((
                format!("two members hold an array named {key} ({key} and {key}.npy)"),
                None,
            ));
        }
        members.push((key, array));
    }
    Ok(members)
}

/// A 0-d array, which has no batch axis, is refused.
fn refuse_scalar(array: Array, what: &str) -> Result<Array, String> {
    if array.shape().is_empty() {
        Err(format!(
            "{what} is a scalar, shape (); a model takes an array with the batch on its first axis"
        ))
    } else {
        Ok(array)
    }
}

/// A NumPy dtype seqnn reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    Bool,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Dtype {
    /// The dtype of a header's `descr`, in either byte order, as ndarray-npy reads them.
    fn of(descr: &str) -> Option<Dtype> {
        let (order, code) = (descr.get(..1)?, descr.get(1..)?);
        let dtype = match code {
            "b1" => Dtype::Bool,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            "i1" => Dtype::I8,
            "i2" => Dtype::I16,
            "i4" => Dtype::I32,
            "i8" => Dtype::I64,
            "u1" => Dtype::U8,
            "u2" => Dtype::U16,
            "u4" => Dtype::U32,
            "u8" => Dtype::U64,
            _ => return None,
        };
        // One byte has no byte order: NumPy writes '|u1'.
        let known = if dtype.size() == 1 {
            order == "|"
        } else {
            order == "<" || order == ">"
        };
        known.then_some(dtype)
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// NumPy's name for it.
    fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
        }
    }
}

/// The bytes of a `.npy` file as the array the model is given (see the module docs).
fn parse_npy(bytes: &[u8]) -> Result<Array, String> {
    if !bytes.starts_with(NPY_MAGIC) {
        return Err("not a .npy file: it does not start with \\x93NUMPY, as np.save writes".into());
    }
    let mut data = bytes;
    let header = Header::from_reader(&mut data).map_err(|e| match e {
        ReadHeaderError::Io(_) => "truncated: the file ends inside its header".to_string(),
        ReadHeaderError::Parse(e) => {
            format!("not a .npy header seqnn reads: {}", brief(&e.to_string()))
        }
    })?;
    let descr = &header.type_descriptor;
    let dtype = descr
        .as_string()
        .and_then(|d| Dtype::of(d))
        .ok_or_else(|| {
            format!(
                "dtype {} is not supported; seqnn reads float32, float64, integer and bool \
             arrays ('<f4', '<f8', '<i8', '|b1', ...)",
                descr
                    .format_ascii()
                    .unwrap_or_else(|_| "of this header".into())
            )
        })?;
    let shape = Shape::known(&header.shape);
    let needed = seqnn::limits::elements(&header.shape)
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(|| format!("shape {shape} of {} is too large", dtype.name()))?;
    if data.len() != needed {
        let what = if data.len() < needed {
            "truncated: "
        } else {
            ""
        };
        return Err(format!(
            "{what}the data of shape {shape} of {} should be {needed} bytes, the file holds {}",
            dtype.name(),
            data.len()
        ));
    }
    Ok(match dtype {
        Dtype::F32 => Array::F32(typed::<f32>(bytes)?),
        Dtype::F64 => Array::F32(typed::<f64>(bytes)?.mapv(|v| v as f32)),
        Dtype::Bool => Array::F32(typed::<bool>(bytes)?.mapv(|b| f32::from(u8::from(b)))),
        Dtype::I8 => Array::I32(typed::<i8>(bytes)?.mapv(i32::from)),
        Dtype::I16 => Array::I32(typed::<i16>(bytes)?.mapv(i32::from)),
        Dtype::U8 => Array::I32(typed::<u8>(bytes)?.mapv(i32::from)),
        Dtype::U16 => Array::I32(typed::<u16>(bytes)?.mapv(i32::from)),
        Dtype::I32 => Array::I32(exact(typed::<i32>(bytes)?, dtype, Element::to_f32)?),
        Dtype::I64 => Array::I64(exact(typed::<i64>(bytes)?, dtype, Element::to_f32)?),
        Dtype::U32 => Array::U32(exact(typed::<u32>(bytes)?, dtype, Element::to_f32)?),
        Dtype::U64 => {
            let ids = exact(typed::<u64>(bytes)?, dtype, |v| {
                i64::try_from(v).ok().and_then(Element::to_f32)
            })?;
            // Every value is within ±2^24, checked above.
            Array::I64(ids.mapv(|v| v as i64))
        }
    })
}

/// A parser's message that may quote the file (pest shows the whole header line, with a
/// caret under the column) cut to what a person reads: each line's words, at most 80
/// characters of them, the gutter lines left out.
fn brief(message: &str) -> String {
    const MAX: usize = 80;
    message
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty() && line != "|")
        .map(|line| match line.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}...", &line[..cut]),
            None => line,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The array ndarray-npy reads, in C order whatever the file's order.
fn typed<T: ReadableElement + Clone>(bytes: &[u8]) -> Result<ArrayD<T>, String> {
    let array = ArrayD::<T>::read_npy(bytes).map_err(|e| format!("cannot read the data: {e}"))?;
    Ok(if array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned()
    })
}

/// The integers, if `to_f32` holds each exactly; else the first that it does not, and where.
fn exact<T: Copy + Display>(
    array: ArrayD<T>,
    dtype: Dtype,
    to_f32: impl Fn(T) -> Option<f32>,
) -> Result<ArrayD<T>, String> {
    match array.indexed_iter().find(|(_, &v)| to_f32(v).is_none()) {
        None => Ok(array),
        Some((index, v)) => Err(format!(
            "{} value {v} at index {} cannot be represented exactly as float32 (integers \
             beyond ±2^24 = 16777216 would become other ids)",
            dtype.name(),
            Shape::known(ndarray::Dimension::slice(&index))
        )),
    }
}

/// Writes one array as a float32 `.npy` file, as `np.save` does.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_npy(path: &Path, array: &ArrayD<f32>) -> Result<(), Error> {
    let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
    let mut out = BufWriter::new(file);
    array
        .write_npy(&mut out)
        .map_err(|e| write_error(path, e))?;
    out.flush().map_err(|e| io_error(path, e))
}

/// Writes named arrays as a `.npz` archive of float32 `.npy` members, as `np.savez` does.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_npz(path: &Path, arrays: &[(&str, &ArrayD<f32>)]) -> Result<(), Error> {
    let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
    let zip_error = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(e) => io_error(path, e),
        e => Error::File {
            path: path.to_path_buf(),
            message: format!("cannot write the archive ({e})"),
            source: Some(Shared(Arc::new(e))),
        },
    };
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    for (name, array) in arrays {
        // A member past 4 GiB needs zip64's sizes; the header adds at most a few kB.
        let large = (array.len() as u64).saturating_mul(4) > u64::from(u32::MAX) - (1 << 20);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(large);
        zip.start_file(format!("{name}.npy"), options)
            .map_err(zip_error)?;
        array
            .write_npy(&mut zip)
            .map_err(|e| write_error(path, e))?;
    }
    let mut out = zip.finish().map_err(zip_error)?;
    out.flush().map_err(|e| io_error(path, e))
}

fn write_error(path: &Path, e: WriteNpyError) -> Error {
    match e {
        WriteNpyError::Io(e) => io_error(path, e),
        e => Error::File {
            path: path.to_path_buf(),
            message: format!("cannot write the array ({e})"),
            source: Some(Shared(Arc::new(e))),
        },
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: Shared(Arc::new(e)),
    }
}

fn file_error(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: message.into(),
        source: None,
    }
}
