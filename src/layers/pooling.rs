//! Keras's `MaxPooling1D`, `AveragePooling1D`, `MaxPooling2D` and `AveragePooling2D`: one
//! layer, [`Pooling`], over one or two spatial axes, with the reduction as a type ([`MaxPool`],
//! [`AveragePool`]).

use std::fmt;
use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::layer::{
    check_not_empty, common_builders, layer_plumbing, output_grad, single_input, single_shape,
    weightless, CallContext, Gradients, InputDecl, Layer, LayerName, SavedForBackward,
};
use crate::layers::conv::{
    axis_output, check_positive, known_dims, known_windows, np_array, plane, py_tuple, Dims,
    Padding,
};
use crate::limits;
use crate::linalg::pool::{pool, pool_backward, PoolShape, Reduce};
use crate::shape::Shape;

mod sealed {
    pub trait Sealed {}
}

/// How a pooling layer reduces a window: [`MaxPool`] or [`AveragePool`]. Sealed: these two are all.
pub trait PoolKind: sealed::Sealed + fmt::Debug + Clone + Send + Sync + 'static {
    /// Whether windows keep their largest value (`MaxPool`) rather than their mean (`AveragePool`).
    const MAX: bool;
}

/// The largest value of each window: `MaxPooling*`, `GlobalMaxPooling*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MaxPool;

/// The mean of each window: `AveragePooling*`, `GlobalAveragePooling*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AveragePool;

impl sealed::Sealed for MaxPool {}
impl sealed::Sealed for AveragePool {}

impl PoolKind for MaxPool {
    const MAX: bool = true;
}

impl PoolKind for AveragePool {
    const MAX: bool = false;
}

/// The name of a pooling class: global or not, the reduction, the rank.
pub(crate) fn class_name<P: PoolKind>(global: bool, rank: usize) -> &'static str {
    match (global, P::MAX, rank) {
        (false, true, 1) => "MaxPooling1D",
        (false, true, _) => "MaxPooling2D",
        (false, false, 1) => "AveragePooling1D",
        (false, false, _) => "AveragePooling2D",
        (true, true, 1) => "GlobalMaxPooling1D",
        (true, true, _) => "GlobalMaxPooling2D",
        (true, false, 1) => "GlobalAveragePooling1D",
        (true, false, _) => "GlobalAveragePooling2D",
    }
}

/// Keras's base name of a pooling class (`max_pooling1d`, ...).
pub(crate) fn base_name<P: PoolKind>(global: bool, rank: usize) -> &'static str {
    match (global, P::MAX, rank) {
        (false, true, 1) => "max_pooling1d",
        (false, true, _) => "max_pooling2d",
        (false, false, 1) => "average_pooling1d",
        (false, false, _) => "average_pooling2d",
        (true, true, 1) => "global_max_pooling1d",
        (true, true, _) => "global_max_pooling2d",
        (true, false, 1) => "global_average_pooling1d",
        (true, false, _) => "global_average_pooling2d",
    }
}

/// Keras's `MaxPooling1D`, `AveragePooling1D`, `MaxPooling2D` and `AveragePooling2D`: the
/// largest value or the mean of each window of `pool_size` cells, moved by `strides`, for
/// every channel on its own.
///
/// ```text
/// y[b, o, c] = max or mean over k in the window, inside the input, of x[b, o·stride + k − pad, c]
/// ```
///
/// - Input: `(batch, steps, channels)` (1-D) or `(batch, height, width, channels)` (2-D).
/// - Output: the spatial axes as [`Padding`] says (`dilation` 1), the same channels.
/// - No weights. A mask stops here, as in Keras (`supports_masking` is false in tf_keras 2.21
///   and Keras 3.15).
/// - With [`Padding::Same`], padding cells take no part: a max ignores them, and an average
///   divides by the number of real cells in the window (TensorFlow's `avg_pool`, which both
///   Keras versions run).
///
/// Options, with Keras's defaults: `strides` the pool size, `padding` valid.
///
/// In training, an average's gradient is shared evenly among the real cells of each window,
/// and a max's goes to the first cell of its window (in row-major order) that holds the
/// maximum, as TensorFlow's `MaxPoolGrad` does for both Keras versions.
///
/// # Errors
/// Adding, building or calling it fails with [`Error::InvalidArgument`] for a zero pool size
/// or stride, causal padding, or "valid" windows longer than the input (Keras 3's message),
/// and with [`Error::IncompatibleRank`] for an input of another rank.
#[derive(Debug, Clone)]
pub struct Pooling<const N: usize, P: PoolKind> {
    name: LayerName,
    input: InputDecl,
    pool_size: [usize; N],
    strides: Option<[usize; N]>,
    padding: Padding,
    trainable: bool,
    built: bool,
    kind: PhantomData<P>,
}

/// Keras's `MaxPooling1D(pool_size)`. See [`Pooling`].
///
/// ```
/// use seqnn::{Conv1D, MaxPooling1D, Padding, Sequential};
/// // model.add(Conv1D(4, 3, input_shape=(11, 2)))
/// // model.add(MaxPooling1D(2, padding="same"))
/// let mut model = Sequential::new();
/// model.add(Conv1D::new(4, 3).input_shape((11, 2)))?;
/// model.add(MaxPooling1D::new(2).with_padding(Padding::Same))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 5, 4)"); // ceil(9 / 2)
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type MaxPooling1D = Pooling<1, MaxPool>;

/// Keras's `AveragePooling1D(pool_size)`. See [`Pooling`].
///
/// ```
/// use seqnn::{AveragePooling1D, Sequential};
/// // model.add(AveragePooling1D(3, strides=1, input_shape=(6, 2)))
/// let mut model = Sequential::new();
/// model.add(AveragePooling1D::new(3).with_strides(1).input_shape((6, 2)))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 4, 2)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type AveragePooling1D = Pooling<1, AveragePool>;

/// Keras's `MaxPooling2D(pool_size)`. See [`Pooling`].
///
/// ```
/// use seqnn::{MaxPooling2D, Sequential};
/// // model.add(MaxPooling2D((2, 2), input_shape=(5, 4, 3)))
/// let mut model = Sequential::new();
/// model.add(MaxPooling2D::new((2, 2)).input_shape([5, 4, 3]))?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 2, 2, 3)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type MaxPooling2D = Pooling<2, MaxPool>;

/// Keras's `AveragePooling2D(pool_size)`. See [`Pooling`].
///
/// ```
/// use seqnn::{AveragePooling2D, Padding, Sequential};
/// // model.add(AveragePooling2D(3, strides=2, padding="same", input_shape=(5, 4, 3)))
/// let mut model = Sequential::new();
/// model.add(
///     AveragePooling2D::new(3)
///         .with_strides(2)
///         .with_padding(Padding::Same)
///         .input_shape([5, 4, 3]),
/// )?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 3, 2, 3)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type AveragePooling2D = Pooling<2, AveragePool>;

impl<P: PoolKind> Pooling<1, P> {
    /// A 1-D pooling over windows of `pool_size` steps, moved by `pool_size` (Keras's
    /// default), as Keras's `MaxPooling1D(pool_size)` or `AveragePooling1D(pool_size)`.
    pub fn new(pool_size: usize) -> Self {
        Self::make([pool_size])
    }
}

impl<P: PoolKind> Pooling<2, P> {
    /// A 2-D pooling over windows of `pool_size` (one size for both axes, or
    /// `(height, width)`), moved by `pool_size`, as Keras's `MaxPooling2D(pool_size)` or
    /// `AveragePooling2D(pool_size)`.
    pub fn new(pool_size: impl Into<Dims<2>>) -> Self {
        Self::make(pool_size.into().0)
    }
}

impl<const N: usize, P: PoolKind> Pooling<N, P> {
    fn make(pool_size: [usize; N]) -> Self {
        Pooling {
            name: LayerName::new(base_name::<P>(false, N)),
            input: InputDecl::default(),
            pool_size,
            strides: None,
            padding: Padding::Valid,
            trainable: true,
            built: false,
            kind: PhantomData,
        }
    }

    /// Keras's `strides`: one for every axis or one per axis. Default: the pool size.
    #[must_use]
    pub fn with_strides(mut self, strides: impl Into<Dims<N>>) -> Self {
        self.strides = Some(strides.into().0);
        self
    }

    /// Keras's `padding`: [`Padding::Valid`] (the default) or [`Padding::Same`].
    #[must_use]
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    common_builders!(@names "`max_pooling1d`, `average_pooling2d`, ... after the class, then \
                             numbered: `max_pooling1d_1`, ...");

    /// The window's size per spatial axis (Keras's `pool_size`).
    pub fn pool_size(&self) -> [usize; N] {
        self.pool_size
    }

    /// The steps between windows (Keras's `strides`; the pool size unless set).
    pub fn strides(&self) -> [usize; N] {
        self.strides.unwrap_or(self.pool_size)
    }

    /// The padding.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }

    fn check_options(&self) -> Result<()> {
        let name = self.name.get();
        check_positive(name, "pool_size", &self.pool_size)?;
        check_positive(name, "strides", &self.strides())?;
        if self.padding == Padding::Causal {
            return Err(self.invalid(
                "Argument `padding` must be either 'valid' or 'same'. Received: padding=causal"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The spatial output lengths and padding for `dims`, or Keras 3's error when a "valid"
    /// window does not fit.
    fn spatial(
        &self,
        dims: &[Option<usize>],
        input: &Shape,
    ) -> Result<Vec<Option<(usize, usize)>>> {
        let strides = self.strides();
        let mut out = Vec::with_capacity(N);
        for (a, &len) in dims.iter().enumerate().take(N) {
            let Some(len) = len else {
                out.push(None);
                continue;
            };
            match axis_output(len, self.pool_size[a], strides[a], self.padding) {
                Some(o) => out.push(Some(o)),
                None => {
                    // Keras prints the input shape as a NumPy object array: [None 3 2].
                    let shape: Vec<String> = input
                        .dims()
                        .iter()
                        .map(|d| d.map_or("None".to_string(), |d| d.to_string()))
                        .collect();
                    return Err(self.invalid(format!(
                        "Computed output size would be zero or negative. Received: \
                         `inputs.shape=[{}]`, `pool_size={}`, `strides={}`, `padding=valid`.",
                        shape.join(" "),
                        np_array(&self.pool_size),
                        py_tuple(&strides)
                    )));
                }
            }
        }
        Ok(out)
    }

    fn check_rank(&self, input: &Shape) -> Result<()> {
        crate::layer::check_rank(self.name.get(), N + 2, input)
    }
}

impl<const N: usize, P: PoolKind> Layer for Pooling<N, P> {
    layer_plumbing!();

    fn class_name(&self) -> &'static str {
        class_name::<P>(false, N)
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.check_options()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let input = single_shape(self.name.get(), inputs)?;
        self.check_options()?;
        self.check_rank(input)?;
        let spatial = self.spatial(&input.dims()[1..=N], input)?;
        let mut dims = vec![input.dim(0)];
        dims.extend(spatial.iter().map(|o| o.map(|(len, _)| len)));
        dims.push(input.last());
        Ok(vec![Shape::new(dims)])
    }

    weightless!();

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        self.check_options()?;
        let shape = input.shape();
        let found = Shape::known(shape);
        self.check_rank(&found)?;
        check_not_empty(name, shape)?;
        let spatial = self.spatial(&known_dims(&shape[1..=N]), &found)?;
        let (out_len, pad) = known_windows::<N>(&spatial);
        let (batch, channels) = (shape[0], shape[N + 1]);
        let out_shape = [&[batch][..], &out_len, &[channels]].concat();
        limits::check_dims(name, "output", &out_shape)?;
        let geometry = PoolShape {
            input: plane(
                <[usize; N]>::try_from(&shape[1..=N]).expect("N spatial axes"),
                1,
            ),
            channels,
            output: plane(out_len, 1),
            pool: plane(self.pool_size, 1),
            strides: plane(self.strides(), 1),
            pad: plane(pad, 0),
        };
        let reduce = if P::MAX { Reduce::Max } else { Reduce::Average };
        let x = input.as_standard_layout();
        let mut y = vec![0.0_f32; limits::elements(&out_shape).expect("checked above")];
        pool(
            x.as_slice().expect("standard layout"),
            batch,
            &geometry,
            reduce,
            &mut y,
        );
        if ctx.records() {
            ctx.save_for_backward(Box::new(PoolingSaved {
                x: P::MAX.then(|| x.into_owned()),
                input_shape: shape.to_vec(),
                geometry,
                out_shape: out_shape.clone(),
            }));
        }
        Ok(vec![ArrayD::from_shape_vec(IxDyn(&out_shape), y)
            .expect("the output's values fill its shape")])
    }

    /// The windows of the call again, each sending its gradient back to the cells it read
    /// (`linalg::pool::pool_backward`).
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &PoolingSaved = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, &saved.out_shape)?;
        let mut dx = ArrayD::<f32>::zeros(IxDyn(&saved.input_shape));
        let (x, reduce) = match &saved.x {
            Some(x) => (x.as_slice().expect("standard layout"), Reduce::Max),
            None => (&[][..], Reduce::Average),
        };
        pool_backward(
            x,
            saved.input_shape[0],
            &saved.geometry,
            reduce,
            g.as_slice().expect("standard layout"),
            dx.as_slice_mut().expect("standard layout"),
        );
        Ok(Gradients {
            inputs: vec![Some(dx)],
            weights: Vec::new(),
        })
    }
}

/// What a recording call of a pooling keeps: the input of a max (an average needs none), the
/// input's shape, the windows' geometry and the output's shape.
#[derive(Debug)]
struct PoolingSaved {
    x: Option<ArrayD<f32>>,
    input_shape: Vec<usize>,
    geometry: PoolShape,
    out_shape: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use ndarray::Array3;

    #[test]
    fn average_same_counts_only_real_cells() -> Result<()> {
        // x = [1, 2, 3, 4, 5], pool 2, stride 2, "same": 3 outputs, the last window [5, pad].
        // Average: (1 + 2) / 2, (3 + 4) / 2, 5 / 1 = [1.5, 3.5, 5]; max: [2, 4, 5].
        let x = Array3::from_shape_vec((1, 5, 1), vec![1.0_f32, 2.0, 3.0, 4.0, 5.0])
            .expect("5 values")
            .into_dyn();
        let mut avg = AveragePooling1D::new(2).with_padding(Padding::Same);
        assert_eq!(
            avg.build(&[Shape::new(vec![None, Some(5), Some(1)])])?[0].to_string(),
            "(None, 3, 1)"
        );
        let y = apply(&avg, x.view())?;
        assert_eq!(y.as_slice().unwrap(), &[1.5_f32, 3.5, 5.0]);
        let max = MaxPooling1D::new(2).with_padding(Padding::Same);
        assert_eq!(
            apply(&max, x.view())?.as_slice().unwrap(),
            &[2.0_f32, 4.0, 5.0]
        );
        // Valid drops the last step: [1.5, 3.5].
        let valid = AveragePooling1D::new(2);
        assert_eq!(
            apply(&valid, x.view())?.as_slice().unwrap(),
            &[1.5_f32, 3.5]
        );
        Ok(())
    }

    #[test]
    fn two_d_windows_and_strides() -> Result<()> {
        // A 3×3 image counting 0..9, pool 2×2, strides 1: maxima 4, 5, 7, 8.
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 3, 3, 1]), (0..9).map(|v| v as f32).collect())
            .expect("9 values");
        let pool = MaxPooling2D::new(2).with_strides(1);
        let y = apply(&pool, x.view())?;
        assert_eq!(y.shape(), &[1, 2, 2, 1]);
        assert_eq!(y.as_slice().unwrap(), &[4.0_f32, 5.0, 7.0, 8.0]);
        assert_eq!(pool.class_name(), "MaxPooling2D");
        assert_eq!(AveragePooling2D::new(2).name(), "average_pooling2d");
        Ok(())
    }

    #[test]
    fn refuses_windows_longer_than_the_input_with_keras_words() {
        let err = MaxPooling1D::new(4)
            .compute_output_shape(&[Shape::new(vec![None, Some(3), Some(2)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"max_pooling1d\": Computed output size would be zero or negative. \
             Received: `inputs.shape=[None 3 2]`, `pool_size=[4]`, `strides=(4,)`, \
             `padding=valid`."
        );
        let err = MaxPooling1D::new(2)
            .compute_output_shape(&[Shape::new(vec![None, Some(3)])])
            .unwrap_err();
        assert!(matches!(err, Error::IncompatibleRank { expected: 3, .. }));
    }
}
