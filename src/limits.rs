//! The sizes seqnn accepts, checked before anything is allocated for them.
//!
//! A size comes from a caller (`LSTM::new(units)`, `Dense::new(4).input_dim(d)`) or from a file
//! (a config's `units`). Either way it is checked, with overflow-safe arithmetic, when the layer
//! is added to a model or built, and again when a call meets the real batch size, so that an
//! absurd size is an [`Error::TooLarge`] naming the layer and the sizes,
//! never an aborted allocation.
//!
//! [`Error::TooLarge`]: crate::Error::TooLarge
//!
//! ```
//! use seqnn::{Error, Sequential, LSTM};
//! let mut model = Sequential::new();
//! let err = model.add(LSTM::new(1 << 40).input_shape((10, 64))).unwrap_err();
//! assert!(matches!(err, Error::TooLarge { .. }));
//! assert!(model.layers().is_empty());
//! ```

use crate::error::{Error, Result};
use crate::shape::Shape;

/// The most scalars one layer's weights may hold together: 2^31, 8 GiB of f32. The largest
/// recurrent models people save are far below it (an `LSTM(4096)` on 4096 features holds 2^27).
pub const MAX_LAYER_PARAMS: usize = 1 << 31;

/// The most scalars one tensor of a call may hold: 2^31, 8 GiB of f32. It bounds every layer's
/// output, per sample when a layer is added, and for the real batch when a model runs.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 31;

/// The product of `dims`, or `None` when it overflows.
pub fn elements(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1_usize, |acc, &d| acc.checked_mul(d))
}

/// The product of the known dimensions of `shape`, the unknown ones (the batch, a free number
/// of timesteps) taken as 1: the size of one sample. `None` when it overflows.
pub fn known_elements(shape: &Shape) -> Option<usize> {
    shape
        .dims()
        .iter()
        .try_fold(1_usize, |acc, d| acc.checked_mul(d.unwrap_or(1)))
}

/// Checks that a weight count fits [`MAX_LAYER_PARAMS`]; `what` says how it was counted.
///
/// # Errors
/// [`Error::TooLarge`] naming `layer`.
pub(crate) fn check_params(layer: &str, count: Option<usize>, what: &str) -> Result<usize> {
    match count {
        Some(n) if n <= MAX_LAYER_PARAMS => Ok(n),
        _ => Err(Error::TooLarge {
            layer: layer.to_string(),
            message: format!(
                "its weights would hold {} scalars ({what}), more than the limit of {} \
                 (seqnn::limits::MAX_LAYER_PARAMS)",
                count.map_or("more than 2^64".to_string(), |n| n.to_string()),
                MAX_LAYER_PARAMS
            ),
        }),
    }
}

/// Checks that a tensor of `shape` (unknown dimensions as 1) fits [`MAX_TENSOR_ELEMENTS`].
///
/// # Errors
/// [`Error::TooLarge`] naming `layer` and quoting the shape.
pub(crate) fn check_tensor(layer: &str, what: &str, shape: &Shape) -> Result<()> {
    match known_elements(shape) {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(()),
        n => Err(Error::TooLarge {
            layer: layer.to_string(),
            message: format!(
                "its {what} of shape {shape} would hold {} scalars, more than the limit of {} \
                 (seqnn::limits::MAX_TENSOR_ELEMENTS)",
                n.map_or("more than 2^64".to_string(), |n| n.to_string()),
                MAX_TENSOR_ELEMENTS
            ),
        }),
    }
}

/// [`check_tensor`] for a tensor of known dimensions, without making a [`Shape`] unless it fails:
/// the form a call uses on its hot path.
pub(crate) fn check_dims(layer: &str, what: &str, dims: &[usize]) -> Result<()> {
    match elements(dims) {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(()),
        _ => check_tensor(layer, what, &Shape::known(dims)),
    }
}

/// `a · b`, or a [`Error::TooLarge`] for `layer` when it overflows.
pub(crate) fn mul(layer: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::TooLarge {
        layer: layer.to_string(),
        message: format!("the size {a} · {b} overflows"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_counts_never_overflow() {
        assert_eq!(elements(&[2, 3, 4]), Some(24));
        assert_eq!(elements(&[]), Some(1));
        assert_eq!(elements(&[usize::MAX, 2]), None);
        let s = Shape::new(vec![None, Some(1 << 40), Some(1 << 40)]);
        assert_eq!(known_elements(&s), None);
        assert!(check_tensor("x", "output", &s).is_err());
        assert!(check_tensor("x", "output", &Shape::new(vec![None, Some(10)])).is_ok());
        assert!(check_params("x", Some(MAX_LAYER_PARAMS + 1), "4·u·(d + u + 1)").is_err());
        assert!(check_params("x", None, "overflow").is_err());
    }
}
