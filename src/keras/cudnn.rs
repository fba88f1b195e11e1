//! The weights of Keras 2's `CuDNNLSTM` and `CuDNNGRU`, converted to the layout of `LSTM` and
//! `GRU(reset_after=True)` as Keras converts them on load.
//!
//! From Keras 2.2's `keras/engine/saving.py`, `_convert_rnn_weights` (tf_keras's
//! `hdf5_format._convert_rnn_weights` is the same): a CuDNN layer stores `kernel
//! (input_dim, gates·units)`, `recurrent_kernel (units, gates·units)` and `bias
//! (2·gates·units,)`, the input biases then the recurrent ones. Each gate's block of the kernel
//! is `k.T.reshape(k.shape, order='F')`; each gate's block of the recurrent kernel is
//! transposed; an LSTM's bias is the sum of the two halves; a GRU's is the two halves as rows.
//! The gates are in Keras's order already.

use ndarray::{s, Array2, ArrayD, Axis, Ix1, Ix2};

use crate::layer::WeightSpec;

/// How a layer's weights are stored in a file, when it differs from the layer's own layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredLayout {
    /// `CuDNNLSTM`, read into an `LSTM`.
    CuDnnLstm,
    /// `CuDNNGRU`, read into a `GRU(reset_after=True)`.
    CuDnnGru,
    /// A `Bidirectional`, its forward half then its backward half (`None`: stored as is).
    Pair(Option<Box<StoredLayout>>, Option<Box<StoredLayout>>),
}

impl StoredLayout {
    /// The shapes the file stores for a layer whose own weights are `specs`.
    pub(crate) fn stored_shapes(&self, specs: &[WeightSpec]) -> Vec<Vec<usize>> {
        match self {
            StoredLayout::CuDnnLstm | StoredLayout::CuDnnGru => specs
                .iter()
                .map(|w| match (w.name.as_str(), w.shape.as_slice()) {
                    (n, [width]) if n.ends_with("bias") => vec![2 * width],
                    (n, [2, width]) if n.ends_with("bias") => vec![2 * width],
                    _ => w.shape.clone(),
                })
                .collect(),
            StoredLayout::Pair(f, b) => {
                let half = specs.len() / 2;
                let mut out = match f {
                    Some(l) => l.stored_shapes(&specs[..half]),
                    None => specs[..half].iter().map(|w| w.shape.clone()).collect(),
                };
                out.extend(match b {
                    Some(l) => l.stored_shapes(&specs[half..]),
                    None => specs[half..].iter().map(|w| w.shape.clone()).collect(),
                });
                out
            }
        }
    }

    /// The stored weights (of [`stored_shapes`](Self::stored_shapes)) in the layer's layout.
    pub(crate) fn convert(&self, stored: Vec<ArrayD<f32>>) -> Vec<ArrayD<f32>> {
        match self {
            StoredLayout::CuDnnLstm => convert_rnn(stored, 4, false),
            StoredLayout::CuDnnGru => convert_rnn(stored, 3, true),
            StoredLayout::Pair(f, b) => {
                let mut stored = stored;
                let backward = stored.split_off(stored.len() / 2);
                let mut out = match f {
                    Some(l) => l.convert(stored),
                    None => stored,
                };
                out.extend(match b {
                    Some(l) => l.convert(backward),
                    None => backward,
                });
                out
            }
        }
    }
}

/// Keras's `transform_kernels(..., transpose_input(from_cudnn=True))`, the recurrent kernels'
/// transposes, and the biases, for `gates` gates.
fn convert_rnn(stored: Vec<ArrayD<f32>>, gates: usize, gru: bool) -> Vec<ArrayD<f32>> {
    let two = |a: &ArrayD<f32>| {
        a.view()
            .into_dimensionality::<Ix2>()
            .expect("shapes checked on read")
            .to_owned()
    };
    let kernel = two(&stored[0]);
    let recurrent = two(&stored[1]);
    let units = recurrent.nrows();
    let mut k = Array2::<f32>::zeros(kernel.dim());
    let mut r = Array2::<f32>::zeros(recurrent.dim());
    let input_dim = kernel.nrows();
    for g in 0..gates {
        let cols = g * units..(g + 1) * units;
        let block = kernel.slice(s![.., cols.clone()]);
        // new[a, b] = flat_F(block.T)[a + b·I], where flat_F(block.T)[j + i·U] = block[i, j].
        for a in 0..input_dim {
            for b in 0..units {
                let p = a + b * input_dim;
                let (i, j) = (p / units, p % units);
                k[[a, g * units + b]] = block[[i, j]];
            }
        }
        r.slice_mut(s![.., cols.clone()])
            .assign(&recurrent.slice(s![.., cols]).t());
    }
    let bias = stored[2]
        .view()
        .into_dimensionality::<Ix1>()
        .expect("shapes checked on read")
        .to_owned();
    let half = bias.len() / 2;
    let bias = if gru {
        bias.into_shape_with_order((2, half))
            .expect("2·3·units values")
            .into_dyn()
    } else {
        (&bias.slice(s![..half]) + &bias.slice(s![half..])).into_dyn()
    };
    let _ = Axis(0);
    vec![k.into_dyn(), r.into_dyn(), bias]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Keras's docstring example of `transpose_input`: a (2, 3) block
    /// `[[0, 1, 2], [3, 4, 5]]` in CuDNN's layout is `[[0, 2, 4], [1, 3, 5]]` in Keras's.
    #[test]
    fn the_kernel_blocks_follow_keras_example() {
        let kernel = array![[0.0_f32, 1.0, 2.0], [3.0, 4.0, 5.0]].into_dyn();
        let recurrent = Array2::<f32>::eye(3).into_dyn();
        let bias =
            ndarray::Array1::<f32>::from_vec(vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0]).into_dyn();
        // One "gate" of 3 units is the example itself (an LSTM split into 1 gate).
        let out = convert_rnn(vec![kernel, recurrent, bias], 1, false);
        assert_eq!(
            out[0],
            array![[0.0_f32, 2.0, 4.0], [1.0, 3.0, 5.0]].into_dyn()
        );
        // The LSTM bias is the sum of the halves: [11, 22, 33].
        assert_eq!(out[2], array![11.0_f32, 22.0, 33.0].into_dyn());
    }
}
