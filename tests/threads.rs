//! Threads: one persistent pool, the process's CPU affinity respected, a cap that callers set,
//! and no oversubscription when many threads call at once. The scenarios that count threads run
//! in a child process of this test binary, alone, so that nothing else adds threads.

#![cfg(feature = "threads")]

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ndarray::Array3;
use seqnn::{Sequential, LSTM};

/// Runs this test binary's test `name` in a child process with `SEQNN_CHILD` set, optionally
/// under `taskset -c cpus`, and returns what it printed.
fn child(name: &str, cpus: Option<&str>) -> String {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = match cpus {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", c]).arg(exe);
            t
        }
        None => Command::new(exe),
    };
    let out = cmd
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env("SEQNN_CHILD", "1")
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .expect("the child runs (taskset is part of util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value printed as `key=value` by a child.
fn field(out: &str, key: &str) -> usize {
    let prefix = format!("{key}=");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
        .parse()
        .expect("a number")
}

fn in_child() -> bool {
    std::env::var_os("SEQNN_CHILD").is_some()
}

/// The threads the process has now, from `/proc/self/status`.
fn process_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Threads line")
}

/// A model whose calls are large enough to split over the pool.
fn large_model() -> (Sequential, Array3<f32>) {
    let mut model = Sequential::new();
    model
        .add(LSTM::new(64).input_shape((50, 32)))
        .expect("adds");
    let x = Array3::from_shape_fn((256, 50, 32), |(b, t, d)| ((b + t + d) % 7) as f32 * 0.1);
    (model, x)
}

#[test]
fn child_prints_its_thread_count() {
    if in_child() {
        println!("threads={}", seqnn::num_threads());
    }
}

#[test]
fn the_pool_follows_the_cpu_affinity() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let free = child("child_prints_its_thread_count", None);
    assert_eq!(field(&free, "threads"), cpus);
    let pinned = child("child_prints_its_thread_count", Some("0"));
    assert_eq!(field(&pinned, "threads"), 1, "under taskset -c 0");
}

#[test]
fn the_cap_applies_to_every_call_after_it() {
    if in_child() {
        return;
    }
    let out = child("child_sets_a_cap", None);
    assert_eq!(field(&out, "capped"), 1);
    assert_eq!(field(&out, "uncapped"), field(&out, "pool"));
    assert_eq!(
        field(&out, "same"),
        1,
        "the cap changes the speed, not the numbers"
    );
}

#[test]
fn child_sets_a_cap() {
    if !in_child() {
        return;
    }
    let (model, x) = large_model();
    let pool = seqnn::num_threads();
    seqnn::set_num_threads(1);
    let capped = seqnn::num_threads();
    let one = model.predict(&x).expect("runs");
    seqnn::set_num_threads(0);
    let all = model.predict(&x).expect("runs");
    println!(
        "pool={pool}\ncapped={capped}\nuncapped={}",
        seqnn::num_threads()
    );
    println!("same={}", usize::from(one == all));
}

#[test]
fn many_callers_do_not_oversubscribe() {
    if in_child() {
        return;
    }
    let out = child("child_calls_from_many_threads", None);
    let (before, peak, pool) = (
        field(&out, "before"),
        field(&out, "peak"),
        field(&out, "pool"),
    );
    // The callers and the sampler are the only threads added: seqnn adds none per call.
    assert!(
        peak <= before + 4 + 1,
        "{peak} threads at the peak, {before} before, a pool of {pool}"
    );
}

#[test]
fn child_calls_from_many_threads() {
    if !in_child() {
        return;
    }
    let (model, x) = large_model();
    // The pool exists once one large call has run.
    model.predict(&x).expect("runs");
    let before = process_threads();
    let model = Arc::new(model);
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(process_threads(), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (model, x) = (Arc::clone(&model), x.clone());
            std::thread::spawn(move || {
                for _ in 0..3 {
                    model.predict(&x).expect("runs");
                }
            })
        })
        .collect();
    for c in callers {
        c.join().expect("a caller");
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler");
    println!(
        "before={before}\npeak={}\npool={}",
        peak.load(Ordering::Relaxed),
        seqnn::num_threads()
    );
}

/// A call made from inside the pool (from the program's own rayon task) runs there.
#[test]
fn a_call_from_inside_the_pool_runs_on_it() {
    if in_child() {
        return;
    }
    let (model, x) = large_model();
    let expected = model.predict(&x).expect("runs");
    let got = rayon::join(|| model.predict(&x).expect("runs"), || 0).0;
    assert_eq!(got, expected);
}

/// The largest difference between two outputs of the same shape.
fn max_difference(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Large inference calls split their steps by units over the pool (SimpleRNN, LSTM, GRU with
/// `reset_after`), or their batch (GRU without it, and every layer given enough rows): on
/// every layer and option, the numbers of one thread.
#[test]
fn steps_split_over_threads_give_the_numbers_of_one_thread() {
    if in_child() {
        return;
    }
    assert_no_case_differs("child_compares_one_thread_with_the_pool", 14);
}

/// Runs the child `name`, which prints how many cases it compared and how many differed: at
/// least `cases` cases, none differing.
fn assert_no_case_differs(name: &str, cases: usize) {
    let out = child(name, None);
    assert!(field(&out, "cases") >= cases, "{out}");
    assert_eq!(field(&out, "differ"), 0, "{out}");
}

#[test]
fn child_compares_one_thread_with_the_pool() {
    use seqnn::{Layer, SimpleRNN, GRU};
    if !in_child() {
        return;
    }
    // 100 units split unevenly (64 + 36); 8 rows, too few to split, and sizes above the
    // driver's threshold for threads, so that the steps split by units; then 37 rows, which
    // split into blocks of 19 and 18 rows, each writing its rows of one sequence output.
    let (mut cases, mut differ) = (0, 0);
    for batch in [8, 37] {
        let (timesteps, features) = (60, 24);
        type MakeLayer = Box<dyn Fn() -> Box<dyn Layer>>;
        let layers: Vec<(&str, MakeLayer)> = vec![
            ("simple_rnn", Box::new(|| Box::new(SimpleRNN::new(100)))),
            (
                "simple_rnn sequences backwards",
                Box::new(|| {
                    Box::new(
                        SimpleRNN::new(100)
                            .with_return_sequences(true)
                            .with_go_backwards(true),
                    )
                }),
            ),
            (
                "lstm sequences",
                Box::new(|| Box::new(LSTM::new(100).with_return_sequences(true))),
            ),
            (
                "lstm stateful",
                Box::new(move || Box::new(LSTM::new(100).with_stateful(true).batch_size(batch))),
            ),
            (
                "gru backwards",
                Box::new(|| Box::new(GRU::new(100).with_go_backwards(true))),
            ),
            (
                "gru stateful sequences",
                Box::new(move || {
                    Box::new(
                        GRU::new(100)
                            .with_return_sequences(true)
                            .with_stateful(true)
                            .batch_size(batch),
                    )
                }),
            ),
            (
                "gru without reset_after",
                Box::new(|| Box::new(GRU::new(100).with_reset_after(false))),
            ),
        ];
        let x = Array3::from_shape_fn((batch, timesteps, features), |(b, t, d)| {
            ((b * 7 + t * 3 + d) % 11) as f32 * 0.1 - 0.5
        });
        for (name, layer) in &layers {
            seqnn::set_random_seed(7);
            let mut model = Sequential::new();
            model.add_boxed(layer()).expect("adds");
            let shape = seqnn::Shape::new(vec![Some(batch), Some(timesteps), Some(features)]);
            model.build(shape).expect("builds");
            let mut outputs = Vec::new();
            for threads in [1, 0] {
                seqnn::set_num_threads(threads);
                model.reset_states();
                // A stateful layer's second call starts from the states the first one left.
                let first = model.predict_stateful(&x).expect("runs");
                let second = model.predict_stateful(&x).expect("runs");
                outputs.push((first, second));
            }
            seqnn::set_num_threads(0);
            let d = max_difference(&outputs[0].0, &outputs[1].0)
                .max(max_difference(&outputs[0].1, &outputs[1].1));
            println!("{name}, {batch} rows: {d:e}");
            cases += 1;
            differ += usize::from(d > 1e-6);
        }
    }
    println!("cases={cases}\ndiffer={differ}");
}

/// A `Bidirectional` runs its two directions side by side, each on its share of the pool, or,
/// with dropout in training, one after the other, each splitting its rows: either way its
/// outputs and gradients are those of one thread, and dropout draws its masks in the same order.
#[test]
fn bidirectional_directions_give_the_numbers_of_one_thread() {
    if in_child() {
        return;
    }
    assert_no_case_differs("child_compares_bidirectional_with_one_thread", 4);
}

#[test]
fn child_compares_bidirectional_with_one_thread() {
    use seqnn::{Bidirectional, CallContext, Layer, MergeMode, Shape, SimpleRNN, GRU};
    if !in_child() {
        return;
    }
    // 37 rows, which split into 19 + 18 where a direction splits its rows.
    let (batch, timesteps, features) = (37, 60, 24);
    type MakeLayer = Box<dyn Fn() -> Bidirectional>;
    let layers: Vec<(&str, MakeLayer)> = vec![
        (
            "lstm sequences, concat",
            Box::new(|| Bidirectional::new(LSTM::new(64).with_return_sequences(true))),
        ),
        (
            "gru, sum",
            Box::new(|| Bidirectional::new(GRU::new(48)).with_merge_mode(MergeMode::Sum)),
        ),
        (
            "simple_rnn sequences, mul",
            Box::new(|| {
                Bidirectional::new(SimpleRNN::new(40).with_return_sequences(true))
                    .with_merge_mode(MergeMode::Mul)
            }),
        ),
        (
            "lstm sequences with dropout and recurrent dropout",
            Box::new(|| {
                Bidirectional::new(
                    LSTM::new(64)
                        .with_return_sequences(true)
                        .with_dropout(0.3)
                        .with_recurrent_dropout(0.2),
                )
            }),
        ),
    ];
    let x = Array3::from_shape_fn((batch, timesteps, features), |(b, t, d)| {
        ((b * 7 + t * 3 + d) % 11) as f32 * 0.1 - 0.5
    })
    .into_dyn();
    let (mut cases, mut differ) = (0, 0);
    for (name, make) in &layers {
        seqnn::set_random_seed(7);
        let mut layer = make();
        layer
            .build(&[Shape::new(vec![None, Some(timesteps), Some(features)])])
            .expect("builds");
        layer.initialize();
        let mut runs: Vec<Vec<ndarray::ArrayD<f32>>> = Vec::new();
        for threads in [1, 0] {
            seqnn::set_num_threads(threads);
            let mut arrays = layer
                .call(&[x.view()], &mut CallContext::inference())
                .expect("predicts");
            seqnn::set_random_seed(11);
            let mut ctx = CallContext::training();
            let y = layer.call(&[x.view()], &mut ctx).expect("trains");
            let saved = ctx.take_saved().expect("a training call keeps its record");
            let upstream = ndarray::ArrayD::from_shape_fn(y[0].raw_dim(), |i| {
                (ndarray::Dimension::as_array_view(&i).iter().sum::<usize>() % 5) as f32 * 0.2 - 0.4
            });
            let grads = layer
                .backward(&saved, &[Some(upstream.view())])
                .expect("backward");
            arrays.extend(y);
            arrays.extend(grads.inputs.into_iter().flatten());
            arrays.extend(grads.weights);
            runs.push(arrays);
        }
        seqnn::set_num_threads(0);
        assert_eq!(runs[0].len(), runs[1].len());
        // Relative above 1: weight gradients are sums over rows, in blocks where rows split.
        let d = runs[0]
            .iter()
            .zip(&runs[1])
            .flat_map(|(a, b)| {
                assert_eq!(a.shape(), b.shape());
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            })
            .fold(0.0, f32::max);
        println!("{name}: {d:e}");
        cases += 1;
        differ += usize::from(d > 1e-5);
    }
    println!("cases={cases}\ndiffer={differ}");
}
