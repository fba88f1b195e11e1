//! The element types a model takes as input: `f32`, and the integer ids an `Embedding` reads.

use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

use crate::error::{Error, Result};

/// The largest integer magnitude `f32` holds exactly: 2^24.
const EXACT_F32: i64 = 1 << 24;

/// An element type [`Sequential::predict`](crate::Sequential::predict) takes: `f32` as it is,
/// and `i32`, `i64` and `u32` (integer ids for a model that starts with an `Embedding`),
/// converted exactly to the `f32` the model computes in. An integer beyond ±2^24, which `f32`
/// cannot hold exactly, is refused rather than rounded to a neighbouring id.
///
/// ```
/// use ndarray::array;
/// use seqnn::{Embedding, Sequential, LSTM};
/// let mut model = Sequential::new();
/// model.add(Embedding::new(100, 4).input_shape((3,)))?;
/// model.add(LSTM::new(2))?;
/// let ids = array![[3_i64, 14, 0], [99, 1, 2]];
/// assert_eq!(model.predict(&ids)?.shape(), &[2, 2]);
/// assert!(model.predict(&array![[1_i64 << 30, 0, 0]]).is_err());
/// # Ok::<(), seqnn::Error>(())
/// ```
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The Rust name of the type, for messages.
    const NAME: &'static str;

    /// The value as `f32`, exactly, or `None` when `f32` cannot hold it.
    fn to_f32(self) -> Option<f32>;

    /// A view of such values as one input of a model with several inputs.
    fn wrap(view: ArrayViewD<'_, Self>) -> InputArray<'_>
    where
        Self: Sized;

    /// A batch as `f32`: borrowed for `f32`, converted for the others.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first value `f32` cannot hold and where it is.
    fn batch_as_f32(batch: ArrayViewD<'_, Self>) -> Result<CowArray<'_, f32, IxDyn>>
    where
        Self: Sized,
    {
        let mut out = Vec::with_capacity(batch.len());
        for (i, v) in batch.iter().enumerate() {
            match v.to_f32() {
                Some(f) => out.push(f),
                None => return Err(not_exact(i, batch.shape())),
            }
        }
        let owned = ArrayD::from_shape_vec(batch.raw_dim(), out)
            .expect("one value per element of the batch");
        Ok(CowArray::from(owned))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for u32 {}
}

impl Element for f32 {
    const NAME: &'static str = "f32";

    fn wrap(view: ArrayViewD<'_, f32>) -> InputArray<'_> {
        InputArray::F32(view)
    }

    fn to_f32(self) -> Option<f32> {
        Some(self)
    }

    fn batch_as_f32(batch: ArrayViewD<'_, f32>) -> Result<CowArray<'_, f32, IxDyn>> {
        Ok(CowArray::from(batch))
    }
}

impl Element for i32 {
    const NAME: &'static str = "i32";

    fn wrap(view: ArrayViewD<'_, i32>) -> InputArray<'_> {
        InputArray::I32(view)
    }

    fn to_f32(self) -> Option<f32> {
        i64::from(self).to_f32()
    }
}

impl Element for i64 {
    const NAME: &'static str = "i64";

    fn wrap(view: ArrayViewD<'_, i64>) -> InputArray<'_> {
        InputArray::I64(view)
    }

    fn to_f32(self) -> Option<f32> {
        (self.abs() <= EXACT_F32).then_some(self as f32)
    }
}

impl Element for u32 {
    const NAME: &'static str = "u32";

    fn wrap(view: ArrayViewD<'_, u32>) -> InputArray<'_> {
        InputArray::U32(view)
    }

    fn to_f32(self) -> Option<f32> {
        i64::from(self).to_f32()
    }
}

/// The error for the `i`-th element (in standard order) of an array of `shape`.
fn not_exact(i: usize, shape: &[usize]) -> Error {
    let at = crate::shape::unravel(i, shape)
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Error::InvalidArgument {
        layer: "input".into(),
        message: format!(
            "the integer at [{at}] is beyond ±2^24, which float32 cannot hold exactly: it would \
             become another id"
        ),
    }
}

/// One input array of a model with several inputs, of any [`Element`] type: what
/// [`Model::predict`](crate::Model::predict) takes, one per model input.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use seqnn::InputArray;
/// let ids = Array2::<i64>::zeros((4, 7));
/// let x = Array3::<f32>::zeros((4, 7, 2));
/// let inputs: Vec<InputArray> = vec![(&ids).into(), (&x).into()];
/// assert_eq!(inputs[1].shape(), &[4, 7, 2]);
/// ```
#[derive(Debug, Clone)]
pub enum InputArray<'a> {
    /// `f32` values.
    F32(ArrayViewD<'a, f32>),
    /// `i32` ids.
    I32(ArrayViewD<'a, i32>),
    /// `i64` ids.
    I64(ArrayViewD<'a, i64>),
    /// `u32` ids.
    U32(ArrayViewD<'a, u32>),
}

impl<'a> InputArray<'a> {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            InputArray::F32(a) => a.shape(),
            InputArray::I32(a) => a.shape(),
            InputArray::I64(a) => a.shape(),
            InputArray::U32(a) => a.shape(),
        }
    }

    /// Samples `start..end` as `f32`, converted exactly (see [`Element`]).
    ///
    /// # Errors
    /// As [`Element::batch_as_f32`].
    pub(crate) fn rows_as_f32(&self, start: usize, end: usize) -> Result<CowArray<'_, f32, IxDyn>> {
        use ndarray::{Axis, Slice};
        let s = Slice::from(start..end);
        match self {
            InputArray::F32(a) => f32::batch_as_f32(a.slice_axis(Axis(0), s)),
            InputArray::I32(a) => i32::batch_as_f32(a.slice_axis(Axis(0), s)),
            InputArray::I64(a) => i64::batch_as_f32(a.slice_axis(Axis(0), s)),
            InputArray::U32(a) => u32::batch_as_f32(a.slice_axis(Axis(0), s)),
        }
    }
}

impl<'a, S, D, T> From<&'a ndarray::ArrayBase<S, D>> for InputArray<'a>
where
    S: ndarray::Data<Elem = T>,
    D: ndarray::Dimension,
    T: Element,
{
    fn from(a: &'a ndarray::ArrayBase<S, D>) -> Self {
        T::wrap(a.view().into_dyn())
    }
}
