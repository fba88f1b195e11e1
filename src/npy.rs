//! NumPy `.npy` files: read arrays saved with `np.save`, write float32 arrays `np.load` opens.
//!
//! Behind the `keras` cargo feature (on by default). The `seqnn predict` command reads its input
//! and writes its output with these functions.
//!
//! Reading takes the format versions 1.0, 2.0 and 3.0 in C order and little-endian byte order,
//! with these dtypes, all converted to `f32`:
//!
//! | descr | NumPy dtype | conversion |
//! |---|---|---|
//! | `<f4` | float32 | as is |
//! | `<f8` | float64 | rounded to the nearest f32, as `arr.astype(np.float32)` |
//! | `<i4`, `<i8`, `<i2`, `\|i1` | int32, int64, int16, int8 | exact; an integer that f32 cannot hold exactly (beyond ±2^24) is an error |
//! | `<u4`, `<u8`, `<u2`, `\|u1` | uint32, uint64, uint16, uint8 | exact, as the signed types |
//! | `\|b1` | bool | `0.0` or `1.0` |
//!
//! Integer arrays are the ids an `Embedding` takes, so a large id is refused rather than rounded
//! to a neighbouring id without a word.
//!
//! Every problem with a file is an [`Error::File`] naming the file and what is wrong: a bad magic
//! string, an unknown version, a header that is not a NumPy header or is larger than 1 MiB,
//! Fortran order, a big-endian or unsupported dtype, a shape whose size overflows, data shorter
//! or longer than the shape says. The data size is checked against the file's size before
//! anything is allocated for it.
//!
//! ```no_run
//! use seqnn::npy::{read_npy, write_npy};
//!
//! let x = read_npy("input.npy")?; // e.g. np.save("input.npy", np.zeros((4, 2, 10)))
//! write_npy("copy.npy", &x)?;     // float32, as np.save writes it
//! # Ok::<(), seqnn::Error>(())
//! ```

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::shape::{unravel, Shape};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The largest header accepted, in bytes. NumPy itself refuses headers over 10 000 bytes unless
/// told otherwise; a real header is about a hundred bytes.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// NumPy aligns the data to this many bytes (`numpy.lib.format.ARRAY_ALIGN`).
const ARRAY_ALIGN: usize = 64;

/// NumPy leaves room for the first dimension to grow to this many digits
/// (`numpy.lib.format.GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Nesting deeper than this in a header is refused, so that a hostile header cannot exhaust the
/// stack. A structured dtype, the deepest thing NumPy writes, nests three levels.
const MAX_DEPTH: usize = 32;

/// Reads a `.npy` file into an `f32` array of the shape it holds.
///
/// See the [module docs](self) for the versions and dtypes accepted and how they convert.
///
/// ```no_run
/// let ids = seqnn::npy::read_npy("ids.npy")?; // np.save("ids.npy", np.array([[3, 1, 0]]))
/// assert_eq!(ids.shape(), &[1, 3]);
/// assert_eq!(ids[[0, 0]], 3.0);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// [`Error::File`] naming the path: when the file cannot be opened or read, or when it is not a
/// `.npy` file seqnn reads (see [`parse_npy`]).
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    read_file(path.as_ref())
}

/// Parses the bytes of a `.npy` file into an `f32` array. `name` stands for the file in errors.
///
/// ```
/// use ndarray::{arr2, ArrayD};
/// use seqnn::npy::{npy_bytes, parse_npy};
///
/// let x: ArrayD<f32> = arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn();
/// let bytes = npy_bytes(&x);
/// assert_eq!(parse_npy(&bytes, "x.npy")?, x);
///
/// let err = parse_npy(b"not an array", "x.npy").unwrap_err();
/// assert!(err.to_string().starts_with("x.npy: not a .npy file"));
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// [`Error::File`] with `name` as its path and a message saying what is wrong: the magic string,
/// the version, the header (missing, malformed, over 1 MiB, missing or unknown keys), Fortran
/// order, a dtype that is big-endian or not one of those in the [module docs](self), a shape
/// whose size overflows, data shorter or longer than the shape needs, or an integer that `f32`
/// cannot hold exactly (the message gives the value and its index).
pub fn parse_npy(bytes: &[u8], name: &str) -> Result<ArrayD<f32>> {
    parse_bytes(bytes).map_err(|message| Error::file(name, message))
}

/// Writes an array as a `.npy` file: format version 1.0, dtype `<f4`, C order, the bytes
/// `np.save` writes for the same float32 array.
///
/// ```no_run
/// use ndarray::{ArrayD, IxDyn};
/// let y = ArrayD::<f32>::zeros(IxDyn(&[4, 3]));
/// seqnn::npy::write_npy("y.npy", &y)?; // np.load("y.npy").shape == (4, 3)
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// [`Error::File`] naming the path when the file cannot be written.
pub fn write_npy(path: impl AsRef<Path>, array: &ArrayD<f32>) -> Result<()> {
    let path = path.as_ref();
    std::fs::write(path, npy_bytes(array)).map_err(|e| Error::io(path, e))
}

/// The bytes of a `.npy` file holding `array` as float32, as [`write_npy`] writes them.
///
/// The header is the one NumPy writes: `{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }`,
/// padded with spaces and a final newline so that the data starts at a multiple of 64 bytes.
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// let bytes = seqnn::npy::npy_bytes(&ArrayD::<f32>::zeros(IxDyn(&[2, 3])));
/// assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
/// assert_eq!(bytes.len(), 128 + 6 * 4);
/// ```
pub fn npy_bytes(array: &ArrayD<f32>) -> Vec<u8> {
    let shape = array.shape();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        Shape::known(shape)
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // The header's length counts the padding and the newline that bring the data to a multiple
    // of 64 bytes. Version 1.0 stores it in two bytes; a longer header (thousands of axes) needs
    // version 2.0's four, as NumPy chooses.
    let pad = |len_bytes: usize| {
        let unpadded = MAGIC.len() + 2 + len_bytes + header.len() + 1;
        ARRAY_ALIGN - unpadded % ARRAY_ALIGN
    };
    let (version, pad, len_field) = match u16::try_from(header.len() + pad(2) + 1) {
        Ok(len) => (1u8, pad(2), len.to_le_bytes().to_vec()),
        Err(_) => {
            let len = u32::try_from(header.len() + pad(4) + 1).unwrap_or(u32::MAX);
            (2u8, pad(4), len.to_le_bytes().to_vec())
        }
    };

    let data_offset = MAGIC.len() + 2 + len_field.len() + header.len() + pad + 1;
    let mut out = Vec::with_capacity(data_offset + array.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&len_field);
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + pad, b' ');
    out.push(b'\n');
    // `iter` walks the array in logical (C) order whatever its memory layout.
    for &v in array.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// An element type seqnn reads.
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

    /// The dtype of a `descr` string such as `<f4`.
    fn from_descr(descr: &str) -> std::result::Result<Dtype, String> {
        let unsupported = || {
            format!(
                "dtype '{descr}' is not supported; seqnn reads float32, float64, \
                 integer and bool arrays ('<f4', '<f8', '<i4', '<i8', ...)"
            )
        };
        let mut chars = descr.chars();
        let order = chars.next().ok_or_else(unsupported)?;
        let code = chars.as_str();
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
            _ => return Err(unsupported()),
        };
        match order {
            '<' => Ok(dtype),
            // One byte has no byte order: NumPy writes '|u1'.
            '|' | '>' | '=' if dtype.size() == 1 => Ok(dtype),
            '>' => Err(format!(
                "big-endian dtype '{descr}' is not supported; save little-endian data, \
                 e.g. np.save(path, arr.astype('<{code}'))"
            )),
            '|' | '=' => Err(format!(
                "dtype '{descr}' has no explicit byte order; expected '<{code}'"
            )),
            _ => Err(unsupported()),
        }
    }
}

/// What the header of a `.npy` file says.
#[derive(Debug)]
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Where the data starts.
    data_offset: usize,
    /// How many bytes of data the shape and dtype need.
    data_len: usize,
}

impl Header {
    fn describe(&self) -> String {
        format!(
            "shape {} of {}",
            Shape::known(&self.shape),
            self.dtype.name()
        )
    }
}

/// Reads the file: the header first, then the data once its size agrees with the file's.
fn read_file(path: &Path) -> Result<ArrayD<f32>> {
    let io = |e: std::io::Error| Error::io(path, e);
    let bad = |message: String| Error::file(path, message);
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if metadata.is_dir() {
        return Err(bad("is a directory, not a .npy file".into()));
    }
    let file_len = metadata.len();
    // The magic, version, length and the largest header accepted: whatever the file holds, this
    // is all that is read before its header has been checked.
    let mut reader = file;
    let mut prefix = Vec::new();
    (&mut reader)
        .take((12 + MAX_HEADER_LEN) as u64)
        .read_to_end(&mut prefix)
        .map_err(io)?;
    let header = parse_header(&prefix).map_err(bad)?;
    let present = file_len.saturating_sub(header.data_offset as u64);
    check_data_len(&header, present).map_err(bad)?;

    let data = if prefix.len() as u64 == file_len {
        prefix.split_off(header.data_offset)
    } else {
        // Bounded by the file's size, checked above.
        let mut data = Vec::with_capacity(header.data_len);
        data.extend_from_slice(prefix.get(header.data_offset..).unwrap_or_default());
        drop(prefix);
        let rest = (header.data_len - data.len().min(header.data_len)) as u64;
        reader.take(rest).read_to_end(&mut data).map_err(io)?;
        data
    };
    check_data_len(&header, data.len() as u64).map_err(bad)?;
    decode(&header, &data).map_err(bad)
}

fn parse_bytes(bytes: &[u8]) -> std::result::Result<ArrayD<f32>, String> {
    let header = parse_header(bytes)?;
    let data = bytes.get(header.data_offset..).unwrap_or_default();
    check_data_len(&header, data.len() as u64)?;
    decode(&header, data)
}

/// Parses the magic, version, header length and header dictionary at the start of `bytes`.
fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if !bytes.starts_with(MAGIC) {
        let got = &bytes[..bytes.len().min(MAGIC.len())];
        return Err(format!(
            "not a .npy file: it should start with b\"\\x93NUMPY\", found {}",
            escape(got)
        ));
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err("truncated: the file ends before the format version".into()),
    };
    let (len_bytes, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => {
            return Err(format!(
                "unsupported .npy format version {major}.{minor}; seqnn reads 1.0, 2.0 and 3.0"
            ))
        }
    };
    let header_start = 8 + len_bytes;
    let header_len = match bytes.get(8..header_start) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        Some(&[a, b, c, d]) => {
            let len = u32::from_le_bytes([a, b, c, d]);
            usize::try_from(len).unwrap_or(usize::MAX)
        }
        _ => return Err("truncated: the file ends before the header length".into()),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(format!(
            "the header is {header_len} bytes, more than the {MAX_HEADER_LEN} bytes (1 MiB) \
             seqnn accepts"
        ));
    }
    let data_offset = header_start + header_len;
    let Some(raw) = bytes.get(header_start..data_offset) else {
        return Err(format!(
            "truncated: the header should be {header_len} bytes, the file holds {}",
            bytes.len() - header_start
        ));
    };
    let text: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|_| "the header is not valid UTF-8".to_string())?
            .to_string()
    } else {
        // Versions 1.0 and 2.0 are latin-1: each byte is the code point of its character.
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let literal =
        parse_literal(&text).map_err(|e| format!("invalid header {}: {e}", abbreviate(&text)))?;
    let (dtype, fortran_order, shape) = header_fields(literal)?;
    if fortran_order {
        return Err(
            "Fortran-order (column-major) arrays are not supported; save a C-order \
                    array, e.g. np.save(path, np.ascontiguousarray(arr))"
                .into(),
        );
    }
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {} has too many elements", Shape::known(&shape)))?;
    let data_len = count.checked_mul(dtype.size()).ok_or_else(|| {
        format!(
            "shape {} of {} is too large",
            Shape::known(&shape),
            dtype.name()
        )
    })?;
    Ok(Header {
        dtype,
        shape,
        data_offset,
        data_len,
    })
}

/// Checks that exactly the bytes the header announces follow it.
fn check_data_len(header: &Header, present: u64) -> std::result::Result<(), String> {
    let expected = header.data_len as u64;
    if present < expected {
        Err(format!(
            "truncated: the data of {} should be {expected} bytes, the file holds {present}",
            header.describe()
        ))
    } else if present > expected {
        Err(format!(
            "{} bytes after the end of the data ({} is {expected} bytes); is the header's \
             shape right?",
            present - expected,
            header.describe()
        ))
    } else {
        Ok(())
    }
}

/// Converts the data, whose length has been checked, to an `f32` array.
fn decode(header: &Header, data: &[u8]) -> std::result::Result<ArrayD<f32>, String> {
    let values: Vec<f32> = match header.dtype {
        Dtype::F32 => data
            .as_chunks::<4>()
            .0
            .iter()
            .map(|&b| f32::from_le_bytes(b))
            .collect(),
        Dtype::F64 => data
            .as_chunks::<8>()
            .0
            .iter()
            .map(|&b| f64::from_le_bytes(b) as f32)
            .collect(),
        Dtype::Bool => data.iter().map(|&b| f32::from(u8::from(b != 0))).collect(),
        Dtype::U8 => data.iter().map(|&b| f32::from(b)).collect(),
        Dtype::I8 => data.iter().map(|&b| f32::from(b as i8)).collect(),
        Dtype::I16 => data
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&b| f32::from(i16::from_le_bytes(b)))
            .collect(),
        Dtype::U16 => data
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&b| f32::from(u16::from_le_bytes(b)))
            .collect(),
        Dtype::I32 => integers(header, data, |b| i128::from(i32::from_le_bytes(b)))?,
        Dtype::U32 => integers(header, data, |b| i128::from(u32::from_le_bytes(b)))?,
        Dtype::I64 => integers(header, data, |b| i128::from(i64::from_le_bytes(b)))?,
        Dtype::U64 => integers(header, data, |b| i128::from(u64::from_le_bytes(b)))?,
    };
    ArrayD::from_shape_vec(IxDyn(&header.shape), values).map_err(|e| e.to_string())
}

/// Integers that f32 may not hold exactly: each is converted only if it comes back unchanged.
fn integers<const N: usize>(
    header: &Header,
    data: &[u8],
    value: impl Fn([u8; N]) -> i128,
) -> std::result::Result<Vec<f32>, String> {
    let (chunks, _) = data.as_chunks::<N>();
    let mut out = Vec::with_capacity(chunks.len());
    for (i, &bytes) in chunks.iter().enumerate() {
        let v = value(bytes);
        let f = v as f32;
        if f as i128 != v {
            return Err(format!(
                "{} value {v} at index {} cannot be represented exactly as float32 \
                 (integers beyond 2^24 = 16777216 lose precision)",
                header.dtype.name(),
                Shape::known(&unravel(i, &header.shape))
            ));
        }
        out.push(f);
    }
    Ok(out)
}

/// Bytes as a Python bytes literal would show them.
fn escape(bytes: &[u8]) -> String {
    let inner: String = bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    format!("b\"{inner}\"")
}

/// A header quoted in an error: trimmed, and cut short when long or strange.
fn abbreviate(text: &str) -> String {
    const MAX: usize = 120;
    let trimmed = text.trim();
    let cut: String = trimmed.chars().take(MAX).collect();
    let more = if trimmed.chars().count() > MAX {
        "..."
    } else {
        ""
    };
    format!("{:?}", format!("{cut}{more}"))
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    None,
    Int(i128),
    /// A tuple or a list.
    Seq(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

impl Literal {
    /// The literal as Python would print it, for messages.
    fn repr(&self) -> String {
        let join = |items: &[Literal]| items.iter().map(Literal::repr).collect::<Vec<_>>();
        match self {
            Literal::Str(s) => format!("'{s}'"),
            Literal::Bool(true) => "True".into(),
            Literal::Bool(false) => "False".into(),
            Literal::None => "None".into(),
            Literal::Int(n) => n.to_string(),
            Literal::Seq(items) => format!("({})", join(items).join(", ")),
            Literal::Dict(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.repr(), v.repr()))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
        }
    }
}

/// Parses the header's text: one Python literal, and nothing after it but spaces.
fn parse_literal(text: &str) -> std::result::Result<Literal, String> {
    let mut parser = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.pos != parser.s.len() {
        return Err(format!(
            "unexpected text after the dictionary at byte {}",
            parser.pos
        ));
    }
    Ok(value)
}

/// Reads `descr`, `fortran_order` and `shape` from the header's dictionary.
fn header_fields(header: Literal) -> std::result::Result<(Dtype, bool, Vec<usize>), String> {
    let Literal::Dict(entries) = header else {
        return Err(format!(
            "the header is {}, not a dictionary",
            abbreviate(&header.repr())
        ));
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        let Literal::Str(key) = key else {
            return Err(format!(
                "the header has a key {} that is not a string",
                key.repr()
            ));
        };
        let slot = match key.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            _ => {
                return Err(format!(
                    "the header has an unexpected key '{key}' (a .npy header has 'descr', \
                     'fortran_order' and 'shape')"
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("the header has the key '{key}' twice"));
        }
    }
    let missing = |k: &str| format!("the header has no '{k}' key");
    let dtype = match descr.ok_or_else(|| missing("descr"))? {
        Literal::Str(s) => Dtype::from_descr(&s)?,
        Literal::Seq(_) => {
            return Err("structured dtypes (records with named fields) are not supported".into())
        }
        other => return Err(format!("'descr' is {}, not a dtype string", other.repr())),
    };
    let fortran = match fortran.ok_or_else(|| missing("fortran_order"))? {
        Literal::Bool(b) => b,
        other => {
            return Err(format!(
                "'fortran_order' is {}, not True or False",
                other.repr()
            ))
        }
    };
    let shape = match shape.ok_or_else(|| missing("shape"))? {
        Literal::Seq(dims) => dims
            .into_iter()
            .map(|d| match d {
                Literal::Int(n) => usize::try_from(n)
                    .map_err(|_| format!("'shape' has the dimension {n}, which is not a size")),
                other => Err(format!("'shape' has {}, not an integer", other.repr())),
            })
            .collect::<std::result::Result<Vec<usize>, String>>()?,
        other => return Err(format!("'shape' is {}, not a tuple", other.repr())),
    };
    Ok((dtype, fortran, shape))
}

/// A recursive-descent reader of the Python literals in a header.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.s.get(self.pos).copied()
    }

    fn unexpected(&self) -> String {
        match self.s.get(self.pos) {
            Some(&c) => format!("unexpected {:?} at byte {}", char::from(c), self.pos),
            None => "unexpected end of the header".into(),
        }
    }

    fn value(&mut self, depth: usize) -> std::result::Result<Literal, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            Some(b'{') => self.dict(depth),
            Some(b'(') => self.seq(b')', depth),
            Some(b'[') => self.seq(b']', depth),
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Literal::Bool(true)),
                    b"False" => Ok(Literal::Bool(false)),
                    b"None" => Ok(Literal::None),
                    word => Err(format!(
                        "unexpected name '{}' at byte {start}",
                        String::from_utf8_lossy(word)
                    )),
                }
            }
            _ => Err(self.unexpected()),
        }
    }

    fn dict(&mut self, depth: usize) -> std::result::Result<Literal, String> {
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Literal::Dict(entries));
            }
            let key = self.value(depth + 1)?;
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// A tuple (`close` is `)`) or list (`]`); `(3)` is the integer 3, as in Python.
    fn seq(&mut self, close: u8, depth: usize) -> std::result::Result<Literal, String> {
        self.pos += 1; // '(' or '['
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                if close == b')' && items.len() == 1 && !trailing_comma {
                    return Ok(items.remove(0));
                }
                return Ok(Literal::Seq(items));
            }
            items.push(self.value(depth + 1)?);
            trailing_comma = false;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {}
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn string(&mut self, quote: u8) -> std::result::Result<Literal, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(format!("unterminated string starting at byte {start}")),
                Some(&c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    // Only the escapes a dtype string could hold; others are kept as written.
                    match self.s.get(self.pos + 1) {
                        Some(&c @ (b'\\' | b'\'' | b'"')) => {
                            out.push(c);
                            self.pos += 2;
                        }
                        _ => {
                            out.push(b'\\');
                            self.pos += 1;
                        }
                    }
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        Ok(Literal::Str(String::from_utf8_lossy(&out).into_owned()))
    }

    fn int(&mut self) -> std::result::Result<Literal, String> {
        let start = self.pos;
        let negative = match self.s.get(self.pos) {
            Some(b'-') => {
                self.pos += 1;
                true
            }
            Some(b'+') => {
                self.pos += 1;
                false
            }
            _ => false,
        };
        let digits_start = self.pos;
        let mut n: i128 = 0;
        while let Some(&c) = self.s.get(self.pos).filter(|c| c.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i128::from(c - b'0')))
                .ok_or_else(|| format!("the integer at byte {start} is too large"))?;
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(self.unexpected());
        }
        // Python 2's long integers, which old NumPy wrote as `3L`.
        if matches!(self.s.get(self.pos), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        Ok(Literal::Int(if negative { -n } else { n }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    /// A `.npy` file as NumPy writes it: `header` padded with spaces and a newline to 64 bytes
    /// (version 1.0) followed by `data`.
    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        npy_version(1, header, data)
    }

    fn npy_version(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let len_bytes = if major == 1 { 2 } else { 4 };
        let unpadded = 8 + len_bytes + header.len() + 1;
        let pad = 64 - unpadded % 64;
        let hlen = header.len() + pad + 1;
        let mut out = b"\x93NUMPY".to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(hlen as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(hlen as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(b' ', pad));
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }

    fn header(descr: &str, shape: &str) -> String {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
    }

    fn error(bytes: &[u8]) -> String {
        match parse_npy(bytes, "x.npy") {
            Ok(a) => panic!("expected an error, got {a:?}"),
            Err(Error::File { path, message, .. }) => {
                assert_eq!(path, std::path::Path::new("x.npy"));
                message
            }
            Err(other) => panic!("expected Error::File, got {other:?}"),
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/npy")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    const SIX: [f32; 6] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];

    fn six() -> ArrayD<f32> {
        arr2(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]).into_dyn()
    }

    #[test]
    fn round_trip() -> Result<()> {
        let x = arr2(&[[1.5f32, -2.25, 0.0], [f32::MAX, f32::MIN_POSITIVE, -0.0]]).into_dyn();
        assert_eq!(parse_npy(&npy_bytes(&x), "x")?, x);
        for shape in [&[][..], &[5], &[0, 3], &[2, 1, 4], &[1, 1, 1, 1, 1]] {
            let n: usize = shape.iter().product();
            let x = ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| i as f32).collect())
                .expect("sizes agree");
            let bytes = npy_bytes(&x);
            assert_eq!((bytes.len() - n * 4) % 64, 0, "data aligned to 64 bytes");
            assert_eq!(parse_npy(&bytes, "x")?, x);
        }
        Ok(())
    }

    /// A path in a fresh folder of the system's temporary directory.
    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("seqnn-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        dir.join(name)
    }

    #[test]
    fn round_trip_through_a_file() -> Result<()> {
        let path = temp_path("round_trip.npy");
        let x = six();
        write_npy(&path, &x)?;
        assert_eq!(read_npy(&path)?, x);
        std::fs::remove_file(&path).ok();
        Ok(())
    }

    #[test]
    fn a_file_larger_than_the_header_limit() -> Result<()> {
        // 2 MiB of data: read past the first 1 MiB the reader takes for the header.
        let n = 1 << 19;
        let x = ArrayD::from_shape_vec(IxDyn(&[n / 4, 4]), (0..n).map(|i| i as f32).collect())
            .expect("sizes agree");
        let path = temp_path("large.npy");
        let bytes = npy_bytes(&x);
        std::fs::write(&path, &bytes).expect("written");
        assert_eq!(read_npy(&path)?, x);
        // Cut short, and one byte too long.
        std::fs::write(&path, &bytes[..bytes.len() - 1]).expect("written");
        let m = read_npy(&path).unwrap_err().to_string();
        assert!(
            m.contains(": truncated: the data of shape (131072, 4) of float32"),
            "{m}"
        );
        let mut long = bytes.clone();
        long.push(0);
        std::fs::write(&path, &long).expect("written");
        let m = read_npy(&path).unwrap_err().to_string();
        assert!(m.contains("1 bytes after the end of the data"), "{m}");
        // A small file cut short.
        let small = npy_bytes(&six());
        std::fs::write(&path, &small[..small.len() - 4]).expect("written");
        let m = read_npy(&path).unwrap_err().to_string();
        assert!(m.contains("should be 24 bytes, the file holds 20"), "{m}");
        std::fs::remove_file(&path).ok();
        Ok(())
    }

    #[test]
    fn a_header_too_long_for_version_one_is_written_as_version_two() -> Result<()> {
        // 30 000 axes of 1: a 90 kB shape, beyond version 1.0's two-byte length.
        let x = ArrayD::from_elem(IxDyn(&vec![1; 30_000]), 2.5f32);
        let bytes = npy_bytes(&x);
        assert_eq!(&bytes[6..8], &[2, 0]);
        assert_eq!((bytes.len() - 4) % 64, 0);
        assert_eq!(parse_npy(&bytes, "x")?, x);
        Ok(())
    }

    #[test]
    fn writes_a_transposed_view_in_logical_order() -> Result<()> {
        let t = six().reversed_axes();
        let back = parse_npy(&npy_bytes(&t), "t")?;
        assert_eq!(back.shape(), &[3, 2]);
        assert_eq!(back, t);
        Ok(())
    }

    #[test]
    fn header_is_numpys() {
        let bytes = npy_bytes(&six());
        // np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)): 128 bytes of header.
        let expected_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 118);
        assert!(bytes[10..].starts_with(expected_header.as_bytes()));
        assert_eq!(bytes[127], b'\n');
        assert!(bytes[10 + expected_header.len()..127]
            .iter()
            .all(|&b| b == b' '));
        assert_eq!(bytes.len(), 128 + 24);
    }

    #[test]
    fn bytes_equal_numpys() {
        // Written by numpy 2.4.6; see tests/fixtures/npy/README.md.
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), SIX.to_vec()).expect("sizes agree");
        assert_eq!(npy_bytes(&x), fixture("f4_2x3.npy"));
        let x = ArrayD::from_shape_vec(IxDyn(&[]), vec![1.5]).expect("sizes agree");
        assert_eq!(npy_bytes(&x), fixture("f4_scalar.npy"));
        let x = ArrayD::from_shape_vec(IxDyn(&[5]), vec![0.5, -1.0, 2.0, 1e-3, 3e8])
            .expect("sizes agree");
        assert_eq!(npy_bytes(&x), fixture("f4_5.npy"));
    }

    #[test]
    fn each_dtype() -> Result<()> {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("<f4", SIX.iter().flat_map(|v| v.to_le_bytes()).collect()),
            (
                "<f8",
                SIX.iter()
                    .flat_map(|&v| f64::from(v).to_le_bytes())
                    .collect(),
            ),
            ("<i4", (0..6i32).flat_map(|v| v.to_le_bytes()).collect()),
            ("<i8", (0..6i64).flat_map(|v| v.to_le_bytes()).collect()),
            ("<i2", (0..6i16).flat_map(|v| v.to_le_bytes()).collect()),
            ("|i1", (0..6i8).flat_map(|v| v.to_le_bytes()).collect()),
            ("<u8", (0..6u64).flat_map(|v| v.to_le_bytes()).collect()),
            ("<u4", (0..6u32).flat_map(|v| v.to_le_bytes()).collect()),
            ("<u2", (0..6u16).flat_map(|v| v.to_le_bytes()).collect()),
            ("|u1", (0..6u8).collect()),
        ];
        for (descr, data) in cases {
            let x = parse_npy(&npy(&header(descr, "(2, 3)"), &data), descr)?;
            assert_eq!(x, six(), "{descr}");
        }
        let b = parse_npy(&npy(&header("|b1", "(3,)"), &[0, 1, 2]), "b")?;
        assert_eq!(b.as_slice(), Some(&[0.0, 1.0, 1.0][..]));
        Ok(())
    }

    #[test]
    fn the_header_numpy_writes_for_int64() -> Result<()> {
        // np.save(f, np.arange(6).reshape(2, 3)), byte for byte.
        let mut bytes =
            b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"
                .to_vec();
        bytes.resize(127, b' ');
        bytes.push(b'\n');
        bytes.extend((0..6i64).flat_map(|v| v.to_le_bytes()));
        assert_eq!(bytes, fixture("i8_2x3.npy"));
        assert_eq!(parse_npy(&bytes, "ids")?, six());
        Ok(())
    }

    #[test]
    fn numpy_fixtures() -> Result<()> {
        // Each made by numpy 2.4.6 from np.arange(6).reshape(2, 3).astype(dtype).
        for name in [
            "f4_2x3.npy",
            "f8_2x3.npy",
            "i4_2x3.npy",
            "i8_2x3.npy",
            "u1_2x3.npy",
            "i1_2x3.npy",
            "v2_f4_2x3.npy",
            "v3_f4_2x3.npy",
        ] {
            assert_eq!(parse_npy(&fixture(name), name)?, six(), "{name}");
        }
        let s = parse_npy(&fixture("f4_scalar.npy"), "scalar")?;
        assert_eq!(s.shape(), &[] as &[usize]);
        assert_eq!(s[IxDyn(&[])], 1.5);
        let e = parse_npy(&fixture("f8_embedding_ids.npy"), "ids")?;
        assert_eq!(e.shape(), &[2, 4]);
        assert_eq!(
            e.iter().copied().collect::<Vec<_>>(),
            [3.0, 1.0, 0.0, 0.0, 2.0, 2.0, 7.0, 1.0]
        );
        assert!(error(&fixture("f4_fortran.npy")).contains("Fortran"));
        assert!(error(&fixture("f4_big_endian.npy")).contains("big-endian"));
        assert!(error(&fixture("i8_too_large.npy")).contains("16777217"));
        Ok(())
    }

    #[test]
    fn versions_two_and_three() -> Result<()> {
        let data: Vec<u8> = SIX.iter().flat_map(|v| v.to_le_bytes()).collect();
        for major in [2, 3] {
            let bytes = npy_version(major, &header("<f4", "(2, 3)"), &data);
            assert_eq!(parse_npy(&bytes, "x")?, six());
        }
        let mut bad = npy(&header("<f4", "(2, 3)"), &data);
        bad[6] = 4;
        assert!(error(&bad).contains("version 4.0"), "{}", error(&bad));
        Ok(())
    }

    #[test]
    fn headers_written_differently() -> Result<()> {
        let data: Vec<u8> = SIX.iter().flat_map(|v| v.to_le_bytes()).collect();
        for h in [
            "{'descr':'<f4','fortran_order':False,'shape':(2,3)}",
            "{\"shape\": (2, 3), \"descr\": \"<f4\", \"fortran_order\": False}",
            "{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
        ] {
            assert_eq!(parse_npy(&npy(h, &data), "x")?, six(), "{h}");
        }
        let one: Vec<u8> = 7.0f32.to_le_bytes().to_vec();
        let s = parse_npy(&npy(&header("<f4", "()"), &one), "x")?;
        assert_eq!(s.ndim(), 0);
        let v = parse_npy(&npy(&header("<f4", "(1,)"), &one), "x")?;
        assert_eq!(v.shape(), &[1]);
        // `(1)` is the integer 1 in Python, not a shape.
        assert!(error(&npy(&header("<f4", "(1)"), &one)).contains("not a tuple"));
        Ok(())
    }

    #[test]
    fn large_integers_are_refused_with_their_position() -> Result<()> {
        let ok: Vec<u8> = [16_777_216i64, -16_777_216, 1 << 40, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // 2^24 and 2^40 are exact in f32.
        let x = parse_npy(&npy(&header("<i8", "(2, 2)"), &ok), "x")?;
        assert_eq!(x[[1, 0]], (1u64 << 40) as f32);
        let bad: Vec<u8> = [0i64, 1, 2, 16_777_217]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let m = error(&npy(&header("<i8", "(2, 2)"), &bad));
        assert!(m.contains("int64 value 16777217 at index (1, 1)"), "{m}");
        let bad: Vec<u8> = [i64::MAX].iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = error(&npy(&header("<i8", "(1,)"), &bad));
        assert!(m.contains("9223372036854775807 at index (0,)"), "{m}");
        let bad: Vec<u8> = [u64::MAX].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(error(&npy(&header("<u8", "(1,)"), &bad)).contains("uint64 value"));
        let bad: Vec<u8> = [-16_777_217i32]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(error(&npy(&header("<i4", "()"), &bad)).contains("at index ()"));
        Ok(())
    }

    #[test]
    fn truncated_and_overlong_data() {
        let data: Vec<u8> = SIX.iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = error(&npy(&header("<f4", "(2, 3)"), &data[..23]));
        assert!(m.starts_with("truncated"), "{m}");
        assert!(m.contains("24 bytes") && m.contains("23"), "{m}");
        let mut long = data.clone();
        long.push(0);
        assert!(error(&npy(&header("<f4", "(2, 3)"), &long)).contains("1 bytes after"));
        // Ends inside the preamble or the header.
        assert!(error(b"\x93NUMPY").contains("truncated"));
        assert!(error(b"\x93NUMPY\x01\x00").contains("truncated"));
        assert!(error(b"\x93NUMPY\x01\x00v\x00{'descr'").contains("truncated"));
    }

    #[test]
    fn bad_magic() {
        let m = error(b"PK\x03\x04 a zip archive");
        assert!(m.starts_with("not a .npy file"), "{m}");
        assert!(error(b"").starts_with("not a .npy file"));
    }

    #[test]
    fn fortran_order_is_refused() {
        let h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let m = error(&npy(h, &[0; 24]));
        assert!(m.contains("Fortran-order"), "{m}");
    }

    #[test]
    fn big_endian_and_unknown_dtypes_are_refused() {
        let m = error(&npy(&header(">f4", "(2, 3)"), &[0; 24]));
        assert!(m.contains("big-endian dtype '>f4'"), "{m}");
        assert!(error(&npy(&header(">i8", "(1,)"), &[0; 8])).contains("big-endian"));
        for descr in ["<c8", "<U3", "|O", "<f2", "", "<M8[ns]"] {
            let m = error(&npy(&header(descr, "(1,)"), &[0; 8]));
            assert!(m.contains("is not supported"), "{descr}: {m}");
        }
        let h = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
        assert!(error(&npy(h, &[0; 4])).contains("structured"));
    }

    #[test]
    fn shapes_that_overflow_are_refused_before_allocating() {
        let h = header("<f4", "(4294967296, 4294967296, 4294967296)");
        assert!(error(&npy(&h, &[])).contains("too many elements"));
        let h = header("<f8", &format!("({},)", usize::MAX / 4));
        assert!(error(&npy(&h, &[])).contains("too large"));
        // A size that fits in memory arithmetic but not in the file.
        let h = header("<f4", "(1000000000, 1000)");
        assert!(error(&npy(&h, &[0; 4])).starts_with("truncated"));
        assert!(error(&npy(&header("<f4", "(-1, 3)"), &[])).contains("not a size"));
    }

    #[test]
    fn oversized_and_malformed_headers() {
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&(2u32 << 20).to_le_bytes());
        let m = error(&bytes);
        assert!(m.contains("more than the 1048576 bytes"), "{m}");
        for (h, wanted) in [
            ("{'descr': '<f4', 'fortran_order': False}", "no 'shape' key"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                "unexpected key 'x'",
            ),
            (
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
                "the key 'descr' twice",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
                "not True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                "after the dictionary",
            ),
            (
                "{'descr': '<f4', 'fortran_order': Flase, 'shape': (1,)}",
                "'Flase'",
            ),
            (
                "{'descr: '<f4'}",
                "invalid header \"{'descr: '<f4'}\": unexpected '<'",
            ),
            ("[1, 2]", "the header is \"(1, 2)\", not a dictionary"),
            ("", "unexpected end"),
        ] {
            let m = error(&npy(h, &[0; 4]));
            assert!(m.contains(wanted), "{h}: {m}");
        }
        let deep = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&(deep.len() as u32).to_le_bytes());
        bytes.extend_from_slice(deep.as_bytes());
        assert!(error(&bytes).contains("nested too deeply"));
    }

    #[test]
    fn file_errors_name_the_path() {
        let e = read_npy("/no/such/dir/input.npy").unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("/no/such/dir/input.npy: "));
        let e = read_npy(env!("CARGO_MANIFEST_DIR")).unwrap_err();
        assert!(e.to_string().ends_with("is a directory, not a .npy file"));
        let e = write_npy("/no/such/dir/out.npy", &six()).unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("/no/such/dir/out.npy: "));
    }
}
