//! The machine's f32 GEMM peak, with the two matrix products seqnn runs on: ndarray's
//! `general_mat_mul` (matrixmultiply, which packs both operands on every call) and seqnn's own
//! packed kernel (`gemm_acc` over a matrix packed once, as every recurrent step and input
//! projection runs it; reached through the hidden `seqnn::bench_hook`).
//!
//! `cargo bench --bench gemm`. Ids `gemm/<kernel>_<role>_<m>x<k>x<n>/threads_<t>`: `out += a·w` for
//! `a: (m, k)`, `w: (k, n)`, on one thread, or on two with `a`'s rows split in halves over
//! rayon's pool, as seqnn splits a batch's rows. Each criterion iteration runs enough products
//! (the same on every thread) to take about a millisecond, so that a split's join is no part of
//! the figure; throughput is in elements = FLOPs (`2·m·k·n` per product), so criterion's
//! "elem/s" is FLOP/s. `tools/keras_reference/bench_all.py` takes the best as the peak.
//! `SEQNN_BENCH_QUICK=1` makes it a smoke run of ten short samples each.
//!
//! Shapes: two squares, and the products of the workloads of `benches/recurrent.rs` on one
//! thread: each input projection (a block of timesteps, about 2¹⁷ gate values, as inference
//! projects it) and each recurrent step `(batch, units)·(units, gates·units)`; one-row products
//! (a one-stream step) on one thread only.
//!
//! A second group, `gemm_tn/<role>_<m>x<k>x<n>/threads_1`, times the transposed product
//! `aᵀ·b` (`a: (m, k)`, `b: (m, n)`) of training's weight gradients over a whole sequence, on
//! one thread: not part of the peak.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, Axis};
use seqnn::bench_hook::{tn_product, PackedMatrix};

mod common;

/// The thread counts each product runs with.
const THREADS: [usize; 2] = [1, 2];

/// `(role, m, k, n)`: the squares, then W2–W7's input projections and recurrent steps (W1's
/// are a few hundred FLOPs).
const SHAPES: [(&str, usize, usize, usize); 15] = [
    ("square", 512, 512, 512),
    ("square", 1024, 1024, 1024),
    // SimpleRNN(256) on 128 features, batch 64.
    ("w2_projection", 512, 128, 256),
    ("w2_step", 64, 256, 256),
    // Bidirectional(SimpleRNN(128)), batch 32 × 50 steps: the first layer reads 64 features,
    // the others 256.
    ("w3_projection_first", 1024, 64, 128),
    ("w3_projection", 1024, 256, 128),
    ("w3_step", 32, 128, 128),
    // LSTM(256), 4 gates.
    ("w4_projection", 128, 128, 1024),
    ("w4_step", 64, 256, 1024),
    // GRU(256), 3 gates.
    ("w5_projection", 128, 128, 768),
    ("w5_step", 64, 256, 768),
    // SimpleRNN(512) on 256 features, batch 256.
    ("w6_projection", 256, 256, 512),
    ("w6_step", 256, 512, 512),
    // LSTM(512) on one stream: a row times a kernel that streams from the L3 cache, and the
    // step of a one-stream LSTM(128), whose kernel stays in L2. One row does not split: one
    // thread only.
    ("w7_step", 1, 512, 2048),
    ("w7_step_lstm128", 1, 128, 512),
];

/// `(role, m, k, n)` of `aᵀ·b`: the weight gradients of benches/train.rs's workloads, a batch
/// of 64 sequences each, the recurrent kernel's `h_prevᵀ·d_z` and the kernel's `xᵀ·d_z`.
const TN_SHAPES: [(&str, usize, usize, usize); 5] = [
    // T2: LSTM(128) on 32 features, 50 steps.
    ("t2_recurrent_grad", 3200, 128, 512),
    ("t2_kernel_grad", 3200, 32, 512),
    // T3: LSTM(64) on a 64-wide embedding, 80 steps, each direction (the two are alike).
    ("t3_kernel_grad", 5120, 64, 256),
    // T4: GRU(128) on 16 features, 40 steps.
    ("t4_recurrent_grad", 2560, 128, 384),
    ("t4_kernel_grad", 2560, 16, 384),
];

/// FLOPs one iteration aims at: about a millisecond at 20 GFLOP/s.
const FLOPS_PER_ITERATION: usize = 20_000_000;

/// A deterministic `(rows, cols)` matrix in `[-0.5, 0.5)`.
fn matrix(rows: usize, cols: usize) -> Array2<f32> {
    common::input(1, rows, cols).index_axis_move(Axis(0), 0)
}

/// One thread's share of a product: its rows of `a` and of `out`.
struct Part<'a> {
    a: ArrayView2<'a, f32>,
    out: Array2<f32>,
}

/// `a`'s rows, whole or in two halves, each with an output of its own.
fn parts(a: ArrayView2<'_, f32>, n: usize, threads: usize) -> Vec<Part<'_>> {
    let m = a.nrows();
    let cut = if threads == 1 {
        vec![0, m]
    } else {
        vec![0, m / 2, m]
    };
    cut.windows(2)
        .map(|r| Part {
            a: a.slice_move(s![r[0]..r[1], ..]),
            out: Array2::zeros((r[1] - r[0], n)),
        })
        .collect()
}

/// `f` on every part: on the calling thread for one, on rayon's pool for two.
fn run(parts: &mut [Part<'_>], f: &(impl Fn(&mut Part<'_>) + Sync)) {
    match parts {
        [one] => f(one),
        [first, second] => {
            rayon::join(|| f(first), || f(second));
        }
        _ => unreachable!("one or two threads"),
    }
}

/// Half a second of warm-up and a second of 20 samples (a tenth of that, quick).
fn set_timing(group: &mut BenchmarkGroup<'_, WallTime>) {
    let (warm_up, measurement, samples) = if common::quick() {
        (50, 100, 10)
    } else {
        (500, 1000, 20)
    };
    group
        .warm_up_time(Duration::from_millis(warm_up))
        .measurement_time(Duration::from_millis(measurement))
        .sample_size(samples);
}

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    set_timing(&mut group);
    for (role, m, k, n) in SHAPES {
        let a = matrix(m, k);
        let w = matrix(k, n);
        let packed = PackedMatrix::new(w.view());
        let flops = 2 * m * k * n;
        let reps = (FLOPS_PER_ITERATION / flops).max(1);
        group.throughput(Throughput::Elements((reps * flops) as u64));
        let matrixmultiply = |p: &mut Part<'_>| {
            for _ in 0..reps {
                general_mat_mul(1.0, &black_box(p.a), &w, 1.0, &mut p.out);
            }
        };
        let seqnn_packed = |p: &mut Part<'_>| {
            let (a, rows) = (p.a.as_slice().expect("whole rows"), p.a.nrows());
            let out = p.out.as_slice_mut().expect("a new array");
            for _ in 0..reps {
                packed.gemm_acc(black_box(a), out, rows).expect("sized");
            }
        };
        for threads in THREADS.into_iter().filter(|&t| t <= m) {
            let param = format!("threads_{threads}");
            let mut ps = parts(a.view(), n, threads);
            group.bench_function(
                BenchmarkId::new(format!("matrixmultiply_{role}_{m}x{k}x{n}"), &param),
                |b| b.iter(|| run(&mut ps, &matrixmultiply)),
            );
            group.bench_function(
                BenchmarkId::new(format!("packed_{role}_{m}x{k}x{n}"), &param),
                |b| b.iter(|| run(&mut ps, &seqnn_packed)),
            );
        }
    }
    group.finish();
}

fn gemm_tn(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_tn");
    set_timing(&mut group);
    for (role, m, k, n) in TN_SHAPES {
        let (a, b) = (matrix(m, k), matrix(m, n));
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(
            BenchmarkId::new(format!("{role}_{m}x{k}x{n}"), "threads_1"),
            |bench| bench.iter(|| tn_product(black_box(a.view()), b.view()).expect("sized")),
        );
    }
    group.finish();
}

criterion_group!(benches, gemm, gemm_tn);
criterion_main!(benches);
