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

    fn to_f32(self) -> Option<f32> {
        Some(self)
    }

    fn batch_as_f32(batch: ArrayViewD<'_, f32>) -> Result<CowArray<'_, f32, IxDyn>> {
        Ok(CowArray::from(batch))
    }
}

impl Element for i32 {
    const NAME: &'static str = "i32";

    fn to_f32(self) -> Option<f32> {
        i64::from(self).to_f32()
    }
}

impl Element for i64 {
    const NAME: &'static str = "i64";

    fn to_f32(self) -> Option<f32> {
        (self.abs() <= EXACT_F32).then_some(self as f32)
    }
}

impl Element for u32 {
    const NAME: &'static str = "u32";

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
