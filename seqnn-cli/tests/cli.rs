//! The `seqnn` command-line tool, run as a user runs it: the built binary, its exit status, its
//! standard output and its one line of error.
//!
//! The tests that need a model file run every model under `tests/fixtures/files/` (made by
//! tf_keras 2.21 and Keras 3 with `tools/keras_reference/generate_files.py`) and compare the
//! tool's outputs with the outputs Keras computed, saved beside them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use approx::assert_abs_diff_eq;
use ndarray::{concatenate, ArrayD, Axis, IxDyn};
use seqnn::npy::{read_npy, write_npy};
use seqnn::{load_model, Sequential, Shape};

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
    write_npy(&path, &ArrayD::zeros(IxDyn(shape))).expect("input written");
    path
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

#[test]
fn a_bad_npy_input_is_one_clear_line() {
    let dir = scratch("bad_npy");
    let model = dir.join("model.keras");
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, "this is not an array\n").expect("written");
    let run = seqnn(["predict", &s(&model), &s(&garbage)]);
    let line = run.one_error_line();
    assert!(
        line.starts_with(&format!("{}: not a .npy file", s(&garbage))),
        "{line}"
    );

    let truncated = dir.join("truncated.npy");
    let bytes = std::fs::read(npy_fixture("f4_2x3.npy")).expect("fixture");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).expect("written");
    let run = seqnn(["predict", &s(&model), &s(&truncated)]);
    assert!(run.one_error_line().contains("truncated"));

    let fortran = npy_fixture("f4_fortran.npy");
    let run = seqnn(["predict", &s(&model), &s(&fortran)]);
    assert!(run.one_error_line().contains("Fortran-order"));

    let big = npy_fixture("i8_too_large.npy");
    let run = seqnn(["predict", &s(&model), &s(&big)]);
    let line = run.one_error_line();
    assert!(line.contains("16777217 at index (1, 1)"), "{line}");

    let scalar = npy_fixture("f4_scalar.npy");
    let run = seqnn(["predict", &s(&model), &s(&scalar)]);
    assert!(run.one_error_line().contains("scalar"));
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
        read_npy(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn json(&self) -> serde_json::Value {
        let path = files_dir().join(format!("{}.json", self.case));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The output of a second `predict` on the same input, for a stateful case.
    fn second_predict(&self) -> Option<ArrayD<f32>> {
        let json = self.json();
        let tensor = json.get("second_predict")?.get(self.writer)?;
        let shape: Vec<usize> = tensor["shape"]
            .as_array()
            .expect("a shape")
            .iter()
            .map(|d| d.as_u64().expect("a size") as usize)
            .collect();
        let data: Vec<f32> = tensor["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|v| v.as_f64().expect("a number") as f32)
            .collect();
        Some(ArrayD::from_shape_vec(IxDyn(&shape), data).expect("sizes agree"))
    }

    /// A name for files derived from this one.
    fn stem(&self) -> String {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model")
            .replace('.', "_")
    }
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

fn load(path: &Path) -> Sequential {
    load_model(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
    let y = read_npy(out).unwrap_or_else(|e| panic!("{e}"));
    (run, y)
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
        let x = read_npy(file.input()).unwrap_or_else(|e| panic!("{e}"));
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

#[test]
fn every_bad_file_is_one_error_line() {
    let dir = files_dir().join("bad");
    let mut count = 0;
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
        let line = run.one_error_line();
        assert!(
            line.starts_with(&format!("{}: ", s(&path))),
            "names the file: {line}"
        );
        count += 1;
    }
    assert!(count > 0, "no bad files in {}", dir.display());
}
