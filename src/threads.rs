//! How seqnn uses threads: one persistent pool, shared by every call.
//!
//! Large calls split their batch rows into parts (or, for a recurrent inference call with too
//! few rows, each step's units) that run on [rayon]'s global thread pool (with
//! the default `threads` feature). The pool is made once, the first time it is needed, with one
//! thread per CPU the process may run on: `std::thread::available_parallelism`, which honours the
//! process's CPU affinity (`taskset`, cgroup CPU quotas). So:
//!
//! - `RAYON_NUM_THREADS=n` in the environment sizes the pool, as for any rayon program; a
//!   program that builds rayon's global pool itself (`rayon::ThreadPoolBuilder::build_global`)
//!   decides for seqnn too;
//! - [`set_num_threads`] caps how many parts one seqnn call splits into, at any time;
//! - a call made from inside the pool (from a rayon task of the program's own) runs its parts
//!   on the same pool, and calls from many user threads share its threads: the CPUs are never
//!   oversubscribed by seqnn;
//! - a [`Bidirectional`](crate::Bidirectional) without dropout in training runs its two
//!   directions side by side, each on half the threads;
//! - small calls run on the calling thread alone.
//!
//! Without the `threads` feature every call runs on the calling thread.
//!
//! ```
//! seqnn::set_num_threads(1);          // every call on one thread
//! assert_eq!(seqnn::num_threads(), 1);
//! seqnn::set_num_threads(0);          // back to the whole pool
//! assert!(seqnn::num_threads() >= 1);
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

/// The cap set by [`set_num_threads`]; 0 for none.
static CAP: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's share of the threads while it runs one side of a [`join`]; 0 for none.
    static SHARE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Caps the number of threads one seqnn call uses at `n`; `0` removes the cap, so that calls
/// use the whole pool. It takes effect for the calls that start after it, on every thread.
///
/// The pool itself has one thread per CPU the process may use, or `RAYON_NUM_THREADS`; a cap
/// above that has no effect.
pub fn set_num_threads(n: usize) {
    CAP.store(n, Ordering::Relaxed);
}

/// The number of threads a large seqnn call uses now: the pool's size, under the
/// [`set_num_threads`] cap. 1 without the `threads` feature.
pub fn num_threads() -> usize {
    let pool = pool_size();
    let all = match CAP.load(Ordering::Relaxed) {
        0 => pool,
        cap => cap.min(pool),
    };
    match SHARE.with(std::cell::Cell::get) {
        0 => all,
        share => share.min(all),
    }
    .max(1)
}

#[cfg(feature = "threads")]
fn pool_size() -> usize {
    rayon::current_num_threads()
}

#[cfg(not(feature = "threads"))]
fn pool_size() -> usize {
    1
}

/// How many parts to split a call into: [`num_threads`], at most `max_parts`, at least 1.
pub(crate) fn parts(max_parts: usize) -> usize {
    num_threads().min(max_parts).max(1)
}

/// `a()` and `b()`, side by side on the pool when a call may use two threads or more, each
/// with its share of them: while `a` runs, [`num_threads`] on its thread is half of the
/// caller's (rounded down), and while `b` runs, the rest. So two independent halves of a call
/// (the directions of a `Bidirectional`) each run on their own thread, and split their own
/// work no further than their share.
#[cfg(feature = "threads")]
pub(crate) fn join<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let n = num_threads();
    if n < 2 {
        return (a(), b());
    }
    rayon::join(|| with_share(n / 2, a), || with_share(n - n / 2, b))
}

/// `a()` then `b()`, on the calling thread.
#[cfg(not(feature = "threads"))]
pub(crate) fn join<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    (a(), b())
}

/// `f()` with this thread's [`num_threads`] at most `share`, the thread's own share put back
/// afterwards, even when `f` panics.
#[cfg(feature = "threads")]
fn with_share<R>(share: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            SHARE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SHARE.with(|s| s.replace(share)));
    f()
}

/// `f` over `items`, in parallel on the pool when there is more than one item, in order.
#[cfg(feature = "threads")]
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() < 2 {
        return items.iter().map(f).collect();
    }
    items.par_iter().map(f).collect()
}

/// `f` over `items`, in order, on the calling thread.
#[cfg(not(feature = "threads"))]
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    items.iter().map(f).collect()
}

/// `f` on each of `items`, in parallel on the pool when there is more than one.
#[cfg(feature = "threads")]
pub(crate) fn for_each_mut<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync + Send) {
    use rayon::prelude::*;
    if items.len() < 2 || num_threads() < 2 {
        items.into_iter().for_each(f);
        return;
    }
    items.into_par_iter().for_each(f);
}

/// `f` on each of `items`, on the calling thread.
#[cfg(not(feature = "threads"))]
pub(crate) fn for_each_mut<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync + Send) {
    items.into_iter().for_each(f);
}

/// `f` over `items`, consumed, in parallel on the pool when there is more than one, in order.
#[cfg(feature = "threads")]
pub(crate) fn map_owned<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> R + Sync + Send,
) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() < 2 || num_threads() < 2 {
        return items.into_iter().map(f).collect();
    }
    items.into_par_iter().map(f).collect()
}

/// `f` over `items`, consumed, in order, on the calling thread.
#[cfg(not(feature = "threads"))]
pub(crate) fn map_owned<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> R + Sync + Send,
) -> Vec<R> {
    items.into_iter().map(f).collect()
}

/// Runs `steps` steps of `parts` chunks each, `chunk(step, part)`, every chunk of a step
/// after every chunk of the step before, on up to `parts` threads of the pool: a recurrence
/// whose steps are split by columns, synchronized once per step.
///
/// Each thread takes its own part of every step first, so that a part's weights stay in one
/// core's cache, then any part of that step no thread has taken yet. A thread only ever waits
/// for chunks that a running thread has taken, so a thread that the pool starts late, or
/// never (when its other threads are busy, or the call comes from inside the pool), leaves
/// its chunks to the others: the run never deadlocks and, on one thread, is a plain loop.
/// Waiting spins, then yields to the OS.
#[cfg(feature = "threads")]
pub(crate) fn lockstep(parts: usize, steps: usize, chunk: impl Fn(usize, usize) + Sync) {
    use std::sync::atomic::AtomicBool;
    if parts < 2 || num_threads() < 2 {
        (0..steps).for_each(|t| (0..parts).for_each(|p| chunk(t, p)));
        return;
    }
    // The steps whose chunk of each part was taken, and the chunks finished, all steps counted.
    let taken: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
    let done = AtomicUsize::new(0);
    // Set when a chunk panics, so that the other threads stop waiting for it.
    let failed = AtomicBool::new(false);
    struct OnPanic<'a>(&'a AtomicBool);
    impl Drop for OnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
    let worker = |home: usize| {
        let mut step = done.load(Ordering::Acquire) / parts;
        while step < steps {
            let mut spins = 0_u32;
            while done.load(Ordering::Acquire) < step * parts {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                spins = spins.saturating_add(1);
                if spins < 1 << 14 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            for k in 0..parts {
                let p = (home + k) % parts;
                let claim =
                    taken[p].compare_exchange(step, step + 1, Ordering::AcqRel, Ordering::Relaxed);
                if claim.is_ok() {
                    let _guard = OnPanic(&failed);
                    chunk(step, p);
                    done.fetch_add(1, Ordering::Release);
                }
            }
            step += 1;
        }
    };
    let homes: Vec<usize> = (0..parts).collect();
    map(&homes, |&home| worker(home));
}

/// Runs `steps` steps of `parts` chunks each, `chunk(step, part)`, in order, on the calling
/// thread.
#[cfg(not(feature = "threads"))]
pub(crate) fn lockstep(parts: usize, steps: usize, chunk: impl Fn(usize, usize) + Sync) {
    (0..steps).for_each(|t| (0..parts).for_each(|p| chunk(t, p)));
}

#[cfg(all(test, feature = "threads"))]
mod tests {
    use super::*;

    fn share() -> usize {
        SHARE.with(std::cell::Cell::get)
    }

    #[test]
    fn a_share_caps_its_thread_and_is_put_back() {
        assert_eq!(share(), 0);
        assert_eq!(with_share(1, num_threads), 1);
        assert_eq!(with_share(1, || with_share(3, share)), 3);
        assert_eq!(share(), 0);
        let panicked = std::panic::catch_unwind(|| with_share(1, || panic!("in the share")));
        assert!(panicked.is_err());
        assert_eq!(share(), 0, "a panic puts the share back");
    }

    #[test]
    fn the_sides_of_a_join_share_the_threads() {
        let pool = pool_size();
        let (a, b) = join(num_threads, num_threads);
        // Another test may cap the threads meanwhile: the sides never have more than the pool.
        assert!(
            a + b <= pool.max(2),
            "{a} + {b} threads on a pool of {pool}"
        );
        assert!(a <= pool / 2 || pool < 2, "{a} threads on a pool of {pool}");
        assert_eq!(share(), 0);
        let (x, y) = join(|| 1, || "two");
        assert_eq!((x, y), (1, "two"));
    }
}
