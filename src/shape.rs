//! Shapes with unknown dimensions, printed as Keras prints them.

use std::fmt;

/// A tensor shape whose dimensions may be unknown (`None`), as Keras's `(None, 10, 16)`.
///
/// The first dimension is the batch. It displays as Python prints a tuple:
///
/// ```
/// use seqnn::Shape;
/// assert_eq!(Shape::new(vec![None, Some(10), Some(16)]).to_string(), "(None, 10, 16)");
/// assert_eq!(Shape::new(vec![Some(8)]).to_string(), "(8,)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<Option<usize>>);

impl Shape {
    /// A shape from its dimensions, `None` for unknown ones.
    pub fn new(dims: Vec<Option<usize>>) -> Self {
        Shape(dims)
    }

    /// A fully known shape, such as an array's.
    ///
    /// ```
    /// use seqnn::Shape;
    /// assert_eq!(Shape::known(&[4, 2, 10]).to_string(), "(4, 2, 10)");
    /// ```
    pub fn known(dims: &[usize]) -> Self {
        Shape(dims.iter().map(|&d| Some(d)).collect())
    }

    /// The dimensions, `None` where unknown.
    pub fn dims(&self) -> &[Option<usize>] {
        &self.0
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Dimension `axis`, or `None` when it is unknown or out of range.
    pub fn dim(&self, axis: usize) -> Option<usize> {
        self.0.get(axis).copied().flatten()
    }

    /// The last dimension, `None` when unknown or when the shape is empty.
    pub fn last(&self) -> Option<usize> {
        self.0.last().copied().flatten()
    }

    /// The same shape with the batch (first) dimension replaced.
    pub fn with_batch(&self, batch: Option<usize>) -> Self {
        let mut dims = self.0.clone();
        if let Some(first) = dims.first_mut() {
            *first = batch;
        }
        Shape(dims)
    }

    /// The same shape with the last dimension replaced.
    pub fn with_last(&self, last: Option<usize>) -> Self {
        let mut dims = self.0.clone();
        if let Some(l) = dims.last_mut() {
            *l = last;
        }
        Shape(dims)
    }

    /// Whether `concrete` (an array's shape) fits this shape: same rank, and equal wherever this
    /// shape's dimension is known.
    pub fn accepts(&self, concrete: &[usize]) -> bool {
        self.0.len() == concrete.len()
            && self
                .0
                .iter()
                .zip(concrete)
                .all(|(d, c)| d.is_none_or(|d| d == *c))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match d {
                Some(d) => write!(f, "{d}")?,
                None => f.write_str("None")?,
            }
        }
        if self.0.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

impl From<Vec<Option<usize>>> for Shape {
    fn from(dims: Vec<Option<usize>>) -> Self {
        Shape(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape::known(&dims)
    }
}

impl From<(usize,)> for Shape {
    fn from(d: (usize,)) -> Self {
        Shape::known(&[d.0])
    }
}

impl From<(usize, usize)> for Shape {
    /// `(timesteps, features)`, as Keras's `input_shape=(2, 10)`.
    fn from(d: (usize, usize)) -> Self {
        Shape::known(&[d.0, d.1])
    }
}

impl From<(Option<usize>, usize)> for Shape {
    /// `(None, features)`: any number of timesteps.
    fn from(d: (Option<usize>, usize)) -> Self {
        Shape::new(vec![d.0, Some(d.1)])
    }
}

impl From<(usize, usize, usize)> for Shape {
    /// `(batch, timesteps, features)`, as Keras's `batch_input_shape=(8, 2, 10)`.
    fn from(d: (usize, usize, usize)) -> Self {
        Shape::known(&[d.0, d.1, d.2])
    }
}

impl From<(Option<usize>, Option<usize>, usize)> for Shape {
    /// `(batch, timesteps, features)` with unknown batch or timesteps.
    fn from(d: (Option<usize>, Option<usize>, usize)) -> Self {
        Shape::new(vec![d.0, d.1, Some(d.2)])
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::known(dims)
    }
}

/// The index, in C (row-major) order, of the `i`-th element of an array of `shape`.
pub(crate) fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &d) in index.iter_mut().zip(shape).rev() {
        if d > 0 {
            *slot = i % d;
            i /= d;
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unravel_is_c_order() {
        assert_eq!(unravel(5, &[2, 3]), [1, 2]);
        assert_eq!(unravel(0, &[]), [] as [usize; 0]);
        assert_eq!(unravel(7, &[2, 2, 2]), [1, 1, 1]);
    }

    #[test]
    fn displays_as_python_tuples() {
        assert_eq!(Shape::new(vec![None, Some(3)]).to_string(), "(None, 3)");
        assert_eq!(Shape::new(vec![None]).to_string(), "(None,)");
        assert_eq!(Shape::new(vec![]).to_string(), "()");
    }

    #[test]
    fn accepts_matches_known_dims_only() {
        let s = Shape::new(vec![None, None, Some(10)]);
        assert!(s.accepts(&[4, 7, 10]));
        assert!(!s.accepts(&[4, 7, 9]));
        assert!(!s.accepts(&[4, 10]));
    }
}
