//! Element loops over arrays of any rank that allocate nothing for standard-layout arrays.
//!
//! ndarray's `mapv_inplace`, `iter()` and `as_slice_memory_order()` build an index or the
//! default strides of the array, which live on the heap beyond four dimensions; a training
//! step must not allocate, so these go through the standard-layout slice where there is one.

use ndarray::{ArrayBase, Data, DataMut, IxDyn};

/// `x ← f(x)` for every element.
pub(crate) fn map_in_place<S: DataMut<Elem = f32>>(
    a: &mut ArrayBase<S, IxDyn>,
    mut f: impl FnMut(f32) -> f32,
) {
    match a.as_slice_mut() {
        Some(s) => s.iter_mut().for_each(|x| *x = f(*x)),
        None => a.map_inplace(|x| *x = f(*x)),
    }
}

/// `sum(square(a))` as float32: the float32 squares, accumulated in float64 so that the order
/// of the sum (which TensorFlow leaves to its kernels) does not show.
pub(crate) fn sum_of_squares<S: Data<Elem = f32>>(a: &ArrayBase<S, IxDyn>) -> f32 {
    let square = |&x: &f32| f64::from(x * x);
    match a.as_slice() {
        Some(s) => s.iter().map(square).sum::<f64>() as f32,
        None => a.iter().map(square).sum::<f64>() as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr2, ArrayD};

    #[test]
    fn loops_visit_every_element_in_any_layout() {
        let mut a: ArrayD<f32> = arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn();
        assert_eq!(sum_of_squares(&a), 30.0);
        let mut t = a.view_mut().reversed_axes();
        assert_eq!(sum_of_squares(&t), 30.0);
        map_in_place(&mut t, |x| x * 2.0);
        assert_eq!(a, arr2(&[[2.0, 4.0], [6.0, 8.0]]).into_dyn());
    }
}
