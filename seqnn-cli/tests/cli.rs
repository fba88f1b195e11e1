//! The `seqnn` command-line tool, run as a user runs it: the built binary, its exit status, its
//! standard output and its one line of error.
//!
//! The tests that need a model file run every model under `tests/fixtures/files/` (made by
//! tf_keras 2.21 and Keras 3 with `tools/keras_reference/generate_files.py`) and Functional
//! models of `tests/fixtures/functional/` (`generate_functional.py`), and compare the tool's
//! outputs with the outputs Keras computed, saved beside them. The arrays the tests write and
//! read go through ndarray-npy's own reader and writer; the `.npy` and `.npz` files of
//! `tests/fixtures/npy/` were written by NumPy.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use approx::assert_abs_diff_eq;
use ndarray::{concatenate, ArrayD, Axis, IxDyn};
use ndarray_npy::{read_npy, write_npy, NpzReader, NpzWriter, ReadNpyError};
use seqnn::{load_any, AnyModel, Shape};
use serde_json::Value;

/// What one run of the tool gave.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn seqnn<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(env!("CARGO_BIN_EXE_seqnn"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the seqnn binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Run {
    /// Asserts a failure told in one line, and returns that line without `error: `.
    fn one_error_line(&self) -> &str {
        assert_eq!(self.code, Some(1), "exit status of {self:#?}");
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:#?}");
        assert!(!self.stderr.contains("panicked"), "no panic: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:#?}");
        lines[0]
            .strip_prefix("error: ")
            .unwrap_or_else(|| panic!("the line starts with `error: `: {self:#?}"))
    }

    fn succeeded(&self) -> &str {
        assert_eq!(self.code, Some(0), "exit status of {self:#?}");
        assert!(self.stderr.is_empty(), "nothing on stderr: {self:#?}");
        &self.stdout
    }
}

/// A fresh folder for one test's files, under Cargo's temporary directory for tests.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("old scratch folder removed");
    }
    std::fs::create_dir_all(&dir).expect("scratch folder created");
    dir
}

/// A valid input file: zeros of `shape`.
fn zeros_npy(dir: &Path, shape: &[usize]) -> PathBuf {
    let path = dir.join("x.npy");
    write_npy(&path, &ArrayD::<f32>::zeros(IxDyn(shape))).expect("input written");
    path
}

/// A float32 or int32 (Embedding ids) `.npy` file, as f32.
fn read_f32(path: &Path) -> ArrayD<f32> {
    let fail = |e: ReadNpyError| panic!("{}: {e}", path.display());
    match read_npy::<_, ArrayD<f32>>(path) {
        Ok(a) => a,
        Err(ReadNpyError::WrongDescriptor(_)) => read_npy::<_, ArrayD<i32>>(path)
            .map(|a| a.mapv(|v| v as f32))
            .unwrap_or_else(fail),
        Err(e) => fail(e),
    }
}

/// Writes named arrays as a `.npz` file, as `np.savez(path, name=array, ...)`.
fn write_npz(path: &Path, arrays: &[(&str, &ArrayD<f32>)]) {
    let file = std::fs::File::create(path).expect("npz created");
    let mut npz = NpzWriter::new(file);
    for (name, array) in arrays {
        npz.add_array(*name, *array).expect("array added");
    }
    npz.finish().expect("npz written");
}

/// Writes arrays as `np.savez(path, a, b, ...)` does: named `arr_0`, `arr_1`, ...
fn write_npz_in_order(path: &Path, arrays: &[ArrayD<f32>]) {
    let names: Vec<String> = (0..arrays.len()).map(|i| format!("arr_{i}")).collect();
    let named: Vec<(&str, &ArrayD<f32>)> = names.iter().map(String::as_str).zip(arrays).collect();
    write_npz(path, &named);
}

/// The arrays of a `.npz` file, with their names, in the archive's order.
fn read_npz(path: &Path) -> Vec<(String, ArrayD<f32>)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut npz = NpzReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names = npz.names().expect("member names");
    names
        .into_iter()
        .map(|name| {
            let array = npz
                .by_name(&name)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
            (name, array)
        })
        .collect()
}

fn npy_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/npy")
        .join(name)
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn help_lists_the_three_commands() {
    let run = seqnn(["--help"]);
    let help = run.succeeded();
    for command in ["summary", "predict", "convert", "Example:"] {
        assert!(help.contains(command), "{command} in\n{help}");
    }
    let short = seqnn(["-h"]);
    assert!(short.succeeded().contains("predict"));
}

#[test]
fn each_command_explains_its_arguments() {
    let help = seqnn(["predict", "--help"]);
    let help = help.succeeded();
    for word in [
        "MODEL",
        "INPUT.npy",
        "INPUT.npz",
        "np.savez",
        "arr_0",
        "OUTPUT.npz",
        "--output",
        "-o",
        "--batch-size",
        "float32",
    ] {
        assert!(help.contains(word), "{word} in\n{help}");
    }
    let help = seqnn(["help", "convert"]);
    let help = help.succeeded();
    for word in ["MODEL", "OUT.keras", ".h5"] {
        assert!(help.contains(word), "{word} in\n{help}");
    }
    let help = seqnn(["summary", "--help"]);
    assert!(help.succeeded().contains("MODEL"));
}

#[test]
fn version() {
    let run = seqnn(["--version"]);
    assert_eq!(
        run.succeeded(),
        format!("seqnn {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_claps() {
    for args in [
        &[][..],
        &["predict", "m.keras"],
        &["predict", "m.keras", "x.npy", "--batch-size", "two"],
        &["predict", "m.keras", "x.npy", "--batch-size", "-1"],
        &["frobnicate"],
    ] {
        let run = seqnn(args);
        assert_eq!(run.code, Some(2), "{args:?}: {run:#?}");
        assert!(!run.stderr.is_empty(), "{args:?}: {run:#?}");
        assert!(!run.stderr.contains("panicked"));
    }
}

#[test]
fn a_missing_model_is_one_line_naming_it() {
    let dir = scratch("missing_model");
    let x = zeros_npy(&dir, &[2, 3, 4]);
    let model = dir.join("no-such-model.keras");
    let run = seqnn([OsStr::new("predict"), model.as_os_str(), x.as_os_str()]);
    assert_eq!(
        run.one_error_line(),
        format!("{}: no such file or directory", s(&model))
    );
    let run = seqnn([OsStr::new("summary"), model.as_os_str()]);
    assert!(run
        .one_error_line()
        .starts_with(&format!("{}: ", s(&model))));
    let out = dir.join("out.keras");
    let run = seqnn([OsStr::new("convert"), model.as_os_str(), out.as_os_str()]);
    assert!(run
        .one_error_line()
        .starts_with(&format!("{}: ", s(&model))));
    assert!(!out.exists());
}

#[test]
fn a_missing_input_is_one_line_naming_it() {
    let dir = scratch("missing_input");
    let x = dir.join("no-such-input.npy");
    let run = seqnn(["predict", "model.keras", &s(&x)]);
    assert_eq!(
        run.one_error_line(),
        format!("{}: no such file or directory", s(&x))
    );
}

/// Runs `seqnn predict MODEL INPUT`, which must fail in one line naming the input, and returns
/// what the line says after the input's name.
fn input_error(model: &Path, input: &Path) -> String {
    let run = seqnn([OsStr::new("predict"), model.as_os_str(), input.as_os_str()]);
    let line = run.one_error_line();
    match line.strip_prefix(&format!("{}: ", s(input))) {
        Some(rest) => rest.to_string(),
        None => panic!("the line names {}: {line}", s(input)),
    }
}

/// Writes a zip archive of `members`, each its name, its bytes and how it is stored.
fn write_zip(path: &Path, members: &[(&str, &[u8], zip::CompressionMethod)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("created"));
    for (name, bytes, method) in members {
        let options = zip::write::SimpleFileOptions::default().compression_method(*method);
        zip.start_file(*name, options).expect("member");
        std::io::Write::write_all(&mut zip, bytes).expect("written");
    }
    zip.finish().expect("archive");
}

#[test]
fn a_bad_npy_input_is_one_clear_line() {
    let dir = scratch("bad_npy");
    // Inputs are read before the model, which does not exist here.
    let model = dir.join("model.keras");
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, "this is not an array\n").expect("written");
    let line = input_error(&model, &garbage);
    assert!(line.starts_with("not a .npy file"), "{line}");

    let truncated = dir.join("truncated.npy");
    let bytes = std::fs::read(npy_fixture("f4_2x3.npy")).expect("fixture");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).expect("written");
    assert_eq!(
        input_error(&model, &truncated),
        "truncated: the data of shape (2, 3) of float32 should be 24 bytes, the file holds 21"
    );
    let in_header = dir.join("truncated_header.npy");
    std::fs::write(&in_header, &bytes[..40]).expect("written");
    assert!(input_error(&model, &in_header).contains("truncated"));
    let long = dir.join("long.npy");
    std::fs::write(&long, [&bytes[..], &[0, 0]].concat()).expect("written");
    assert!(input_error(&model, &long).contains("the file holds 26"));

    // A header that announces far more data than the file holds is refused before anything
    // is allocated for it: 400 GB of float32 in a file of 152 bytes.
    let huge = dir.join("huge.npy");
    let mut lying = bytes.clone();
    let header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    let claim = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }";
    let at = lying
        .windows(header.len())
        .position(|w| w == header)
        .expect("the header numpy wrote");
    lying.splice(at..at + claim.len(), claim.iter().copied());
    std::fs::write(&huge, &lying).expect("written");
    let line = input_error(&model, &huge);
    assert!(
        line.contains("should be 400000000000 bytes, the file holds 24"),
        "{line}"
    );

    // Headers NumPy would not write, each refused in one line, the parser's words cut short;
    // nesting deeper than the stack allows is one of them, not a crash.
    let deep = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
    for (header, words) in [
        (
            "{'descr': '<f4', 'fortran_order': Flase, 'shape': (2, 3), }".to_string(),
            "not a .npy header seqnn reads: error parsing metadata dict",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}".to_string(),
            "not a .npy header seqnn reads: unknown key: 'x'",
        ),
        (
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {deep}, }}"),
            "not a .npy header seqnn reads: error parsing metadata dict",
        ),
    ] {
        let path = dir.join("header.npy");
        let mut padded = header.into_bytes();
        padded.resize((padded.len() + 12).next_multiple_of(64) - 12 - 1, b' ');
        padded.push(b'\n');
        let length = u32::try_from(padded.len()).expect("a short header");
        let file = [
            &b"\x93NUMPY\x02\x00"[..],
            &length.to_le_bytes(),
            &padded,
            &[0; 24],
        ]
        .concat();
        std::fs::write(&path, file).expect("written");
        let line = input_error(&model, &path);
        assert!(line.starts_with(words), "{line}");
        assert!(line.len() < 400, "{line}");
    }
    let v4 = dir.join("v4.npy");
    let mut four = bytes.clone();
    four[6] = 4;
    std::fs::write(&v4, &four).expect("written");
    assert!(input_error(&model, &v4).contains("unknown version number: 4.0"));

    for (name, words) in [
        ("i8_too_large.npy", "int64 value 16777217 at index (1, 1)"),
        (
            "u8_too_large.npy",
            "uint64 value 18446744073709551615 at index (0, 1)",
        ),
        ("c8_2x3.npy", "dtype '<c8' is not supported"),
        ("f4_scalar.npy", "scalar"),
    ] {
        let line = input_error(&model, &npy_fixture(name));
        assert!(line.contains(words), "{name}: {line}");
    }

    let not_zip = dir.join("not_zip.npz");
    std::fs::write(&not_zip, "this is not an archive\n").expect("written");
    let line = input_error(&model, &not_zip);
    assert!(line.starts_with("not a .npz file"), "{line}");
    let cut = dir.join("cut.npz");
    let zip = std::fs::read(npy_fixture("dict_io_named.npz")).expect("fixture");
    std::fs::write(&cut, &zip[..zip.len() / 2]).expect("written");
    let line = input_error(&model, &cut);
    assert!(line.starts_with("not a .npz file"), "{line}");
    // The lying header in an archive, deflated: refused, naming the member.
    let huge_npz = dir.join("huge.npz");
    write_zip(
        &huge_npz,
        &[("x.npy", &lying, zip::CompressionMethod::Deflated)],
    );
    let line = input_error(&model, &huge_npz);
    assert!(line.starts_with("x.npy: truncated"), "{line}");
}

#[test]
fn a_batch_size_of_zero_is_refused() {
    let run = seqnn(["predict", "model.keras", "x.npy", "--batch-size", "0"]);
    assert_eq!(
        run.one_error_line(),
        "--batch-size must be at least 1, got 0"
    );
}

#[test]
fn convert_refuses_an_output_that_is_not_keras() {
    let dir = scratch("convert_not_keras");
    for name in ["model.h5", "model.weights.h5", "model", "model.keras.bak"] {
        let out = dir.join(name);
        let run = seqnn(["convert", "model.h5", &s(&out)]);
        let line = run.one_error_line();
        assert!(line.starts_with(&format!("{}: ", s(&out))), "{line}");
        assert!(line.contains("must be a .keras file"), "{line}");
        assert!(!out.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// With model files: tests/fixtures/files/, written by tools/keras_reference/generate_files.py
// from tf_keras 2.21 and Keras 3. For each case: `<case>.{tf,k3}.{keras,h5}`, the input
// `<case>.input.npy`, Keras's output `<case>.expected.npy` (and `<case>.k3.expected.npy` when
// Keras 3's differs) and `<case>.json`.

/// The tolerance to Keras's numbers, as everywhere in the tests.
const TOL: f32 = 1e-5;

fn files_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/files")
}

/// One model file of one case.
struct ModelFile {
    case: String,
    path: PathBuf,
    /// `tf_keras` or `keras3`, the library that wrote it (the keys of `<case>.json`).
    writer: &'static str,
}

impl ModelFile {
    fn input(&self) -> PathBuf {
        files_dir().join(format!("{}.input.npy", self.case))
    }

    /// The output the library that wrote the file computes.
    fn expected(&self) -> ArrayD<f32> {
        let k3 = files_dir().join(format!("{}.k3.expected.npy", self.case));
        let path = if self.writer == "keras3" && k3.exists() {
            k3
        } else {
            files_dir().join(format!("{}.expected.npy", self.case))
        };
        read_f32(&path)
    }

    fn json(&self) -> Value {
        let path = files_dir().join(format!("{}.json", self.case));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The output of a second `predict` on the same input, for a stateful case.
    fn second_predict(&self) -> Option<ArrayD<f32>> {
        let json = self.json();
        Some(tensor(json.get("second_predict")?.get(self.writer)?))
    }

    /// A name for files derived from this one.
    fn stem(&self) -> String {
        stem(&self.path)
    }
}

/// A name for files derived from the model file `path`.
fn stem(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("model")
        .replace('.', "_")
}

/// Every full-model file of every case (there must be some).
fn model_files() -> Vec<ModelFile> {
    let dir = files_dir();
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.expect("a folder entry").file_name();
            let name = name.to_str()?;
            name.strip_suffix(".input.npy").map(str::to_string)
        })
        .collect();
    cases.sort();
    let mut files = Vec::new();
    for case in cases {
        for (tag, writer) in [("tf", "tf_keras"), ("k3", "keras3")] {
            for ext in ["keras", "h5"] {
                let path = dir.join(format!("{case}.{tag}.{ext}"));
                if path.exists() {
                    files.push(ModelFile {
                        case: case.clone(),
                        path,
                        writer,
                    });
                }
            }
        }
    }
    assert!(!files.is_empty(), "no model files in {}", dir.display());
    files
}

fn load(path: &Path) -> AnyModel {
    load_any(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `seqnn predict MODEL INPUT -o OUT [extra...]` and returns the array written.
fn predict_to_file(model: &Path, input: &Path, out: &Path, extra: &[&str]) -> (Run, ArrayD<f32>) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("predict"),
        model.as_os_str(),
        input.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let run = seqnn(&args);
    run.succeeded();
    (run, read_f32(out))
}

#[test]
fn summary_prints_the_table_with_kerass_parameter_count() {
    for file in model_files() {
        let run = seqnn([OsStr::new("summary"), file.path.as_os_str()]);
        let table = load(&file.path).summary().expect("a summary");
        assert_eq!(run.succeeded(), table, "{}", file.path.display());
        let params = &file.json()["params"][file.writer];
        assert!(
            table.contains(&format!("\nTotal params: {params}\n")),
            "{}: {params} parameters in\n{table}",
            file.path.display()
        );
    }
}

#[test]
fn predict_gives_kerass_numbers() {
    let dir = scratch("predict_files");
    for file in model_files() {
        let out = dir.join(format!("{}_y.npy", file.stem()));
        let (run, y) = predict_to_file(&file.path, &file.input(), &out, &[]);
        let expected = file.expected();
        assert_eq!(
            run.stdout,
            format!("output shape: {}\n", Shape::known(expected.shape())),
            "{}",
            file.path.display()
        );
        assert_eq!(y.shape(), expected.shape(), "{}", file.path.display());
        assert_abs_diff_eq!(y, expected, epsilon = TOL);
    }
}

#[test]
fn batches_give_kerass_numbers_and_carry_states() {
    let dir = scratch("predict_batches");
    for file in model_files() {
        let x = read_f32(&file.input());
        let rows = x.len_of(Axis(0));
        let expected = file.expected();
        // A stateful model, given its batch twice, one batch at a time: the second batch starts
        // from the states the first left, as Keras's second predict does.
        let (x, expected, n) = match file.second_predict() {
            Some(second) => (
                concatenate(Axis(0), &[x.view(), x.view()]).expect("joined"),
                concatenate(Axis(0), &[expected.view(), second.view()]).expect("joined"),
                rows,
            ),
            None if rows >= 2 => (x, expected, 2),
            None => continue,
        };
        let input = dir.join(format!("{}_x.npy", file.stem()));
        write_npy(&input, &x).expect("input written");
        let out = dir.join(format!("{}_y.npy", file.stem()));
        let (_, y) = predict_to_file(&file.path, &input, &out, &["--batch-size", &n.to_string()]);
        assert_eq!(y.shape(), expected.shape(), "{}", file.path.display());
        assert_abs_diff_eq!(y, expected, epsilon = TOL);
    }
}

#[test]
fn convert_writes_a_keras_file_with_the_same_model() {
    let dir = scratch("convert_files");
    let mut converted_count = 0;
    for file in model_files() {
        let converted = dir.join(format!("{}.keras", file.stem()));
        let run = seqnn([
            OsStr::new("convert"),
            file.path.as_os_str(),
            converted.as_os_str(),
        ]);
        // A model Keras 3 cannot express (tf_keras's hard_sigmoid, ...) is refused by the
        // library's save, and so by the tool, in one line.
        let by_library = dir.join(format!("{}_library.keras", file.stem()));
        if let Err(e) = load(&file.path).save(&by_library) {
            let line = run.one_error_line();
            assert!(
                line.ends_with(&e.to_string()) || e.to_string().contains(&s(&by_library)),
                "{}: the tool says {line:?}, the library {e}",
                file.path.display()
            );
            continue;
        }
        assert_eq!(run.succeeded(), format!("saved {}\n", s(&converted)));
        assert_eq!(
            load(&converted).summary().expect("a summary"),
            load(&file.path).summary().expect("a summary"),
            "{}",
            file.path.display()
        );
        let out = dir.join(format!("{}_y.npy", file.stem()));
        let (_, y) = predict_to_file(&converted, &file.input(), &out, &[]);
        assert_abs_diff_eq!(y, file.expected(), epsilon = TOL);
        converted_count += 1;
    }
    assert!(converted_count > 0, "no model was converted");
}

#[test]
fn an_input_the_model_cannot_take_is_one_line() {
    let dir = scratch("wrong_input");
    let x = zeros_npy(&dir, &[1, 1, 1, 1, 1]);
    for file in model_files() {
        let run = seqnn([OsStr::new("predict"), file.path.as_os_str(), x.as_os_str()]);
        let line = run.one_error_line();
        assert!(
            line.contains("(1, 1, 1, 1, 1)"),
            "{}: {line}",
            file.path.display()
        );
    }
}

#[test]
fn an_output_that_cannot_be_written_is_one_line() {
    let dir = scratch("unwritable_output");
    let file = &model_files()[0];
    let out = dir.join("no-such-folder").join("y.npy");
    let run = seqnn([
        OsStr::new("predict"),
        file.path.as_os_str(),
        file.input().as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(
        run.one_error_line(),
        format!("{}: no such file or directory", s(&out))
    );
}

/// Every file of `bad/` is one error line naming it, except the Functional models kept there
/// from when seqnn loaded Sequential models only: the tool loads those now.
#[test]
fn every_bad_file_is_one_error_line() {
    let dir = files_dir().join("bad");
    let mut count = 0;
    let mut functional = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a folder entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.ends_with(".keras") || name.ends_with(".h5")) {
            continue;
        }
        // Written when seqnn had no Conv1D: a model seqnn runs now.
        if name.starts_with("conv1d.") {
            continue;
        }
        let run = seqnn([OsStr::new("summary"), path.as_os_str()]);
        if name.starts_with("functional_") {
            let table = load(&path).summary().expect("a summary");
            assert_eq!(run.succeeded(), table, "{name}");
            functional += 1;
            continue;
        }
        let line = run.one_error_line();
        assert!(
            line.starts_with(&format!("{}: ", s(&path))),
            "names the file: {line}"
        );
        count += 1;
    }
    assert!(count > 0, "no bad files in {}", dir.display());
    assert_eq!(functional, 3, "the Functional files of {}", dir.display());
}

// ---------------------------------------------------------------------------------------------
// Every dtype NumPy writes, through a model that gives back its input: a Dense layer with the
// identity as kernel, no bias and no activation, so the output is the array the model was
// given, value for value. The numbers expected are those NumPy saved (see
// tests/fixtures/npy/README.md): np.arange(6).reshape(2, 3) in each dtype.

/// A `.keras` file of a model that returns its input of `features` features.
fn identity_model(dir: &Path, features: usize) -> PathBuf {
    let mut model = seqnn::Sequential::new();
    model
        .add(seqnn::Dense::new(features).input_shape((features,)))
        .expect("a Dense layer");
    let eye = ArrayD::from_shape_fn(IxDyn(&[features, features]), |i| {
        f32::from(u8::from(i[0] == i[1]))
    });
    let bias = ArrayD::zeros(IxDyn(&[features]));
    model.set_weights(&[eye, bias]).expect("weights");
    let path = dir.join(format!("identity_{features}.keras"));
    model.save(&path).expect("model saved");
    path
}

#[test]
fn every_dtype_reaches_the_model_as_numpy_saved_it() {
    let dir = scratch("dtypes");
    let model = identity_model(&dir, 3);
    let six = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
        .expect("sizes agree");
    for name in [
        "f4_2x3.npy",
        "f8_2x3.npy",
        "i1_2x3.npy",
        "i2_2x3.npy",
        "i4_2x3.npy",
        "i8_2x3.npy",
        "u1_2x3.npy",
        "u2_2x3.npy",
        "u4_2x3.npy",
        "u8_2x3.npy",
        "v2_f4_2x3.npy",
        "v3_f4_2x3.npy",
        // np.load reads these two as the same array; so does seqnn.
        "f4_fortran.npy",
        "f4_big_endian.npy",
    ] {
        let out = dir.join(name);
        let (run, y) = predict_to_file(&model, &npy_fixture(name), &out, &[]);
        assert_eq!(run.stdout, "output shape: (2, 3)\n", "{name}");
        assert_eq!(y, six, "{name}");
    }
    // The output file is laid out as np.save lays it out: a header padded to 128 bytes, then
    // the float32 data. (Its header text is ndarray-npy's, without NumPy's trailing comma.)
    let written = std::fs::read(dir.join("f4_2x3.npy")).expect("written");
    let numpys = std::fs::read(npy_fixture("f4_2x3.npy")).expect("fixture");
    assert_eq!(written.len(), numpys.len());
    assert_eq!(written[..10], numpys[..10], "magic, version, header length");
    assert_eq!(written[128..], numpys[128..], "the data");
    let out = dir.join("b1.npy");
    let (_, y) = predict_to_file(&model, &npy_fixture("b1_2x3.npy"), &out, &[]);
    assert_eq!(y, six.mapv(|v| v % 2.0), "bool as 0 and 1");

    let model = identity_model(&dir, 4);
    let out = dir.join("ids.npy");
    let (_, y) = predict_to_file(&model, &npy_fixture("f8_embedding_ids.npy"), &out, &[]);
    let ids = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![3.0, 1.0, 0.0, 0.0, 2.0, 2.0, 7.0, 1.0])
        .expect("sizes agree");
    assert_eq!(y, ids);
}

// ---------------------------------------------------------------------------------------------
// Functional models: tests/fixtures/functional/, written by
// tools/keras_reference/generate_functional.py from tf_keras 2.21 and Keras 3. Each case has
// `<case>.json` with its inputs, their and the outputs' names, and each library's outputs.

fn functional_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/functional")
}

/// A Functional case: its JSON, and the model files Keras itself loads back.
struct Case {
    name: &'static str,
    json: Value,
}

/// Two inputs and one output; one input and three outputs; two inputs and two outputs.
const CASES: [&str; 3] = ["two_inputs_concat", "multi_output", "dict_io"];

impl Case {
    fn new(name: &'static str) -> Case {
        let path = functional_dir().join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Case { name, json }
    }

    /// Each full-model file with the library that wrote it (`tf_keras` or `keras3`).
    fn files(&self) -> Vec<(PathBuf, &'static str)> {
        let mut files = Vec::new();
        for (tag, writer) in [("tf", "tf_keras"), ("k3", "keras3")] {
            for ext in ["keras", "h5"] {
                let file = format!("{}.{tag}.{ext}", self.name);
                let refused = self.json["reload_failures"].get(&file).is_some();
                let path = functional_dir().join(&file);
                if path.exists() && !refused {
                    files.push((path, writer));
                }
            }
        }
        assert!(!files.is_empty(), "no model files for {}", self.name);
        files
    }

    fn names(&self, key: &str, writer: &str) -> Vec<String> {
        self.json[key][writer]
            .as_array()
            .unwrap_or_else(|| panic!("{}: {key}", self.name))
            .iter()
            .map(|n| n.as_str().expect("a name").to_string())
            .collect()
    }

    /// The inputs, in the model's order (all float32 in these cases).
    fn inputs(&self) -> Vec<ArrayD<f32>> {
        self.json["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|x| {
                assert_eq!(x["dtype"], "float32", "{}", self.name);
                tensor(x)
            })
            .collect()
    }

    /// What the library that wrote the file computes, one array per output.
    fn expected(&self, writer: &str) -> Vec<ArrayD<f32>> {
        self.json["expected"][writer]
            .as_array()
            .expect("expected outputs")
            .iter()
            .map(tensor)
            .collect()
    }
}

/// `{"shape": [...], "data": [...]}` as an array.
fn tensor(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .expect("a shape")
        .iter()
        .map(|d| d.as_u64().expect("a size") as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("sizes agree")
}

/// Keras's numbers to [`TOL`], relative above magnitude 1.
fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for ((index, &a), &e) in actual.indexed_iter().zip(expected.iter()) {
        let bound = TOL * e.abs().max(1.0);
        assert!(
            (a - e).abs() <= bound,
            "{what}: at {index:?}, {a} against Keras's {e}"
        );
    }
}

/// The lines `seqnn predict` prints for these outputs.
fn shape_lines(names: &[String], outputs: &[ArrayD<f32>]) -> String {
    match outputs {
        [y] => format!("output shape: {}\n", Shape::known(y.shape())),
        _ => names
            .iter()
            .zip(outputs)
            .map(|(n, y)| format!("output {n}: {}\n", Shape::known(y.shape())))
            .collect(),
    }
}

/// Runs `seqnn predict MODEL INPUT -o OUT.npz` and checks Keras's outputs, named after the
/// model's outputs, in the file and the lines printed.
fn check_npz_prediction(model: &Path, input: &Path, out: &Path, case: &Case, writer: &str) {
    let names = case.names("output_names", writer);
    check_npz_outputs(model, input, out, &[], &names, &case.expected(writer));
}

/// Runs `seqnn predict MODEL INPUT -o OUT.npz [extra...]` and checks that `OUT.npz` holds
/// `expected`, its members named `names`, and that the lines printed give their shapes.
fn check_npz_outputs(
    model: &Path,
    input: &Path,
    out: &Path,
    extra: &[&str],
    names: &[String],
    expected: &[ArrayD<f32>],
) {
    let what = format!("{} on {}", model.display(), input.display());
    let mut args = vec![
        OsStr::new("predict"),
        model.as_os_str(),
        input.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let run = seqnn(&args);
    assert_eq!(run.succeeded(), shape_lines(names, expected), "{what}");
    let written = read_npz(out);
    let written_names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        written_names,
        names,
        "{what}: the members of {}",
        out.display()
    );
    for ((name, y), e) in written.iter().zip(expected) {
        assert_close(y, e, &format!("{what}: {name}"));
    }
}

#[test]
fn functional_models_predict_kerass_numbers_from_an_npz() {
    let dir = scratch("functional_npz");
    for name in CASES {
        let case = Case::new(name);
        let inputs = case.inputs();
        for (model, writer) in case.files() {
            let stem = stem(&model);
            // Members named after the model's inputs, in reverse order: names decide.
            let input_names = case.names("input_names", writer);
            let named: Vec<(&str, &ArrayD<f32>)> = input_names
                .iter()
                .map(String::as_str)
                .zip(&inputs)
                .rev()
                .collect();
            let by_name = dir.join(format!("{stem}_named.npz"));
            write_npz(&by_name, &named);
            let out = dir.join(format!("{stem}_y.npz"));
            check_npz_prediction(&model, &by_name, &out, &case, writer);

            // arr_0, arr_1, ... as np.savez(path, a, b) names them.
            let positional = dir.join(format!("{stem}_in_order.npz"));
            write_npz_in_order(&positional, &inputs);
            let out = dir.join(format!("{stem}_y2.npz"));
            check_npz_prediction(&model, &positional, &out, &case, writer);
        }
    }
}

#[test]
fn numpys_npz_files_named_in_order_and_compressed() {
    let dir = scratch("numpy_npz");
    let case = Case::new("dict_io");
    for (model, writer) in case.files() {
        for input in [
            "dict_io_named.npz",
            "dict_io_in_order.npz",
            "dict_io_compressed.npz",
        ] {
            let out = dir.join(format!("{writer}_{input}"));
            check_npz_prediction(&model, &npy_fixture(input), &out, &case, writer);
        }
    }
}

#[test]
fn a_model_of_one_input_takes_the_one_array_of_an_npz_whatever_its_name() {
    let dir = scratch("npz_one_array");
    let case = Case::new("multi_output");
    let inputs = case.inputs();
    for (model, writer) in case.files() {
        let input = dir.join("x.npz");
        write_npz(&input, &[("my_sequences", &inputs[0])]);
        let out = dir.join(format!("{writer}_y.npz"));
        check_npz_prediction(&model, &input, &out, &case, writer);
        // And a .npy file, as for a Sequential model.
        let npy = dir.join("x.npy");
        write_npy(&npy, &inputs[0]).expect("written");
        check_npz_prediction(&model, &npy, &out, &case, writer);
    }
}

#[test]
fn a_model_of_one_output_writes_npy_or_npz() {
    let dir = scratch("one_output");
    let case = Case::new("two_inputs_concat");
    let inputs = case.inputs();
    for (model, writer) in case.files() {
        let input = dir.join("x.npz");
        let names = case.names("input_names", writer);
        write_npz(&input, &[(&names[0], &inputs[0]), (&names[1], &inputs[1])]);
        let expected = case.expected(writer);
        assert_eq!(expected.len(), 1);
        // As a .npz, named after the output.
        let out = dir.join("y.npz");
        check_npz_prediction(&model, &input, &out, &case, writer);
        // As a .npy, the one array.
        let out = dir.join("y.npy");
        let (run, y) = predict_to_file(&model, &input, &out, &[]);
        assert_eq!(run.stdout, shape_lines(&[], &expected));
        assert_close(&y, &expected[0], &model.display().to_string());
    }
}

#[test]
fn several_outputs_need_an_npz_output() {
    let dir = scratch("several_outputs_npy");
    let case = Case::new("dict_io");
    for (model, writer) in case.files() {
        for name in ["y.npy", "y"] {
            let out = dir.join(name);
            let run = seqnn([
                OsStr::new("predict"),
                model.as_os_str(),
                npy_fixture("dict_io_named.npz").as_os_str(),
                OsStr::new("-o"),
                out.as_os_str(),
            ]);
            let line = run.one_error_line();
            assert!(line.starts_with(&format!("{}: ", s(&out))), "{line}");
            assert!(line.contains(".npz"), "{line}");
            for output in case.names("output_names", writer) {
                assert!(line.contains(&output), "{output} in {line}");
            }
            assert!(!out.exists());
        }
    }
}

#[test]
fn inputs_that_do_not_match_the_model_are_one_line() {
    let dir = scratch("npz_mismatch");
    let case = Case::new("dict_io");
    let inputs = case.inputs();
    let (model, writer) = case.files().remove(0);
    let wanted = case.names("input_names", writer);
    assert_eq!(wanted, ["left", "right"]);
    let error = |input: &Path| input_error(&model, input);
    // What the file holds, what the model takes, and what is missing or extra.
    let line = error(&npy_fixture("dict_io_missing_right.npz"));
    assert!(line.contains("it holds the arrays left,"), "{line}");
    assert!(
        line.contains("the model's inputs are left, right"),
        "{line}"
    );
    assert!(line.contains("no array for right"), "{line}");

    let extra = dir.join("extra.npz");
    write_npz(
        &extra,
        &[
            ("left", &inputs[0]),
            ("right", &inputs[1]),
            ("mask", &inputs[1]),
        ],
    );
    let line = error(&extra);
    assert!(line.contains("the arrays left, right, mask"), "{line}");
    assert!(line.contains("not inputs: mask"), "{line}");

    let misnamed = dir.join("misnamed.npz");
    write_npz(&misnamed, &[("left", &inputs[0]), ("arr_1", &inputs[1])]);
    let line = error(&misnamed);
    assert!(
        line.contains("no array for right; not inputs: arr_1"),
        "{line}"
    );

    let one_in_order = dir.join("one_in_order.npz");
    write_npz(&one_in_order, &[("arr_0", &inputs[0])]);
    let line = error(&one_in_order);
    assert!(line.contains("no array for left, right"), "{line}");

    let empty = dir.join("empty.npz");
    write_npz(&empty, &[]);
    assert!(error(&empty).contains("it holds no arrays"));

    // `left` and `left.npy` both stand for the array left.
    let twice = dir.join("twice.npz");
    let mut npy = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&inputs[0], &mut npy).expect("array");
    let stored = zip::CompressionMethod::Stored;
    write_zip(
        &twice,
        &[
            ("left", &npy, stored),
            ("left.npy", &npy, stored),
            ("right.npy", &npy, stored),
        ],
    );
    assert!(error(&twice).contains("two members hold an array named left"));

    // Keras's words for inputs of different numbers of samples.
    let uneven = dir.join("uneven.npz");
    let two = inputs[1]
        .slice_axis(Axis(0), ndarray::Slice::from(0..2))
        .to_owned();
    write_npz(&uneven, &[("left", &inputs[0]), ("right", &two)]);
    let line = error(&uneven);
    assert!(
        line.contains("Data cardinality is ambiguous") && line.contains("left has 3, right has 2"),
        "{line}"
    );

    // One .npy array for a model of two inputs.
    let npy = dir.join("left.npy");
    write_npy(&npy, &inputs[0]).expect("written");
    let line = error(&npy);
    assert!(line.contains("a .npy file holds one array"), "{line}");
    assert!(line.contains("2 inputs (left, right)"), "{line}");
    assert!(line.contains(".npz"), "{line}");

    // A member that is not an array names the member.
    let bad_member = dir.join("bad_member.npz");
    write_zip(&bad_member, &[("left.npy", b"not an array", stored)]);
    let line = error(&bad_member);
    assert!(line.starts_with("left.npy: not a .npy file"), "{line}");
}

#[test]
fn summary_of_a_functional_file_is_the_table() {
    for name in CASES {
        let case = Case::new(name);
        for (model, writer) in case.files() {
            let run = seqnn([OsStr::new("summary"), model.as_os_str()]);
            let table = load(&model).summary().expect("a summary");
            assert_eq!(run.succeeded(), table, "{}", model.display());
            let total = &case.json["params"][writer]["total"];
            assert!(
                table.contains(&format!("\nTotal params: {total}\n")),
                "{}: {total} parameters in\n{table}",
                model.display()
            );
            for input in case.names("input_names", writer) {
                assert!(table.contains(&format!("{input} (InputLayer)")), "{input}");
            }
        }
    }
}

#[test]
fn convert_writes_a_functional_model_that_loads_back() {
    let dir = scratch("convert_functional");
    for name in CASES {
        let case = Case::new(name);
        let inputs = case.inputs();
        for (model, writer) in case.files() {
            let stem = stem(&model);
            let converted = dir.join(format!("{stem}.keras"));
            let run = seqnn([
                OsStr::new("convert"),
                model.as_os_str(),
                converted.as_os_str(),
            ]);
            assert_eq!(run.succeeded(), format!("saved {}\n", s(&converted)));
            let back = load(&converted);
            assert!(matches!(back, AnyModel::Functional(_)), "{stem}");
            assert_eq!(back.input_names(), case.names("input_names", writer));
            let input = dir.join(format!("{stem}_x.npz"));
            write_npz_in_order(&input, &inputs);
            let out = dir.join(format!("{stem}_y.npz"));
            check_npz_prediction(&converted, &input, &out, &case, writer);
        }
    }
}

#[test]
fn a_stateful_functional_model_carries_its_states_from_batch_to_batch() {
    let dir = scratch("stateful_functional");
    let case = Case::new("stateful_lstm");
    let x = case.inputs().remove(0);
    let rows = x.len_of(Axis(0));
    // The batch twice, one batch at a time: the second starts from the states the first left,
    // as Keras's second predict does.
    let twice = concatenate(Axis(0), &[x.view(), x.view()]).expect("joined");
    let input = dir.join("x.npz");
    write_npz(&input, &[("x", &twice)]);
    // seqnn names the outputs as tf_keras does, unique (Keras 3 repeats `lstm`).
    let names = case.names("output_names", "tf_keras");
    for (model, writer) in case.files() {
        let second: Vec<ArrayD<f32>> = case.json["second_predict"][writer]
            .as_array()
            .expect("second outputs")
            .iter()
            .map(tensor)
            .collect();
        let expected: Vec<ArrayD<f32>> = case
            .expected(writer)
            .iter()
            .zip(&second)
            .map(|(first, second)| {
                concatenate(Axis(0), &[first.view(), second.view()]).expect("joined")
            })
            .collect();
        let out = dir.join(format!("{}.npz", stem(&model)));
        let batch = rows.to_string();
        let extra = ["--batch-size", batch.as_str()];
        check_npz_outputs(&model, &input, &out, &extra, &names, &expected);
        // Another batch size does not fit the model.
        let run = seqnn([
            OsStr::new("predict"),
            model.as_os_str(),
            input.as_os_str(),
            OsStr::new("--batch-size"),
            OsStr::new("1"),
        ]);
        assert!(run.one_error_line().contains("stateful model"));
    }
}

/// A fit fixture's array (`tests/fixtures/train/fits/`), as f32.
fn fit_array(v: &serde_json::Value) -> ArrayD<f32> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

/// `seqnn fit` on a model compiled and saved by tf_keras trains with the file's own
/// configuration and ends where Keras's fit ended: the same loss each epoch (1e-4), and a
/// saved model whose `seqnn evaluate` is Keras's evaluate.
#[test]
fn fit_trains_with_the_files_compile_configuration() {
    let dir = scratch("fit");
    let fits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/train/fits");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fits.join("gru_rmsprop_mae.json")).unwrap())
            .unwrap();
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy(&x, &fit_array(&f["x"][0])).unwrap();
    write_npy(&y, &fit_array(&f["y"])).unwrap();
    let out = dir.join("trained.keras");
    let model = fits.join("gru_rmsprop_mae.tf.h5");
    let run = seqnn([
        OsStr::new("fit"),
        model.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--epochs".as_ref(),
        "3".as_ref(),
        "--batch-size".as_ref(),
        "8".as_ref(),
        "--no-shuffle".as_ref(),
        "--verbose".as_ref(),
        "0".as_ref(),
    ]);
    let stdout = run.succeeded();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("loss: ["))
        .expect("the history");
    let ours: Vec<f32> = line["loss: [".len()..line.len() - 1]
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    let keras = f["results"]["tf_keras"]["history"]["loss"]
        .as_array()
        .unwrap();
    assert_eq!(ours.len(), 3);
    for (a, k) in ours.iter().zip(keras) {
        let k = k.as_f64().unwrap() as f32;
        assert!(
            (a - k).abs() <= 1e-4 * k.abs().max(1.0),
            "{a} against Keras's {k}"
        );
    }
    let run = seqnn([
        OsStr::new("evaluate"),
        out.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "--batch-size".as_ref(),
        "8".as_ref(),
    ]);
    let line = run.succeeded().lines().next().unwrap().to_string();
    let ours: f32 = line.strip_prefix("loss: ").unwrap().parse().unwrap();
    let keras = f["results"]["tf_keras"]["evaluate"]["loss"]
        .as_f64()
        .unwrap() as f32;
    assert!(
        (ours - keras).abs() <= 1e-4,
        "evaluate {ours} against Keras's {keras}"
    );
}

/// A model file without a compile configuration needs --optimizer and --loss; with them it
/// trains; a bad name is one error line.
#[test]
fn fit_without_a_compile_configuration_needs_optimizer_and_loss() {
    let dir = scratch("fit_uncompiled");
    let model = files_dir().join("course_text_classifier.k3.keras");
    let x = dir.join("x.npy");
    write_npy(&x, &ArrayD::<f32>::ones(IxDyn(&[4, 7]))).unwrap();
    let y = dir.join("y.npy");
    write_npy(&y, &ArrayD::<f32>::from_elem(IxDyn(&[4, 3]), 1.0 / 3.0)).unwrap();
    let out = dir.join("out.keras");
    let base = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "fit".into(),
            model.clone().into(),
            x.clone().into(),
            y.clone().into(),
            "-o".into(),
            out.clone().into(),
            "--verbose".into(),
            "0".into(),
        ];
        a.extend(extra.iter().map(|s| s.into()));
        a
    };
    let line = seqnn(base(&[])).one_error_line().to_string();
    assert!(line.contains("give --optimizer and --loss"), "{line}");
    let line = seqnn(base(&["--optimizer", "adamm", "--loss", "mse"]))
        .one_error_line()
        .to_string();
    assert!(line.contains("adamm"), "{line}");
    let stdout = seqnn(base(&[
        "--optimizer",
        "sgd",
        "--learning-rate",
        "0.1",
        "--loss",
        "categorical_crossentropy",
    ]))
    .succeeded()
    .to_string();
    assert!(stdout.contains("loss: ["), "{stdout}");
    assert!(out.exists());
}

/// `seqnn fit` of a model of two outputs reads one target per output from a `.npz` named
/// after the outputs, and trains as Keras's fit did: every logged value of every epoch
/// (`tests/fixtures/train/multi_output/`, 1e-4).
#[test]
fn fit_reads_a_target_per_output_from_an_npz() {
    let dir = scratch("fit_multi");
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/train/multi_output");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("dict.tf.json")).unwrap())
            .unwrap();
    let (x, y) = (dir.join("x.npy"), dir.join("y.npz"));
    write_npy(&x, &fit_array(&f["x"])).unwrap();
    let (reg, cls) = (fit_array(&f["y"][0]), fit_array(&f["y"][1]));
    // In the other order: the names decide.
    write_npz(&y, &[("cls", &cls), ("reg", &reg)]);
    let out = dir.join("trained.keras");
    let model = fixtures.join("dict.tf.h5");
    let run = seqnn([
        OsStr::new("fit"),
        model.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--epochs".as_ref(),
        "3".as_ref(),
        "--batch-size".as_ref(),
        "8".as_ref(),
        "--no-shuffle".as_ref(),
        "--verbose".as_ref(),
        "0".as_ref(),
    ]);
    let stdout = run.succeeded();
    let keras = f["history"].as_object().unwrap();
    for (key, values) in keras {
        let prefix = format!("{key}: [");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"));
        let ours: Vec<f32> = line[prefix.len()..line.len() - 1]
            .split(", ")
            .map(|v| v.parse().unwrap())
            .collect();
        for (a, k) in ours.iter().zip(values.as_array().unwrap()) {
            let k = k.as_f64().unwrap() as f32;
            assert!(
                (a - k).abs() <= 1e-4 * k.abs().max(1.0),
                "{key}: {a} against Keras's {k}"
            );
        }
    }
    // One .npy for two outputs is refused in one line.
    let y1 = dir.join("y1.npy");
    write_npy(&y1, &reg).unwrap();
    let run = seqnn([
        OsStr::new("evaluate"),
        out.as_os_str(),
        x.as_os_str(),
        y1.as_os_str(),
    ]);
    assert!(!run.one_error_line().is_empty());
}

/// `seqnn fit --reduce-lr-on-plateau --early-stopping 1 --checkpoint ... --csv-log ...` runs
/// Keras's callbacks as the `cli_callbacks` case of `tests/fixtures/train/callbacks/` ran them
/// in tf_keras: it stops at the same epoch, logs `lr`, writes one checkpoint per epoch and the
/// same CSV columns, and saves the restored best weights (1e-4).
/// The callbacks fixture of the CLI (`tests/fixtures/train/callbacks/cli_callbacks.*`): its
/// JSON, its tf_keras model file, and its x and y written as `.npy` into `dir`.
fn callbacks_fixture(dir: &Path) -> (Value, PathBuf, PathBuf, PathBuf) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/train/callbacks");
    let f: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("cli_callbacks.json")).unwrap(),
    )
    .unwrap();
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy(&x, &fit_array(&f["x"])).unwrap();
    write_npy(&y, &fit_array(&f["y"])).unwrap();
    (f, fixtures.join("cli_callbacks.tf.keras"), x, y)
}

#[test]
fn fit_runs_keras_callbacks_from_its_flags() {
    let dir = scratch("fit_callbacks");
    let (f, model, x, y) = callbacks_fixture(&dir);
    let keras = &f["results"]["tf_keras"];
    let out = dir.join("trained.keras");
    let (ckpt, csv) = (dir.join("ckpt-{epoch:02d}.keras"), dir.join("log.csv"));
    let run = seqnn([
        OsStr::new("fit"),
        model.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--epochs".as_ref(),
        "10".as_ref(),
        "--batch-size".as_ref(),
        "8".as_ref(),
        "--no-shuffle".as_ref(),
        "--validation-split".as_ref(),
        "0.25".as_ref(),
        "--verbose".as_ref(),
        "0".as_ref(),
        "--reduce-lr-on-plateau".as_ref(),
        "--early-stopping".as_ref(),
        "1".as_ref(),
        "--checkpoint".as_ref(),
        ckpt.as_os_str(),
        "--csv-log".as_ref(),
        csv.as_os_str(),
        "--plot".as_ref(),
        dir.join("curves.svg").as_os_str(),
    ]);
    let stdout = run.succeeded();
    let svg = std::fs::read_to_string(dir.join("curves.svg")).expect("the plot");
    assert!(
        svg.contains("val_loss") && svg.contains("<polyline"),
        "a loss plot"
    );
    let epochs = keras["histories"][0]["epoch"].as_array().unwrap().len();
    assert!(epochs < 10, "the fixture stops early");
    let lr = stdout
        .lines()
        .find(|l| l.starts_with("lr: ["))
        .expect("lr logged");
    assert_eq!(lr.matches(", ").count() + 1, epochs, "{stdout}");
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-") || n == "log.csv")
        .collect();
    written.sort();
    let want: Vec<&str> = keras["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(written, want);
    let ours = std::fs::read_to_string(&csv).unwrap();
    let theirs = keras["csv"].as_str().unwrap();
    assert_eq!(ours.lines().next(), theirs.lines().next(), "CSV columns");
    assert_eq!(ours.lines().count(), theirs.lines().count(), "CSV rows");
    let AnyModel::Sequential(trained) = load_any(&out).unwrap() else {
        panic!("a Sequential model");
    };
    let want: Vec<ArrayD<f32>> = keras["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(fit_array)
        .collect();
    for (a, b) in trained.get_weights().iter().zip(&want) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-4);
    }
    // A checkpoint that cannot be written fails before training, in one error line.
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("c.keras");
    let run = seqnn([
        OsStr::new("fit"),
        model.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "-o".as_ref(),
        dir.join("never.keras").as_os_str(),
        "--checkpoint".as_ref(),
        bad.as_os_str(),
    ]);
    let line = run.one_error_line().to_string();
    assert!(
        line.contains("ModelCheckpoint: cannot write checkpoints"),
        "{line}"
    );
    assert!(!dir.join("never.keras").exists());
}

#[test]
fn fit_refuses_a_plot_path_that_is_neither_png_nor_svg_before_training() {
    let dir = scratch("fit_plot_extension");
    let (_, model, x, y) = callbacks_fixture(&dir);
    let out = dir.join("trained.keras");
    let run = seqnn([
        OsStr::new("fit"),
        model.as_os_str(),
        x.as_os_str(),
        y.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--verbose".as_ref(),
        "0".as_ref(),
        "--plot".as_ref(),
        dir.join("curves.jpg").as_os_str(),
    ]);
    let message = run.one_error_line();
    assert!(
        message.contains("--plot") && message.contains(".png or .svg"),
        "{message}"
    );
    assert!(!out.exists(), "no training, no output");
}

/// A case of `tests/fixtures/train/backup/` (`generate_train_backup.py`): its JSON, its Keras 3
/// model file, its x and y written as `.npy` into `dir`, and the directory Keras 3's
/// interrupted run left.
fn backup_fixture(dir: &Path, case: &str) -> (Value, PathBuf, PathBuf, PathBuf, PathBuf) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/train/backup");
    let f: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join(format!("{case}.json"))).unwrap(),
    )
    .unwrap();
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy(&x, &fit_array(&f["x"])).unwrap();
    write_npy(&y, &fit_array(&f["y"])).unwrap();
    let model = fixtures.join(format!("{case}.k3.keras"));
    (f, model, x, y, fixtures.join(format!("{case}.k3.backup")))
}

/// `seqnn fit MODEL X Y -o OUT ...extra`.
fn fit_run(data: [&Path; 3], out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec!["fit".as_ref()];
    args.extend(data.iter().map(|p| p.as_os_str()));
    args.extend(["-o".as_ref(), out.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    seqnn(args)
}

/// The values of `key: [a, b, ...]` in a history printed by `seqnn fit`.
fn printed_history(stdout: &str, key: &str) -> Vec<f32> {
    let prefix = format!("{key}: [");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"));
    line[prefix.len()..line.len() - 1]
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect()
}

fn trained_weights(path: &Path) -> Vec<ArrayD<f32>> {
    let AnyModel::Sequential(trained) = load_any(path).unwrap() else {
        panic!("a Sequential model");
    };
    trained.get_weights()
}

fn assert_keras_weights(ours: &[ArrayD<f32>], keras: &Value, what: &str) {
    let keras: Vec<ArrayD<f32>> = keras.as_array().unwrap().iter().map(fit_array).collect();
    assert_eq!(ours.len(), keras.len(), "{what}");
    for (a, b) in ours.iter().zip(&keras) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-5);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// `seqnn fit --resume DIR` on the directory Keras 3's interrupted run left
/// (`epoch_end_before_backup`: 5 epochs, validation_split=0.25, interrupted at the end of
/// epoch 2 before the backup) runs the epochs Keras 3's resumed run ran, logs its values
/// and ends on its weights (1e-5), then deletes the directory.
#[test]
fn fit_resumes_from_kerass_backup() {
    let dir = scratch("fit_resume_keras");
    let (f, model, x, y, keras_backup) = backup_fixture(&dir, "epoch_end_before_backup");
    let backup = dir.join("backup");
    copy_dir(&keras_backup, &backup);
    let out = dir.join("trained.keras");
    let run = fit_run(
        [&model, &x, &y],
        &out,
        &[
            "--epochs",
            "5",
            "--batch-size",
            "8",
            "--no-shuffle",
            "--validation-split",
            "0.25",
            "--verbose",
            "0",
            "--resume",
            &s(&backup),
        ],
    );
    let stdout = run.succeeded();
    let keras = &f["results"]["keras3"]["resumed"];
    assert_eq!(keras["history"]["epoch"], serde_json::json!([2, 3, 4]));
    for (key, values) in keras["history"]["history"].as_object().unwrap() {
        let ours = printed_history(stdout, key);
        let want: Vec<f32> = (values.as_array().unwrap().iter())
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(ours.len(), want.len(), "{key}: the resumed epochs only");
        for (a, k) in ours.iter().zip(&want) {
            assert!(
                (a - k).abs() <= 1e-5 * k.abs().max(1.0),
                "{key}: {a} against Keras's {k}"
            );
        }
    }
    assert!(
        stdout.contains(&format!("resumed from {} at epoch 3/5", backup.display())),
        "{stdout}"
    );
    assert_keras_weights(&trained_weights(&out), &keras["weights"], "resumed");
    assert!(!backup.exists(), "the backup is deleted at the end");
}

/// The arguments of an `epoch_adam` run of `seqnn fit` (6 epochs, batches of 8) with a
/// checkpoint per epoch, a CSV log and `--resume backup`.
fn resumable_fit(dir: &Path, model: &Path, x: &Path, y: &Path, shuffle: bool) -> Vec<PathBuf> {
    let mut args: Vec<PathBuf> = vec![
        "fit".into(),
        model.into(),
        x.into(),
        y.into(),
        "-o".into(),
        dir.join("trained.keras"),
        "--epochs".into(),
        "6".into(),
        "--batch-size".into(),
        "8".into(),
        "--verbose".into(),
        "0".into(),
        "--checkpoint".into(),
        dir.join("ckpt/c-{epoch}.keras"),
        "--csv-log".into(),
        dir.join("log.csv"),
        "--resume".into(),
        dir.join("backup"),
    ];
    if !shuffle {
        args.push("--no-shuffle".into());
    }
    args
}

/// A `seqnn fit --resume` that fails in epoch 4 (its checkpoint cannot be written: a directory
/// is in the way) leaves the backup of epoch 3; run again with the same arguments, it runs
/// epochs 4 to 6, appends their rows to the CSV log and ends on the weights of Keras's
/// uninterrupted 6 epochs (1e-5). Shuffled, two resumed runs from the same backup end alike:
/// the shuffling comes from the backup, not from a new seed.
#[test]
fn an_interrupted_fit_run_again_continues_where_it_stopped() {
    let dir = scratch("fit_resume_interrupted");
    let (f, model, x, y, _) = backup_fixture(&dir, "epoch_adam");
    let args = resumable_fit(&dir, &model, &x, &y, false);
    let blocker = dir.join("ckpt/c-4.keras");
    std::fs::create_dir_all(&blocker).unwrap();
    let line = seqnn(&args).one_error_line().to_string();
    assert!(
        line.contains("ModelCheckpoint") && line.contains("c-4.keras"),
        "{line}"
    );
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("backup/training_metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["epoch"], 3, "epochs 1 to 3 are backed up");
    assert_eq!(
        std::fs::read_to_string(dir.join("log.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    std::fs::remove_dir(&blocker).unwrap();

    let run = seqnn(&args);
    let stdout = run.succeeded();
    assert_eq!(printed_history(stdout, "loss").len(), 3, "{stdout}");
    assert!(stdout.contains("at epoch 4/6"), "{stdout}");
    let keras = &f["results"]["keras3"]["uninterrupted"];
    let keras_loss = keras["history"]["history"]["loss"].as_array().unwrap();
    for (a, k) in printed_history(stdout, "loss").iter().zip(&keras_loss[3..]) {
        let k = k.as_f64().unwrap() as f32;
        assert!(
            (a - k).abs() <= 1e-5 * k.abs().max(1.0),
            "loss {a} against Keras's {k}"
        );
    }
    assert_keras_weights(
        &trained_weights(&dir.join("trained.keras")),
        &keras["weights"],
        "resumed",
    );
    let csv = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7, "one header, six epochs: {csv}");
    assert!(rows[0].starts_with("epoch"), "{csv}");
    let epochs: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["0", "1", "2", "3", "4", "5"]);
    assert!(dir.join("ckpt/c-6.keras").exists());
    assert!(
        !dir.join("backup").exists(),
        "the backup is deleted at the end"
    );

    // Shuffled: interrupted again, then resumed twice from copies of the one backup.
    let dir = scratch("fit_resume_shuffled");
    let (_, model, x, y, _) = backup_fixture(&dir, "epoch_adam");
    let args = resumable_fit(&dir, &model, &x, &y, true);
    std::fs::create_dir_all(dir.join("ckpt/c-4.keras")).unwrap();
    seqnn(&args).one_error_line();
    std::fs::remove_dir(dir.join("ckpt/c-4.keras")).unwrap();
    copy_dir(&dir.join("backup"), &dir.join("kept"));
    seqnn(&args).succeeded();
    let first = trained_weights(&dir.join("trained.keras"));
    copy_dir(&dir.join("kept"), &dir.join("backup"));
    seqnn(&args).succeeded();
    assert_eq!(trained_weights(&dir.join("trained.keras")), first);
}

/// A damaged backup is refused before training in one line naming it; nothing is written.
#[test]
fn fit_refuses_a_damaged_backup() {
    let dir = scratch("fit_resume_damaged");
    let (_, model, x, y, keras_backup) = backup_fixture(&dir, "epoch_adam");
    let backup = dir.join("backup");
    copy_dir(&keras_backup, &backup);
    std::fs::write(backup.join("training_metadata.json"), "{\"epoch\": 3, \"ba").unwrap();
    let out = dir.join("trained.keras");
    let run = fit_run(
        [&model, &x, &y],
        &out,
        &["--epochs", "6", "--resume", &s(&backup)],
    );
    let line = run.one_error_line();
    assert!(
        line.starts_with("BackupAndRestore: cannot restore the backup in")
            && line.contains("training_metadata.json: not the JSON"),
        "{line}"
    );
    assert!(!out.exists());
    assert!(
        backup.join("latest.weights.h5").exists(),
        "the backup is left as it was"
    );
}
