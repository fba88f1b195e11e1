//! Large buffers that training reuses from one step to the next.
//!
//! Every training step allocates the same large buffers again: a recurrent layer's trace (its
//! input, gates and states over every timestep) and its backward pass's gradients, tens of
//! megabytes a batch. Freed at the end of a step, they go back to the system, and the next
//! step faults them in again page by page, which cost a GRU's training step about a third of
//! its time. A training call takes them from here instead and gives them back when it is done
//! with them; `fit` empties the cache when it returns ([`ClearOnDrop`]).
//!
//! The cache holds at most [`MAX_BUFFERS`] buffers and [`MAX_VALUES`] values; buffers under
//! [`MIN_LEN`] values are left to the allocator.

use std::sync::{Mutex, PoisonError};

use ndarray::{Array, Array2, Dimension};

/// Buffers shorter than this (64 KiB) are not worth keeping.
const MIN_LEN: usize = 1 << 14;
/// The most buffers the cache keeps.
const MAX_BUFFERS: usize = 64;
/// The most values the cache keeps in all (256 MiB).
const MAX_VALUES: usize = 1 << 26;

/// The process's cache.
static CACHE: Mutex<Cache> = Mutex::new(Cache(Vec::new()));

/// A `(rows, cols)` array whose values are unspecified (zeros, or left from an earlier use):
/// the caller writes every value before it reads it. From the cache when it holds a buffer
/// large enough (and not more than twice as large), else newly allocated.
pub(crate) fn array2(rows: usize, cols: usize) -> Array2<f32> {
    let buffer = CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(rows * cols);
    Array2::from_shape_vec((rows, cols), buffer).expect("rows·cols values")
}

/// `len` zeros in a new buffer. A buffer of many megabytes asks the kernel for huge pages
/// (Linux's `madvise(MADV_HUGEPAGE)`, on the 2 MiB-aligned part of it), so that writing it
/// the first time takes one page fault per 2 MiB instead of one per 4 KiB: on a virtual
/// machine those faults took a fifth of `SimpleRNN(512, return_sequences)`'s time, writing a
/// 105 MB output. Where the kernel says no, or on other systems, it is a plain allocation.
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let buffer = vec![0.0_f32; len];
    if len >= HUGE_PAGE_VALUES {
        huge_pages::advise(&buffer);
    }
    buffer
}

/// The values of a huge page (2 MiB); a buffer of at least four asks for them.
const HUGE_PAGE_VALUES: usize = (2 << 20) / std::mem::size_of::<f32>() * 4;

#[cfg(target_os = "linux")]
mod huge_pages {
    use std::ffi::{c_int, c_void};

    extern "C" {
        /// glibc's and musl's `madvise(2)`.
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }

    /// `MADV_HUGEPAGE` of `<sys/mman.h>`.
    const MADV_HUGEPAGE: c_int = 14;
    /// Huge pages of 2 MiB, as on x86-64 and on aarch64 with 4 KiB pages.
    const HUGE: usize = 2 << 20;

    /// Advises the kernel to back the whole huge pages inside `buffer` with huge pages. A
    /// hint: its failure (no transparent huge pages, another page size) changes nothing.
    pub(super) fn advise(buffer: &[f32]) {
        let start = buffer.as_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if to > from {
            // SAFETY: [from, to) lies inside `buffer`'s allocation, which this process owns;
            // MADV_HUGEPAGE changes how its pages are backed, never its contents.
            unsafe {
                madvise(from as *mut c_void, to - from, MADV_HUGEPAGE);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod huge_pages {
    /// Nothing to advise on this system.
    pub(super) fn advise(_buffer: &[f32]) {}
}

/// Gives back the buffer of an array, from [`array2`] or not, for later calls.
pub(crate) fn give<D: Dimension>(array: Array<f32, D>) {
    let (buffer, _) = array.into_raw_vec_and_offset();
    if buffer.capacity() >= MIN_LEN {
        CACHE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .give(buffer);
    }
}

/// Empties the cache when dropped, returning its memory to the allocator: what a call that
/// fills it holds while it runs (`let _release = ClearOnDrop;`).
pub(crate) struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        let taken = std::mem::take(&mut CACHE.lock().unwrap_or_else(PoisonError::into_inner).0);
        drop(taken);
    }
}

/// Buffers given back, oldest first, each as long as its capacity.
struct Cache(Vec<Vec<f32>>);

impl Cache {
    /// A buffer of `len` values, unspecified as for [`array2`].
    fn take(&mut self, len: usize) -> Vec<f32> {
        if len >= MIN_LEN {
            let fits = (self.0.iter().enumerate())
                .filter(|(_, b)| b.len() >= len && b.len() / 2 <= len)
                .min_by_key(|(_, b)| b.len())
                .map(|(i, _)| i);
            if let Some(i) = fits {
                let mut buffer = self.0.remove(i);
                buffer.truncate(len);
                return buffer;
            }
        }
        zeros(len)
    }

    /// Keeps `buffer`, dropping the oldest buffers beyond the limits.
    fn give(&mut self, mut buffer: Vec<f32>) {
        // The whole capacity, initialized, so that a later take of any length up to it is a
        // truncation (usually nothing to write: arrays fill their buffers).
        buffer.resize(buffer.capacity(), 0.0);
        self.0.push(buffer);
        let mut total: usize = self.0.iter().map(Vec::len).sum();
        while self.0.len() > MAX_BUFFERS || total > MAX_VALUES {
            total -= self.0.remove(0).len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_serves_a_size_that_fits() {
        let mut cache = Cache(Vec::new());
        let a = cache.take(3 * MIN_LEN);
        let at = a.as_ptr();
        cache.give(a);
        // Not for a size it is more than twice as large as, nor one it is too small for.
        let (small, large) = (cache.take(MIN_LEN), cache.take(4 * MIN_LEN));
        assert!(small.as_ptr() != at && large.as_ptr() != at);
        let b = cache.take(2 * MIN_LEN);
        assert_eq!((b.as_ptr(), b.len()), (at, 2 * MIN_LEN));
        assert!(cache.0.is_empty());
    }

    #[test]
    fn the_cache_keeps_what_its_limits_allow() {
        let mut cache = Cache(Vec::new());
        cache.give(vec![0.0; 100]);
        cache.give(vec![0.0; MAX_VALUES / 2 + 1]);
        cache.give(vec![0.0; MAX_VALUES / 2]);
        // The oldest two go: the second would take the total past MAX_VALUES.
        assert_eq!(cache.0.len(), 1);
        assert_eq!(cache.0[0].len(), MAX_VALUES / 2);
        for _ in 0..MAX_BUFFERS + 3 {
            cache.give(vec![0.0; MIN_LEN]);
        }
        assert_eq!(cache.0.len(), MAX_BUFFERS);
    }

    #[test]
    fn arrays_have_their_shape() {
        let a = array2(3, 5);
        assert_eq!(a.dim(), (3, 5));
        give(a);
    }
}
