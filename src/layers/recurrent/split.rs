//! The sequence loop of an inference call split over threads by units: each thread runs the
//! same timesteps for all batch rows and its own units of every gate, and the threads meet
//! once per step, when each has written its part of the step's output.
//!
//! The driver splits a large call's batch rows over the threads ([`run_blocks`](super::run_blocks))
//! where there are enough of them, each thread running the whole sequence for its rows with no
//! exchange between them. A call with too few rows (one stream) splits its units instead: each
//! thread's products keep all the rows and only its part of the recurrent kernel, which stays
//! in its core's cache, and the threads exchange each step's output. That is how oneDNN splits
//! PyTorch's LSTM step.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, RwLock};

use ndarray::{s, Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewMut3, Axis};

use super::{projection_block, Cell, RunOptions, Step};

/// Units per part below which a split does not pay for its synchronization.
const MIN_PART_UNITS: usize = 32;

/// The slices of `cell` for a run on `parts` threads, each with its units, or `None` when the
/// cell does not split (or `parts` is below 2): contiguous ranges of equal widths, rounded to
/// 16 units, the last one shorter.
pub(crate) fn slices<C: Cell>(cell: &C, parts: usize) -> Option<Vec<(Range<usize>, C)>> {
    let units = cell.units();
    if std::env::var_os("SEQNN_NO_SPLIT").is_some() {
        return None;
    }
    let parts = parts.min(units / MIN_PART_UNITS);
    if parts < 2 {
        return None;
    }
    let width = units.div_ceil(parts).div_ceil(16) * 16;
    (0..units)
        .step_by(width)
        .map(|start| {
            let range = start..(start + width).min(units);
            cell.unit_slice(range.clone()).map(|slice| (range, slice))
        })
        .collect()
}

/// A cell's slices for a split run, made on the first such call and kept until the weights
/// change: slicing and packing the kernels costs as much as a short call. A copy of the layer
/// starts empty.
pub(crate) struct SliceCache<C>(Mutex<Option<(usize, Slices<C>)>>);

/// The slices of a cell, each with its units.
pub(crate) type Slices<C> = Arc<Vec<(Range<usize>, C)>>;

impl<C: Cell> SliceCache<C> {
    /// The slices of `cell` for `parts` threads, from the cache or made now (see [`slices`]).
    pub(crate) fn get(&self, cell: &C, parts: usize) -> Option<Slices<C>> {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, slices)) = cached.as_ref() {
            if *n == parts {
                return Some(Arc::clone(slices));
            }
        }
        let made = Arc::new(slices(cell, parts)?);
        *cached = Some((parts, Arc::clone(&made)));
        Some(made)
    }

    /// Forgets the slices, for new weights or a new configuration.
    pub(crate) fn clear(&mut self) {
        *self.0.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl<C> Default for SliceCache<C> {
    fn default() -> Self {
        SliceCache(Mutex::new(None))
    }
}

impl<C> Clone for SliceCache<C> {
    fn clone(&self) -> Self {
        SliceCache::default()
    }
}

impl<C> fmt::Debug for SliceCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SliceCache")
    }
}

/// One part's own buffers.
struct Part<'a, C> {
    units: Range<usize>,
    cell: &'a C,
    /// The time-major copy of a block of the input, and its projection.
    xt: Array2<f32>,
    z: Array2<f32>,
    /// The part's states, `(batch, part units)` each.
    states: Vec<Array2<f32>>,
    scratch: Vec<f32>,
    /// The part's columns of the sequence output.
    sequence: Option<ArrayViewMut3<'a, f32>>,
}

/// [`run`](super::run) of `cell`, split into `slices` (from [`slices`]): the same output and
/// final states. No mask, no dropout, no trace: an inference call's plain loop.
pub(crate) fn run<C: Cell>(
    cell: &C,
    slices: &[(Range<usize>, C)],
    x: ArrayView3<'_, f32>,
    initial: &[ArrayView2<'_, f32>],
    options: RunOptions,
) -> (ArrayD<f32>, Vec<Array2<f32>>) {
    let (batch, timesteps, features) = x.dim();
    let units = cell.units();
    let count = cell.state_count();
    let initial_state = |i: usize| -> Array2<f32> {
        initial
            .get(i)
            .map_or_else(|| Array2::zeros((batch, units)), |s| s.to_owned())
    };
    // The whole output of the step before, and the one being written: the parts read one
    // and write their columns of the other, which the next step reads.
    let initial_states: Vec<Array2<f32>> = (0..count).map(initial_state).collect();
    let outputs = [
        RwLock::new(initial_states[0].clone()),
        RwLock::new(Array2::<f32>::zeros((batch, units))),
    ];
    let mut sequence = options
        .return_sequences
        .then(|| Array3::<f32>::zeros((batch, timesteps, units)));
    let mut columns = sequence.as_mut().map(|seq| {
        let mut rest = seq.view_mut();
        let mut views = Vec::new();
        for (range, _) in slices {
            let (head, tail) = rest.split_at(Axis(2), range.len());
            views.push(head);
            rest = tail;
        }
        views.into_iter()
    });
    let parts: Vec<Mutex<Part<'_, C>>> = slices
        .iter()
        .map(|(range, slice)| {
            let w = slice.widths();
            let block = projection_block(batch, w.gates, timesteps);
            let states = initial_states
                .iter()
                .map(|s| s.slice(s![.., range.clone()]).to_owned())
                .collect();
            Mutex::new(Part {
                xt: Array2::zeros((block * batch, features)),
                z: Array2::zeros((block * batch, w.gates)),
                states,
                scratch: vec![0.0; batch * w.scratch],
                sequence: columns.as_mut().and_then(Iterator::next),
                units: range.clone(),
                cell: slice,
            })
        })
        .collect();
    drop(columns);
    let source = |t: usize| {
        if options.go_backwards {
            timesteps - 1 - t
        } else {
            t
        }
    };

    crate::threads::lockstep(parts.len(), timesteps, |t, p| {
        let mut guard = parts[p].lock().unwrap_or_else(|e| e.into_inner());
        let part = &mut *guard;
        let block = part.z.nrows() / batch.max(1);
        let j = t % block;
        if j == 0 {
            let n = block.min(timesteps - t);
            for i in 0..n {
                part.xt
                    .slice_mut(s![i * batch..(i + 1) * batch, ..])
                    .assign(&x.slice(s![.., source(t + i), ..]));
            }
            let mut zb = part.z.slice_mut(s![..n * batch, ..]);
            zb.fill(0.0);
            part.cell.project(part.xt.slice(s![..n * batch, ..]), zb);
        }
        let width = part.z.ncols();
        let z = &mut part.z.as_slice_mut().expect("a new array")
            [j * batch * width..(j + 1) * batch * width];
        {
            let before = outputs[t % 2].read().unwrap_or_else(|e| e.into_inner());
            let h = before.as_slice().expect("a new array");
            part.cell
                .step_slice(h, z, &mut part.states, &mut part.scratch, batch);
        }
        outputs[(t + 1) % 2]
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .slice_mut(s![.., part.units.clone()])
            .assign(&part.states[0]);
        if let Some(seq) = part.sequence.as_mut() {
            seq.index_axis_mut(Axis(1), t).assign(&part.states[0]);
        }
    });

    let parts: Vec<Part<'_, C>> = parts
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect();
    let states: Vec<Array2<f32>> = (0..count)
        .map(|i| {
            let mut whole = Array2::zeros((batch, units));
            for part in &parts {
                whole
                    .slice_mut(s![.., part.units.clone()])
                    .assign(&part.states[i]);
            }
            whole
        })
        .collect();
    drop(parts);
    let output = match sequence {
        Some(seq) => seq.into_dyn(),
        None => states[0].clone().into_dyn(),
    };
    (output, states)
}
