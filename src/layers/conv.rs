//! Keras's `Conv1D` and `Conv2D`: one layer, [`Conv`], over one or two spatial axes, with the
//! options and the window arithmetic ([`Padding`], [`Dims`]) that the pooling layers share.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array1, ArrayD, ArrayViewD, IxDyn};

use crate::activation::ActivationFn;
use crate::error::{Error, Result};
use crate::init::{sample1, Initializer};
use crate::layer::{
    check_not_empty, check_specs, check_weights, common_builders, layer_plumbing, no_weights,
    output_grad, owned1, single_input, single_shape, CallContext, Gradients, InputDecl, Layer,
    LayerName, SavedForBackward, WeightSpec,
};
use crate::limits;
use crate::linalg::conv::{column_sums, conv, kernel_grad, pack, ConvShape, Kernel};
use crate::linalg::Packed;
use crate::shape::Shape;

/// Keras's `padding` of a convolution or a pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Padding {
    /// No padding: windows lie inside the input, and the output is shorter
    /// (`floor((len − span) / stride) + 1`, where `span = dilation · (size − 1) + 1`).
    #[default]
    Valid,
    /// TensorFlow's "SAME": `ceil(len / stride)` outputs, and as many padding cells as the last
    /// window needs, half of them (rounded down) before the input and the rest after it.
    Same,
    /// `Conv1D` only: `dilation · (kernel − 1)` zeros before the input and none after it, so
    /// that output `t` sees only inputs up to `t · stride`; `ceil(len / stride)` outputs.
    Causal,
}

impl Padding {
    /// Keras's name: `"valid"`, `"same"` or `"causal"`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Padding {
    type Err = Error;

    /// Keras's names, in any case (Keras lowers them).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            "causal" => Ok(Padding::Causal),
            _ => Err(Error::UnknownName {
                kind: "padding",
                name: s.to_string(),
                message: format!(
                    "The `padding` argument must be one of \"valid\", \"same\" (or \"causal\", \
                     only for `Conv1D`). Received: {s}"
                ),
            }),
        }
    }
}

/// One size per spatial axis, as Keras's "an integer or a tuple of N integers": a single
/// `usize` is the same size on every axis, `[usize; N]` (or `(usize, usize)`) gives each.
///
/// ```
/// use seqnn::layers::conv::Dims;
/// assert_eq!(Dims::<2>::from(3), Dims([3, 3]));
/// assert_eq!(Dims::from((3, 5)), Dims([3, 5]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dims<const N: usize>(pub [usize; N]);

impl<const N: usize> From<usize> for Dims<N> {
    fn from(v: usize) -> Self {
        Dims([v; N])
    }
}

impl<const N: usize> From<[usize; N]> for Dims<N> {
    fn from(v: [usize; N]) -> Self {
        Dims(v)
    }
}

impl From<(usize, usize)> for Dims<2> {
    fn from(v: (usize, usize)) -> Self {
        Dims([v.0, v.1])
    }
}

/// A tuple as Python prints it: `(3,)`, `(3, 3)`.
pub(crate) fn py_tuple(v: &[usize]) -> String {
    Shape::known(v).to_string()
}

/// A NumPy integer array as NumPy prints it: `[1]`, `[1 1]` (Keras's messages show some
/// options that way).
pub(crate) fn np_array(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(usize::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// Keras's `standardize_tuple` error for a size option holding a zero.
pub(crate) fn check_positive(layer: &str, option: &str, v: &[usize]) -> Result<()> {
    if v.contains(&0) {
        return Err(Error::InvalidArgument {
            layer: layer.to_string(),
            message: format!(
                "The `{option}` argument must be a tuple of {} integers. Received \
                 {option}={}, including values {{0}} that do not satisfy `value > 0`",
                v.len(),
                py_tuple(v)
            ),
        });
    }
    Ok(())
}

/// The input cells one window covers, `dilation · (size − 1) + 1`, or [`Error::TooLarge`].
pub(crate) fn span(layer: &str, size: usize, dilation: usize) -> Result<usize> {
    dilation
        .checked_mul(size.saturating_sub(1))
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| Error::TooLarge {
            layer: layer.to_string(),
            message: format!(
                "a window of {size} taps {dilation} apart spans more than 2^64 input steps"
            ),
        })
}

/// One spatial axis of a window of `span` cells moved by `stride` over `len` cells: the
/// output length and the padding cells before the input, or `None` when "valid" windows do
/// not fit (Keras: the output size would be zero or negative).
///
/// Keras 3 `compute_conv_output_shape` and `compute_pooling_output_shape`
/// (`keras/src/ops/operation_utils.py`) give the lengths; TensorFlow's SAME padding puts
/// `total / 2` cells before (`tensorflow/core/framework/kernel_shape_util.cc`,
/// `GetWindowedOutputSizeVerbose`); Conv1D's causal padding is `dilation · (kernel − 1)` before
/// (`Conv1D._compute_causal_padding`).
pub(crate) fn axis_output(
    len: usize,
    span: usize,
    stride: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    match padding {
        Padding::Valid => (len >= span).then(|| ((len - span) / stride + 1, 0)),
        Padding::Same if len == 0 => Some((0, 0)),
        Padding::Same => {
            let out = len.div_ceil(stride);
            let needed = ((out - 1) * stride).saturating_add(span);
            Some((out, needed.saturating_sub(len) / 2))
        }
        Padding::Causal => Some((len.div_ceil(stride), span - 1)),
    }
}

/// Dimensions that are all known, as a shape's.
pub(crate) fn known_dims(dims: &[usize]) -> Vec<Option<usize>> {
    dims.iter().map(|&d| Some(d)).collect()
}

/// The output lengths and the padding before of `N` spatial axes whose lengths were known.
pub(crate) fn known_windows<const N: usize>(
    spatial: &[Option<(usize, usize)>],
) -> ([usize; N], [usize; N]) {
    let (mut out_len, mut pad) = ([0; N], [0; N]);
    for (a, o) in spatial.iter().enumerate().take(N) {
        (out_len[a], pad[a]) = o.expect("known lengths give known outputs");
    }
    (out_len, pad)
}

/// `v` of one or two axes as two axes, a 1-D `v` as height `fill` and width `v[0]`.
pub(crate) fn plane<const N: usize>(v: [usize; N], fill: usize) -> [usize; 2] {
    match v.as_slice() {
        [w] => [fill, *w],
        [h, w] => [*h, *w],
        _ => unreachable!("only 1-D and 2-D layers exist"),
    }
}

/// Keras's `Conv1D` (`N = 1`, [`Conv1D`]) and `Conv2D` (`N = 2`, [`Conv2D`]): a convolution
/// (a cross-correlation, as in Keras) over the spatial axes of channels-last inputs.
///
/// ```text
/// y[b, o, f] = activation(bias[f] + Σ_k Σ_c x[b, o·stride + k·dilation − pad, g·cg + c]
///                                                 · kernel[k, c, f])
/// ```
///
/// where `o` and `k` run over every spatial axis, `g = f / (filters / groups)` is the filter's
/// group, `cg = channels / groups`, and cells outside the input are zeros ([`Padding`]).
///
/// - Input: `(batch, steps, channels)` (1-D) or `(batch, height, width, channels)` (2-D),
///   channels last; Keras's `channels_first` is refused when loading.
/// - Output: the spatial axes as [`Padding`] says, and `filters` channels.
/// - Weights, in Keras's order and layout: `kernel (*kernel_size, channels / groups,
///   filters)`, `bias (filters,)` (absent without bias).
/// - Mask: dropped, as in Keras (neither tf_keras 2.21 nor Keras 3.15 lets a mask through a
///   convolution: `supports_masking` is false).
///
/// Options, with Keras's defaults: `strides` 1, `padding` valid, `dilation_rate` 1, `groups`
/// 1, `activation` linear, `use_bias` true, `kernel_initializer` glorot_uniform,
/// `bias_initializer` zeros.
///
/// The product runs as one matrix product over patches per group (`linalg::conv`); so does
/// the backward pass, whose kernel gradient is `patchesᵀ · d_out` over every output position
/// of the batch and whose input gradient is `d_out · kernelᵀ` folded back onto the input
/// (col2im). Its derivatives at an activation's kinks are TensorFlow's
/// ([`ActivationFn::backward_slice`]).
///
/// # Errors
/// Adding or building it fails with Keras's messages ([`Error::InvalidArgument`]) for zero
/// filters, a zero kernel size, stride or dilation, zero groups or filters not divisible by
/// them, strides and dilation both above 1, causal padding in 2-D, input channels that are
/// unknown or not divisible by `groups`, and "valid" windows longer than the input; with
/// [`Error::IncompatibleRank`] for an input of another rank, [`Error::IncompatibleShape`] when
/// a built layer is given other channels, and [`Error::TooLarge`] when the kernel or the output
/// would exceed [`limits`].
#[derive(Debug, Clone)]
pub struct Conv<const N: usize> {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    filters: usize,
    kernel_size: [usize; N],
    strides: [usize; N],
    padding: Padding,
    dilation_rate: [usize; N],
    groups: usize,
    activation: ActivationFn,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    trainable: bool,
    /// The input channels the layer was built for; `None` before it is built.
    channels: Option<usize>,
    /// The kernel (Keras's shape), the bias (empty without bias) and the kernel packed for
    /// the product (see `linalg::conv::pack`), once the layer has weights.
    values: Option<Box<Values>>,
}

/// What a recording call of a convolution keeps: its input in standard layout, the geometry
/// it ran with, the values before and after the activation (unless it is linear), and the
/// output's shape.
#[derive(Debug)]
struct ConvSaved {
    x: ArrayD<f32>,
    geometry: ConvShape,
    activated: Option<(Vec<f32>, Vec<f32>)>,
    out_shape: Vec<usize>,
}

/// A convolution's weights: the kernel in Keras's shape, the bias (empty without bias), and the
/// kernel's groups packed for the product (empty when they are narrow).
type Values = (ArrayD<f32>, Array1<f32>, Vec<Packed>);

/// Keras's `Conv1D`: a convolution over the steps of `(batch, steps, channels)`, as
/// `Conv1D(filters, kernel_size)`. See [`Conv`].
///
/// ```
/// use seqnn::{Conv1D, GlobalMaxPooling1D, Padding, Sequential};
/// // model.add(Conv1D(8, 3, padding="causal", dilation_rate=2, input_shape=(20, 4)))
/// // model.add(GlobalMaxPooling1D())
/// let mut model = Sequential::new();
/// model.add(
///     Conv1D::new(8, 3)
///         .with_padding(Padding::Causal)
///         .with_dilation_rate(2)
///         .input_shape((20, 4)),
/// )?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 20, 8)");
/// assert_eq!(model.count_params()?, 3 * 4 * 8 + 8); // kernel (3, 4, 8), bias (8,)
/// model.add(GlobalMaxPooling1D::new())?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 8)");
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type Conv1D = Conv<1>;

/// Keras's `Conv2D`: a convolution over the height and width of `(batch, height, width,
/// channels)`, as `Conv2D(filters, kernel_size)`. See [`Conv`].
///
/// ```
/// use seqnn::{Conv2D, Padding, Sequential};
/// // model.add(Conv2D(6, (3, 3), strides=2, padding="same", input_shape=(9, 8, 3)))
/// let mut model = Sequential::new();
/// model.add(
///     Conv2D::new(6, (3, 3))
///         .with_strides(2)
///         .with_padding(Padding::Same)
///         .input_shape([9, 8, 3]),
/// )?;
/// assert_eq!(model.output_shape().unwrap().to_string(), "(None, 5, 4, 6)");
/// assert_eq!(model.count_params()?, 3 * 3 * 3 * 6 + 6);
/// # Ok::<(), seqnn::Error>(())
/// ```
pub type Conv2D = Conv<2>;

impl Conv<1> {
    /// A 1-D convolution with `filters` outputs and a window of `kernel_size` steps, with
    /// Keras's defaults, as Keras's `Conv1D(filters, kernel_size)`. Invalid sizes are refused
    /// when the layer is added to a model or built.
    pub fn new(filters: usize, kernel_size: usize) -> Self {
        Self::make("conv1d", filters, [kernel_size])
    }
}

impl Conv<2> {
    /// A 2-D convolution with `filters` outputs and a window of `kernel_size` (one size for
    /// both axes, or `(height, width)`), with Keras's defaults, as Keras's
    /// `Conv2D(filters, kernel_size)`.
    pub fn new(filters: usize, kernel_size: impl Into<Dims<2>>) -> Self {
        Self::make("conv2d", filters, kernel_size.into().0)
    }
}

impl<const N: usize> Conv<N> {
    fn make(base: &'static str, filters: usize, kernel_size: [usize; N]) -> Self {
        Conv {
            name: LayerName::new(base),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            filters,
            kernel_size,
            strides: [1; N],
            padding: Padding::Valid,
            dilation_rate: [1; N],
            groups: 1,
            activation: ActivationFn::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            trainable: true,
            channels: None,
            values: None,
        }
    }

    /// Keras's `strides`: one for every axis, or one per axis. Default 1.
    #[must_use]
    pub fn with_strides(mut self, strides: impl Into<Dims<N>>) -> Self {
        self.strides = strides.into().0;
        self
    }

    /// Keras's `padding`. Default [`Padding::Valid`]; [`Padding::Causal`] only in 1-D.
    #[must_use]
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Keras's `dilation_rate`: the steps between kernel taps, for every axis or per axis.
    /// Default 1.
    #[must_use]
    pub fn with_dilation_rate(mut self, dilation: impl Into<Dims<N>>) -> Self {
        self.dilation_rate = dilation.into().0;
        self
    }

    /// Keras's `groups`: the input channels and the filters split into this many groups, each
    /// convolved on its own. Default 1.
    #[must_use]
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Keras's `activation`. Default `linear`.
    #[must_use]
    pub fn with_activation(mut self, activation: ActivationFn) -> Self {
        self.activation = activation;
        self
    }

    /// Keras's `use_bias`. Default true.
    #[must_use]
    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.use_bias = yes;
        self
    }

    /// Keras's `kernel_initializer`. Default `glorot_uniform`.
    #[must_use]
    pub fn with_kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Keras's `bias_initializer`. Default `zeros`.
    #[must_use]
    pub fn with_bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    common_builders!(@names "`conv1d` or `conv2d`, then numbered: `conv1d_1`, ...");

    crate::layer::rule_builders! {
        "kernel", "the kernel" => with_kernel_regularizer, with_kernel_constraint;
        "bias", "the bias" => with_bias_regularizer, with_bias_constraint;
    }

    /// The number of output channels (Keras's `filters`).
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// The window's size per spatial axis (Keras's `kernel_size`).
    pub fn kernel_size(&self) -> [usize; N] {
        self.kernel_size
    }

    /// The steps between output positions (Keras's `strides`).
    pub fn strides(&self) -> [usize; N] {
        self.strides
    }

    /// The padding.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// The steps between kernel taps (Keras's `dilation_rate`).
    pub fn dilation_rate(&self) -> [usize; N] {
        self.dilation_rate
    }

    /// The number of channel groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The activation applied to the outputs.
    pub fn activation(&self) -> ActivationFn {
        self.activation
    }

    /// Whether the layer adds a bias.
    pub fn use_bias(&self) -> bool {
        self.use_bias
    }

    /// The kernel's initializer.
    pub fn kernel_initializer(&self) -> Initializer {
        self.kernel_initializer
    }

    /// The bias's initializer.
    pub fn bias_initializer(&self) -> Initializer {
        self.bias_initializer
    }

    /// The input channels the layer was built for, `None` before it is built.
    pub fn built_channels(&self) -> Option<usize> {
        self.channels
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }

    /// The options alone, checked in the order Keras 3's `BaseConv.__init__` checks them.
    fn check_options(&self) -> Result<()> {
        let name = self.name.get();
        check_positive(name, "kernel_size", &self.kernel_size)?;
        check_positive(name, "strides", &self.strides)?;
        check_positive(name, "dilation_rate", &self.dilation_rate)?;
        if N > 1 && self.padding == Padding::Causal {
            // tf_keras's words: Keras 3's list the allowed names as a Python set, in an order
            // that changes from one run to the next.
            return Err(self.invalid(
                "Causal padding is only supported for `Conv1D`and `SeparableConv1D`.".into(),
            ));
        }
        if self.filters == 0 {
            return Err(self.invalid(
                "Invalid value for argument `filters`. Expected a strictly positive value. \
                 Received filters=0."
                    .into(),
            ));
        }
        if self.groups == 0 {
            return Err(self.invalid(
                "The number of groups must be a positive integer. Received: groups=0.".into(),
            ));
        }
        if !self.filters.is_multiple_of(self.groups) {
            return Err(self.invalid(format!(
                "The number of filters must be evenly divisible by the number of groups. \
                 Received: groups={}, filters={}.",
                self.groups, self.filters
            )));
        }
        let max = |v: &[usize; N]| v.iter().copied().max().unwrap_or(1);
        if max(&self.strides) > 1 && max(&self.dilation_rate) > 1 {
            return Err(self.invalid(format!(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. \
                 Received: strides={} and dilation_rate={}",
                py_tuple(&self.strides),
                py_tuple(&self.dilation_rate)
            )));
        }
        for (&k, &d) in self.kernel_size.iter().zip(&self.dilation_rate) {
            span(name, k, d)?;
        }
        Ok(())
    }

    /// Keras's kernel as the product's `(kh · kw · cg, filters)` matrix.
    fn matrix(kernel: &ArrayD<f32>, patch: usize, filters: usize) -> ndarray::ArrayView2<'_, f32> {
        kernel
            .view()
            .into_shape_with_order((patch, filters))
            .expect("Keras's kernel is (kernel positions · channels per group, filters)")
    }

    /// The weights with the kernel packed for the product.
    fn with_packed(&self, kernel: ArrayD<f32>, bias: Array1<f32>) -> Values {
        let patch = kernel.len() / self.filters.max(1);
        let packed = pack(Self::matrix(&kernel, patch, self.filters), self.groups);
        (kernel, bias, packed)
    }

    /// The kernel's shape for `channels` input channels.
    fn kernel_shape(&self, channels: usize) -> Vec<usize> {
        let mut shape = self.kernel_size.to_vec();
        shape.extend([channels / self.groups.max(1), self.filters]);
        shape
    }

    /// The spatial output lengths (and the padding before) for the spatial `dims`, `None`
    /// where a length is unknown, or Keras's error when a window does not fit.
    fn spatial(
        &self,
        dims: &[Option<usize>],
        input: &dyn fmt::Display,
        channels: usize,
    ) -> Result<Vec<Option<(usize, usize)>>> {
        let mut out = Vec::with_capacity(N);
        for (a, &len) in dims.iter().enumerate().take(N) {
            let span = span(self.name.get(), self.kernel_size[a], self.dilation_rate[a])?;
            let Some(len) = len else {
                out.push(None);
                continue;
            };
            match axis_output(len, span, self.strides[a], self.padding) {
                Some(o) => out.push(Some(o)),
                None => {
                    let mut kernel = self.kernel_size.to_vec();
                    kernel.extend([channels, self.filters]);
                    return Err(self.invalid(format!(
                        "Computed output size would be zero or negative. Received `inputs \
                         shape={input}`, `kernel shape={}`, `dilation_rate={}`, \
                         `strides={}`, `padding={}`.",
                        py_tuple(&kernel),
                        np_array(&self.dilation_rate),
                        py_tuple(&self.strides),
                        self.padding
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The input's channels after Keras's checks of the input shape.
    fn check_input_shape(&self, input: &Shape) -> Result<usize> {
        let name = self.name.get();
        if input.rank() != N + 2 {
            return Err(Error::IncompatibleRank {
                layer: name.to_string(),
                expected: N + 2,
                found: input.rank(),
                shape: input.clone(),
            });
        }
        let Some(channels) = input.last() else {
            // tf_keras's words (Keras 3 fails with a TypeError).
            return Err(self.invalid(format!(
                "The channel dimension of the inputs should be defined. The input_shape \
                 received is {input}, where axis -1 (0-based) is the channel dimension, which \
                 found to be `None`."
            )));
        };
        if let Some(built) = self.channels.filter(|&c| c != channels) {
            let mut accepted = vec![None; N + 1];
            accepted.push(Some(built));
            return Err(Error::IncompatibleShape {
                layer: name.to_string(),
                expected: Shape::new(accepted),
                found: input.clone(),
            });
        }
        if !channels.is_multiple_of(self.groups) {
            return Err(self.invalid(format!(
                "The number of input channels must be evenly divisible by the number of groups. \
                 Received groups={}, but the input has {channels} channels (full input shape is \
                 {input}).",
                self.groups
            )));
        }
        Ok(channels)
    }
}

impl<const N: usize> Layer for Conv<N> {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        if N == 1 {
            "Conv1D"
        } else {
            "Conv2D"
        }
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.check_options()?;
        self.input.resolve(self.name.get())
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        self.check_options()?;
        let channels = self.check_input_shape(input)?;
        let spatial = self.spatial(&input.dims()[1..=N], input, channels)?;
        check_specs(
            name,
            &[
                ("kernel", &self.kernel_shape(channels)),
                ("bias", &[self.filters]),
            ],
        )?;
        let mut dims = vec![input.dim(0)];
        dims.extend(spatial.iter().map(|o| o.map(|(len, _)| len)));
        dims.push(Some(self.filters));
        let out = Shape::new(dims);
        limits::check_tensor(name, "output", &out)?;
        Ok(vec![out])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        if self.channels.is_none() {
            self.channels = inputs[0].last();
        }
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.channels.is_some()
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        let Some(c) = self.channels else {
            return Vec::new();
        };
        let mut w = vec![WeightSpec::new("kernel", self.kernel_shape(c))];
        if self.use_bias {
            w.push(WeightSpec::new("bias", vec![self.filters]));
        }
        w
    }

    fn initialize(&mut self) {
        let Some(c) = self.channels else {
            return;
        };
        let kernel = self.kernel_initializer.sample(&self.kernel_shape(c));
        let bias = if self.use_bias {
            sample1(self.bias_initializer, self.filters)
        } else {
            Array1::zeros(0)
        };
        self.values = Some(Box::new(self.with_packed(kernel, bias)));
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        let Some((kernel, bias, _)) = self.values.as_deref() else {
            return Vec::new();
        };
        let mut w = vec![kernel.view()];
        if self.use_bias {
            w.push(bias.view().into_dyn());
        }
        w
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.is_built() {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        let kernel = weights[0].as_standard_layout().into_owned();
        let bias = if self.use_bias {
            owned1(&weights[1])
        } else {
            Array1::zeros(0)
        };
        self.values = Some(Box::new(self.with_packed(kernel, bias)));
        Ok(())
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let (Some(channels), Some((kernel, bias, packed))) =
            (self.channels, self.values.as_deref())
        else {
            return Err(no_weights(name));
        };
        let shape = input.shape();
        let found = Shape::known(shape);
        let c = self.check_input_shape(&found)?;
        debug_assert_eq!(c, channels);
        check_not_empty(name, shape)?;
        let spatial = self.spatial(&known_dims(&shape[1..=N]), &found, channels)?;
        let (out_len, pad) = known_windows::<N>(&spatial);
        let batch = shape[0];
        let out_shape = [&[batch][..], &out_len, &[self.filters]].concat();
        limits::check_dims(name, "output", &out_shape)?;
        let geometry = ConvShape {
            input: plane(
                <[usize; N]>::try_from(&shape[1..=N]).expect("N spatial axes"),
                1,
            ),
            channels,
            output: plane(out_len, 1),
            kernel: plane(self.kernel_size, 1),
            strides: plane(self.strides, 1),
            dilation: plane(self.dilation_rate, 1),
            pad: plane(pad, 0),
            groups: self.groups,
            filters: self.filters,
        };
        let scratch = geometry.scratch_elements(batch);
        limits::check_dims(name, "patch matrix", &[scratch])?;
        let x = input.as_standard_layout();
        let patch = geometry.patch_len();
        let kernel = Kernel {
            matrix: Self::matrix(kernel, patch, self.filters),
            packed,
            groups: self.groups,
        };
        let mut y = vec![0.0_f32; limits::elements(&out_shape).expect("checked above")];
        conv(
            x.as_slice().expect("standard layout"),
            batch,
            &geometry,
            kernel,
            &mut y,
        );
        if self.use_bias {
            let b = bias.as_slice().expect("an owned bias is contiguous");
            for row in y.chunks_exact_mut(self.filters) {
                row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
            }
        }
        let linear = self.activation == ActivationFn::Linear;
        let pre = (ctx.records() && !linear).then(|| y.clone());
        self.activation.apply_slice(&mut y, self.filters);
        if ctx.records() {
            ctx.save_for_backward(Box::new(ConvSaved {
                x: x.into_owned(),
                geometry,
                activated: pre.map(|pre| (pre, y.clone())),
                out_shape: out_shape.clone(),
            }));
        }
        Ok(vec![ArrayD::from_shape_vec(IxDyn(&out_shape), y)
            .expect("the output's values fill its shape")])
    }

    /// The gradient of the pre-activation, `d_out ⊙ f'`, gives the bias's (its sum over every
    /// position) and meets the saved input in `linalg::conv::kernel_grad`: the kernel's and the
    /// input's.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &ConvSaved = saved.get(name)?;
        let Some((kernel, _, _)) = self.values.as_deref() else {
            return Err(no_weights(name));
        };
        let mut g = output_grad(name, output_grads, 0, &saved.out_shape)?;
        let g = g.as_slice_mut().expect("standard layout");
        if let Some((pre, post)) = &saved.activated {
            self.activation.backward_slice(pre, post, g, self.filters);
        }
        let mut dx = ArrayD::<f32>::zeros(saved.x.raw_dim());
        let dk = kernel_grad(
            saved.x.as_slice().expect("standard layout"),
            saved.out_shape[0],
            &saved.geometry,
            kernel,
            g,
            Some(dx.as_slice_mut().expect("standard layout")),
        );
        let mut weights = vec![dk];
        if self.use_bias {
            weights.push(column_sums(g, self.filters).into_dyn());
        }
        Ok(Gradients {
            inputs: vec![Some(dx)],
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::apply;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array3};

    fn built<L: Layer>(mut layer: L, input: Shape, weights: &[ArrayD<f32>]) -> Result<L> {
        layer.build(&[input])?;
        layer.set_weights(weights)?;
        Ok(layer)
    }

    #[test]
    fn conv1d_valid_same_and_causal_by_hand() -> Result<()> {
        // x = [1, 2, 3, 4] (one channel), kernel [1, 10] (taps t, t+1), bias 0.5.
        let x = Array3::from_shape_vec((1, 4, 1), vec![1.0_f32, 2.0, 3.0, 4.0])
            .expect("4 values")
            .into_dyn();
        let weights = [
            array![[[1.0_f32]], [[10.0]]].into_dyn(),
            array![0.5_f32].into_dyn(),
        ];
        let input = Shape::new(vec![None, Some(4), Some(1)]);
        // valid: 1 + 20, 2 + 30, 3 + 40, plus 0.5: [21.5, 32.5, 43.5]
        let valid = built(Conv1D::new(1, 2), input.clone(), &weights)?;
        let y = apply(&valid, x.view())?;
        assert_eq!(y.shape(), &[1, 3, 1]);
        assert_abs_diff_eq!(y.as_slice().unwrap(), &[21.5_f32, 32.5, 43.5][..]);
        // same: pad total 1, none before: [21, 32, 43, 4 + 0] + 0.5
        let same = built(
            Conv1D::new(1, 2).with_padding(Padding::Same),
            input.clone(),
            &weights,
        )?;
        let y = apply(&same, x.view())?;
        assert_abs_diff_eq!(y.as_slice().unwrap(), &[21.5_f32, 32.5, 43.5, 4.5][..]);
        // causal: one zero before: [0 + 10, 1 + 20, 2 + 30, 3 + 40] + 0.5
        let causal = built(
            Conv1D::new(1, 2).with_padding(Padding::Causal),
            input,
            &weights,
        )?;
        let y = apply(&causal, x.view())?;
        assert_abs_diff_eq!(y.as_slice().unwrap(), &[10.5_f32, 21.5, 32.5, 43.5][..]);
        Ok(())
    }

    #[test]
    fn conv1d_backward_by_hand() -> Result<()> {
        // x = [1, 2, 3, 4], kernel [1, 10], valid: y_t = x_t + 10·x_{t+1} + b. With
        // d_out = [1, 1, 1]: d_kernel = [1 + 2 + 3, 2 + 3 + 4] = [6, 9], d_bias = 3,
        // d_x = [1, 10 + 1, 10 + 1, 10] = [1, 11, 11, 10].
        let x = Array3::from_shape_vec((1, 4, 1), vec![1.0_f32, 2.0, 3.0, 4.0])
            .expect("4 values")
            .into_dyn();
        let conv = built(
            Conv1D::new(1, 2),
            Shape::new(vec![None, Some(4), Some(1)]),
            &[
                array![[[1.0_f32]], [[10.0]]].into_dyn(),
                array![0.5_f32].into_dyn(),
            ],
        )?;
        let mut ctx = CallContext::training();
        conv.call(&[x.view()], &mut ctx)?;
        let saved = ctx.take_saved().expect("a training call keeps its input");
        let d = Array3::from_elem((1, 3, 1), 1.0_f32).into_dyn();
        let g = conv.backward(&saved, &[Some(d.view())])?;
        let dx = g.inputs[0].as_ref().expect("the input's gradient");
        assert_abs_diff_eq!(dx.as_slice().unwrap(), &[1.0_f32, 11.0, 11.0, 10.0][..]);
        assert_abs_diff_eq!(g.weights[0].as_slice().unwrap(), &[6.0_f32, 9.0][..]);
        assert_abs_diff_eq!(g.weights[1].as_slice().unwrap(), &[3.0_f32][..]);
        // A gradient of another shape is refused, with both shapes.
        let bad = Array3::from_elem((1, 4, 1), 1.0_f32).into_dyn();
        let err = conv.backward(&saved, &[Some(bad.view())]).unwrap_err();
        assert!(err.to_string().contains("(1, 4, 1)"), "{err}");
        Ok(())
    }

    #[test]
    fn conv2d_groups_and_strides_by_hand() -> Result<()> {
        // A 2×2 image with 2 channels, a 1×1 kernel in 2 groups without bias: each filter is
        // its own channel times its weight, 2 and −1; strides 2 keep pixel (0, 0) only.
        let x = ArrayD::from_shape_vec(
            IxDyn(&[1, 2, 2, 2]),
            vec![1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        )
        .expect("8 values");
        let conv = built(
            Conv2D::new(2, 1)
                .with_groups(2)
                .with_strides(2)
                .with_use_bias(false),
            Shape::new(vec![None, Some(2), Some(2), Some(2)]),
            &[array![[[[2.0_f32], [-1.0]]]]
                .into_shape_with_order(IxDyn(&[1, 1, 1, 2]))
                .expect("kernel")],
        )?;
        assert_eq!(conv.count_params(), 2);
        let y = apply(&conv, x.view())?;
        // (1·2, 2·−1)
        assert_eq!(y.shape(), &[1, 1, 1, 2]);
        assert_abs_diff_eq!(y.as_slice().unwrap(), &[2.0_f32, -2.0][..]);
        Ok(())
    }

    #[test]
    fn shapes_weights_and_params_follow_keras() -> Result<()> {
        let mut conv = Conv2D::new(4, (3, 2)).with_groups(2);
        let out = conv.build(&[Shape::new(vec![None, Some(5), None, Some(6)])])?;
        assert_eq!(out[0].to_string(), "(None, 3, None, 4)");
        let specs: Vec<Vec<usize>> = conv.weight_specs().into_iter().map(|w| w.shape).collect();
        assert_eq!(specs, vec![vec![3, 2, 3, 4], vec![4]]);
        assert_eq!(conv.count_params(), 3 * 2 * 3 * 4 + 4);
        // "same" with strides 2 on 7 steps: ceil(7 / 2) = 4.
        let same = Conv1D::new(2, 3)
            .with_strides(2)
            .with_padding(Padding::Same);
        let out = same.compute_output_shape(&[Shape::new(vec![None, Some(7), Some(1)])])?;
        assert_eq!(out[0].to_string(), "(None, 4, 2)");
        Ok(())
    }

    #[test]
    fn refuses_what_keras_refuses_with_its_words() {
        let input = [Shape::new(vec![None, Some(3), Some(2)])];
        let msg = |c: Conv1D| c.compute_output_shape(&input).unwrap_err().to_string();
        assert_eq!(
            msg(Conv1D::new(2, 5)),
            "layer \"conv1d\": Computed output size would be zero or negative. Received \
             `inputs shape=(None, 3, 2)`, `kernel shape=(5, 2, 2)`, `dilation_rate=[1]`, \
             `strides=(1,)`, `padding=valid`."
        );
        assert_eq!(
            msg(Conv1D::new(2, 3).with_strides(0)),
            "layer \"conv1d\": The `strides` argument must be a tuple of 1 integers. Received \
             strides=(0,), including values {0} that do not satisfy `value > 0`"
        );
        assert_eq!(
            msg(Conv1D::new(2, 3).with_strides(2).with_dilation_rate(2)),
            "layer \"conv1d\": `strides > 1` not supported in conjunction with \
             `dilation_rate > 1`. Received: strides=(2,) and dilation_rate=(2,)"
        );
        assert!(msg(Conv1D::new(4, 1).with_groups(4))
            .contains("Received groups=4, but the input has 2 channels"));
        assert!(matches!(
            Conv1D::new(1 << 40, 3).compute_output_shape(&input),
            Err(Error::TooLarge { .. })
        ));
    }
}
