//! The backward half of the sequence driver: backpropagation through time over a [`Trace`].
//!
//! The forward run kept everything time-major, so the backward pass mirrors it:
//! - one loop from the last step to the first, in which each step asks the cell for the
//!   gradients of its gates and its previous states; the only product per step is the cell's
//!   `d_rec · recurrent_kernelᵀ`, into buffers allocated once;
//! - then the input gradient (when the caller needs it) is one product over all steps
//!   (`d_z · kernelᵀ` for a cell, the transposed convolution for a ConvLSTM), and the weight
//!   gradients are the cell's products over all steps, `xtᵀ · d_z` and `h_prevᵀ · d_rec` (over
//!   patches for a ConvLSTM), and the bias gradients the column sums of `d_z` and `d_rec`,
//!   added up in the loop, each step's while it is in the cache.
//!
//! Masked steps carry their rows' states, so their rows pass the state gradients through
//! unchanged and give their gates no gradient, as the forward `where(mask, new, old)` does.
//! Under recurrent dropout the state reached each step's recurrent products times the mask,
//! so the cell's dropped backward step masks its gradient through them, and the recurrent
//! kernel's gradient takes the states times the mask.

use ndarray::{concatenate, s, Array2, Array3, ArrayD, ArrayView2, ArrayView3, Axis};

use super::{InputGradient, SequenceBackward, Step, Trace};

/// The gradients of a recurrent layer's call.
#[derive(Debug)]
pub(crate) struct SequenceGrads {
    /// With respect to the input, `(batch, timesteps, features)`, in the input's time order;
    /// `None` when the caller needs none.
    pub(crate) input: Option<Array3<f32>>,
    /// With respect to the initial states, one `(batch, units)` per state.
    pub(crate) initial: Vec<Array2<f32>>,
    /// With respect to the weights, in Keras order.
    pub(crate) weights: Vec<ArrayD<f32>>,
}

/// Backpropagates through the run of `cell` whose blocks of batch rows left `traces`:
/// `d_output` is the gradient of the output, `(batch, units)` or, with `return_sequences`,
/// `(batch, timesteps, units)` in the order the output was returned; `d_final` the gradients
/// of the final states (`None` for a state the loss does not reach). The input's gradient is
/// computed only with `input_gradient`. Shapes were checked by the caller.
///
/// Each block runs on its own thread, as its forward run did; the weights' gradients are the
/// sums of the blocks', in the order of the rows.
pub(crate) fn backward<S: Step>(
    cell: &S,
    traces: &[Trace],
    d_output: Option<ArrayView3<'_, f32>>,
    d_last: Option<ArrayView2<'_, f32>>,
    d_final: &[Option<ArrayView2<'_, f32>>],
    input_gradient: bool,
) -> SequenceGrads {
    let blocks: Vec<(usize, &Trace)> = traces
        .iter()
        .scan(0, |start, trace| {
            let block = (*start, trace);
            *start += trace.batch;
            Some(block)
        })
        .collect();
    let mut grads = crate::threads::map(&blocks, |&(start, trace)| {
        let rows = start..start + trace.batch;
        let d_final: Vec<_> = d_final
            .iter()
            .map(|d| d.map(|d| d.slice_move(s![rows.clone(), ..])))
            .collect();
        backward_block(
            cell,
            trace,
            d_output.map(|d| d.slice_move(s![rows.clone(), .., ..])),
            d_last.map(|d| d.slice_move(s![rows.clone(), ..])),
            &d_final,
            input_gradient,
        )
    });
    if grads.len() == 1 {
        return grads.pop().expect("one block");
    }
    let input = input_gradient.then(|| {
        let views: Vec<_> = grads
            .iter()
            .map(|g| g.input.as_ref().expect("computed").view())
            .collect();
        concatenate(Axis(0), &views).expect("blocks share all but the batch axis")
    });
    let initial = (0..cell.widths().states)
        .map(|i| {
            let views: Vec<_> = grads.iter().map(|g| g.initial[i].view()).collect();
            concatenate(Axis(0), &views).expect("blocks share the units axis")
        })
        .collect();
    let mut rest = grads.into_iter().map(|g| g.weights);
    let mut weights = rest.next().unwrap_or_default();
    for block in rest {
        for (w, b) in weights.iter_mut().zip(block) {
            *w += &b;
        }
    }
    SequenceGrads {
        input,
        initial,
        weights,
    }
}

/// `acc += d`, row by row: `d` is a step of a `(batch, timesteps, units)` gradient, its rows
/// `timesteps·units` apart, each contiguous, added in one vectorized pass (ndarray's `+=` over
/// the strided view went element by element through its generic loop: 1.7 % of T4's epoch).
fn add_step(acc: &mut Array2<f32>, d: ArrayView2<'_, f32>) {
    for (mut a, d) in acc.rows_mut().into_iter().zip(d.rows()) {
        match (a.as_slice_mut(), d.as_slice()) {
            (Some(a), Some(d)) => crate::linalg::accumulate_rows(d, a),
            _ => a += &d,
        }
    }
}

/// [`backward`] for one block of rows, on the calling thread.
fn backward_block<S: Step>(
    cell: &S,
    trace: &Trace,
    d_output: Option<ArrayView3<'_, f32>>,
    d_last: Option<ArrayView2<'_, f32>>,
    d_final: &[Option<ArrayView2<'_, f32>>],
    input_gradient: bool,
) -> SequenceGrads {
    let (batch, timesteps) = (trace.batch, trace.timesteps);
    let widths = cell.widths();
    let (units, gates) = (widths.units, widths.gates);
    let rec_width = cell.recurrent_grad_width();
    let options = trace.options;
    let prepared = cell.prepare_backward();

    let mut d_states: Vec<Array2<f32>> = (0..widths.states)
        .map(|i| match d_final.get(i).copied().flatten() {
            Some(d) => d.to_owned(),
            None => Array2::zeros((batch, units)),
        })
        .collect();
    // Whether row b has met a real step by step t: before that, a masked output is zeros and
    // takes no gradient.
    let seen_real = trace.steps.as_ref().map(|steps| {
        let mut seen = vec![false; timesteps * batch];
        let mut any = vec![false; batch];
        for t in 0..timesteps {
            for b in 0..batch {
                any[b] |= steps[t * batch + b];
                seen[t * batch + b] = any[b];
            }
        }
        seen
    });
    // The gradient of a last-step output reaches the final output state.
    if let Some(d) = d_last {
        match &seen_real {
            None => d_states[0] += &d,
            Some(seen) => {
                let last = &seen[(timesteps.max(1) - 1) * batch..];
                for (b, &real) in last.iter().enumerate().take(batch) {
                    if real && timesteps > 0 {
                        let mut row = d_states[0].row_mut(b);
                        row += &d.row(b);
                    }
                }
            }
        }
    }

    // Every value of both is written by the steps below.
    let mut d_z = crate::buffers::array2(timesteps * batch, gates);
    let mut d_rec = crate::buffers::array2(timesteps * batch, rec_width);
    let mut scratch = vec![0.0_f32; batch * cell.backward_scratch_width()];
    // The bias gradients, added up step by step while each step's gradients are in the cache.
    let (mut dz_sums, mut drec_sums) = (vec![0.0_f32; gates], vec![0.0_f32; rec_width]);
    let mut carried: Vec<Array2<f32>> = d_states.clone();
    let keep_width = cell.keep_width();
    let post = trace.post.as_slice().expect("standard layout");
    let keep = trace.keep.as_slice().expect("standard layout");
    let mut prev: Vec<ArrayView2<'_, f32>> = Vec::with_capacity(trace.states.len());
    let mut next: Vec<ArrayView2<'_, f32>> = Vec::with_capacity(trace.states.len());
    for t in (0..timesteps).rev() {
        let rows = t * batch..(t + 1) * batch;
        if let Some(d) = d_output.as_ref() {
            // Output step t (in processing order) is the state after step t, unless masked.
            let dt = d.index_axis(Axis(1), t);
            match (&trace.steps, &seen_real) {
                (Some(steps), Some(seen)) => {
                    let routed = if options.zero_output_for_mask {
                        &steps[rows.clone()]
                    } else {
                        &seen[rows.clone()]
                    };
                    for (b, &r) in routed.iter().enumerate() {
                        if r {
                            let mut row = d_states[0].row_mut(b);
                            row += &dt.row(b);
                        }
                    }
                }
                _ => add_step(&mut d_states[0], dt),
            }
        }
        let masked_rows = trace.steps.as_ref().map(|steps| &steps[rows.clone()]);
        if masked_rows.is_some() {
            for (c, d) in carried.iter_mut().zip(&d_states) {
                c.assign(d);
            }
        }
        // Views into the trace, in buffers reused from step to step: no allocation per step.
        prev.clear();
        prev.extend(
            trace
                .states
                .iter()
                .map(|h| h.slice(s![t * batch..(t + 1) * batch, ..])),
        );
        next.clear();
        next.extend(
            trace
                .states
                .iter()
                .map(|h| h.slice(s![(t + 1) * batch..(t + 2) * batch, ..])),
        );
        let dz_t = &mut d_z.as_slice_mut().expect("standard layout")
            [t * batch * gates..(t + 1) * batch * gates];
        let drec_t = &mut d_rec.as_slice_mut().expect("standard layout")
            [t * batch * rec_width..(t + 1) * batch * rec_width];
        cell.step_backward(
            &prepared,
            &post[t * batch * gates..(t + 1) * batch * gates],
            &keep[t * batch * keep_width..(t + 1) * batch * keep_width],
            &prev,
            &next,
            &mut d_states,
            dz_t,
            drec_t,
            &mut scratch,
            batch,
            trace.recurrent_dropout.as_ref().map(|r| r.view()),
        );
        if let Some(real) = masked_rows {
            // A masked row's states were carried over this step: its gradients pass through
            // unchanged, and its gates get none.
            for (b, &r) in real.iter().enumerate() {
                if r {
                    continue;
                }
                for (d, c) in d_states.iter_mut().zip(&carried) {
                    d.row_mut(b).assign(&c.row(b));
                }
                dz_t[b * gates..(b + 1) * gates].fill(0.0);
                drec_t[b * rec_width..(b + 1) * rec_width].fill(0.0);
            }
        }
        let dz_t = &d_z.as_slice().expect("standard layout")[rows.start * gates..rows.end * gates];
        crate::linalg::accumulate_rows(dz_t, &mut dz_sums);
        if rec_width > 0 {
            let drec_t = &d_rec.as_slice().expect("standard layout")
                [rows.start * rec_width..rows.end * rec_width];
            crate::linalg::accumulate_rows(drec_t, &mut drec_sums);
        }
    }

    let mut h_prev = trace.states[0].slice(s![..timesteps * batch, ..]);
    // Under recurrent dropout, the recurrent kernel met each state times the mask.
    let dropped = trace.recurrent_dropout.as_ref().map(|r| {
        let mut h = h_prev.to_owned();
        for mut block in h.axis_chunks_iter_mut(Axis(0), batch.max(1)) {
            block *= r;
        }
        h
    });
    if let Some(h) = &dropped {
        h_prev = h.view();
    }
    let d_rec_view = if rec_width == 0 {
        d_z.view()
    } else {
        d_rec.view()
    };
    let features = trace.xt.ncols();
    let mut input = input_gradient.then(|| Array3::<f32>::zeros((batch, timesteps, features)));
    let seq = SequenceBackward {
        xt: trace.xt.view(),
        h_prev,
        keep: trace.keep.view(),
        d_z: d_z.view(),
        d_rec: d_rec_view,
        d_z_sums: &dz_sums,
        d_rec_sums: if rec_width == 0 { &dz_sums } else { &drec_sums },
    };
    let weights = cell.grads(
        seq,
        input.as_mut().map(|values| InputGradient {
            values,
            go_backwards: options.go_backwards,
        }),
    );
    crate::buffers::give(d_z);
    crate::buffers::give(d_rec);
    SequenceGrads {
        input,
        initial: d_states,
        weights,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run_blocks, Cell, Recurrent, RunOptions};
    use super::*;
    use crate::layer::Layer;
    use crate::layers::{gru::GRU, lstm::LSTM, simple_rnn::SimpleRNN};
    use crate::shape::Shape;
    use approx::assert_abs_diff_eq;
    use ndarray::Array2;

    /// Deterministic values in [-0.5, 0.5).
    fn values<D: ndarray::Dimension>(shape: D, seed: usize) -> ndarray::Array<f32, D> {
        let n = shape.size();
        let v = (0..n).map(|i| ((i * 37 + seed * 11) % 29) as f32 / 29.0 - 0.5);
        ndarray::Array::from_shape_vec(shape, v.collect()).expect("n values")
    }

    /// The run and the backward pass in `parts` blocks of rows, with a recurrent dropout mask
    /// when `dropped`.
    fn run_and_backward<C: Cell>(
        layer: &Recurrent<C>,
        parts: usize,
        options: RunOptions,
        dropped: bool,
    ) -> (ArrayD<f32>, SequenceGrads) {
        let (batch, steps, features, units) = (7, 5, 3, layer.units());
        let x = values(ndarray::Ix3(batch, steps, features), 1);
        // Every row starts with a real step; some have padding after it.
        let mask = Array2::from_shape_fn((batch, steps), |(b, t)| t == 0 || (b + t) % 3 != 0);
        let initial: Vec<Array2<f32>> = (0..layer.cell().state_count())
            .map(|i| values(ndarray::Ix2(batch, units), 2 + i))
            .collect();
        let views: Vec<_> = initial.iter().map(|s| s.view()).collect();
        // Zeros and scaled ones, as a recurrent dropout mask draws them.
        let keep =
            Array2::from_shape_fn(
                (batch, units),
                |(b, u)| {
                    if (b * 5 + u) % 3 == 0 {
                        0.0
                    } else {
                        1.5
                    }
                },
            );
        let (output, _, traces) = run_blocks(
            layer.cell(),
            x.view(),
            &views,
            Some(mask.view()),
            options,
            true,
            parts,
            dropped.then(|| keep.view()),
        );
        let d_out = values(output.raw_dim(), 5);
        let d_final: Vec<Array2<f32>> = (0..layer.cell().state_count())
            .map(|i| values(ndarray::Ix2(batch, units), 6 + i))
            .collect();
        let d_final: Vec<_> = d_final.iter().map(|d| Some(d.view())).collect();
        let (d_seq, d_last) = if options.return_sequences {
            (Some(d_out.view().into_dimensionality().unwrap()), None)
        } else {
            (None, Some(d_out.view().into_dimensionality().unwrap()))
        };
        let grads = backward(layer.cell(), &traces, d_seq, d_last, &d_final, true);
        (output, grads)
    }

    /// Blocks of rows, as threads run them, give the numbers of one block: only the weight
    /// gradients' sums go in another order.
    fn blocks_equal_one_block<C: Cell>(mut layer: Recurrent<C>) {
        layer
            .build(&[Shape::new(vec![None, None, Some(3)])])
            .expect("builds");
        layer.initialize();
        for (return_sequences, go_backwards) in [(true, false), (false, true)] {
            let options = RunOptions {
                go_backwards,
                return_sequences,
                zero_output_for_mask: return_sequences,
            };
            for dropped in [false, true] {
                let (y1, g1) = run_and_backward(&layer, 1, options, dropped);
                let (y3, g3) = run_and_backward(&layer, 3, options, dropped);
                assert_abs_diff_eq!(y1, y3, epsilon = 1e-6);
                assert_abs_diff_eq!(g1.input.unwrap(), g3.input.unwrap(), epsilon = 1e-6);
                for (a, b) in g1.initial.iter().zip(&g3.initial) {
                    assert_abs_diff_eq!(a, b, epsilon = 1e-6);
                }
                for (a, b) in g1.weights.iter().zip(&g3.weights) {
                    assert_abs_diff_eq!(a, b, epsilon = 1e-5);
                }
            }
            // The mask reaches the numbers: a test of the blocks' slices of it.
            let (y, g) = run_and_backward(&layer, 1, options, false);
            let (yd, gd) = run_and_backward(&layer, 3, options, true);
            assert!((&y - &yd).iter().any(|v| v.abs() > 1e-4));
            assert!((&g.weights[1] - &gd.weights[1])
                .iter()
                .any(|v| v.abs() > 1e-4));
        }
    }

    #[test]
    fn blocks_of_rows_give_the_numbers_of_one_block() {
        blocks_equal_one_block(SimpleRNN::new(4));
        blocks_equal_one_block(LSTM::new(4));
        blocks_equal_one_block(GRU::new(4));
        blocks_equal_one_block(GRU::new(4).with_reset_after(false));
    }
}
