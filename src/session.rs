//! Per-thread session state: layer and model name counters, and the random generator that
//! initializes weights. Keras keeps the same two things global to its session.
//!
//! The state is per thread, so that names and seeded weights are deterministic under
//! `cargo test`, which runs tests in parallel threads. A model built on one thread can be used
//! from any thread afterwards.

use std::cell::RefCell;
use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

/// The session's generator: ChaCha12, the algorithm of rand's `StdRng` (the same numbers for
/// the same seed), named so that its state can be read and restored.
type SessionRng = ChaCha12Rng;

struct Session {
    counters: HashMap<String, usize>,
    rng: SessionRng,
}

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session {
        counters: HashMap::new(),
        rng: SessionRng::from_os_rng(),
    });
}

/// Resets the layer and model name counters of this thread, as `keras.backend.clear_session()`.
///
/// The next `Sequential::new()` is named `sequential` again, the next SimpleRNN `simple_rnn`:
///
/// ```
/// use seqnn::{clear_session, Sequential};
/// clear_session();
/// assert_eq!(Sequential::new().name(), "sequential");
/// assert_eq!(Sequential::new().name(), "sequential_1");
/// clear_session();
/// assert_eq!(Sequential::new().name(), "sequential");
/// ```
pub fn clear_session() {
    SESSION.with(|s| s.borrow_mut().counters.clear());
}

/// Seeds the generator that initializes weights on this thread, as
/// `keras.utils.set_random_seed(seed)`: the same seed gives the same initial weights.
///
/// The numbers differ from Keras's own (the generators differ); the distributions are Keras's.
///
/// ```
/// use seqnn::{set_random_seed, SimpleRNN, Layer, Shape};
/// let init = |seed| -> seqnn::Result<Vec<f32>> {
///     set_random_seed(seed);
///     let mut rnn = SimpleRNN::new(3);
///     rnn.build(&[Shape::new(vec![None, Some(2), Some(4)])])?;
///     rnn.initialize();
///     Ok(rnn.weights()[0].iter().copied().collect())
/// };
/// assert_eq!(init(7)?, init(7)?);
/// # Ok::<(), seqnn::Error>(())
/// ```
pub fn set_random_seed(seed: u64) {
    SESSION.with(|s| s.borrow_mut().rng = SessionRng::seed_from_u64(seed));
}

/// The next unique name for `base` on this thread: `base`, then `base_1`, `base_2`, ...
pub(crate) fn unique_name(base: &str) -> String {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let count = s.counters.entry(base.to_string()).or_insert(0);
        let name = if *count == 0 {
            base.to_string()
        } else {
            format!("{base}_{count}")
        };
        *count += 1;
        name
    })
}

/// The next name for `base` counted from 1, as tf_keras counts inputs: `base_1`, `base_2`, ...
pub(crate) fn unique_name_one_based(base: &str) -> String {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let count = s.counters.entry(base.to_string()).or_insert(0);
        *count += 1;
        format!("{base}_{count}")
    })
}

/// Runs `f` with this thread's weight generator.
pub(crate) fn with_rng<R>(f: impl FnOnce(&mut SessionRng) -> R) -> R {
    SESSION.with(|s| f(&mut s.borrow_mut().rng))
}

/// Where this thread's generator stands: its seed, its stream and its position in it, all it
/// takes to draw the same numbers again ([`set_rng_state`]). A fit's backup holds it, so that
/// the resumed fit shuffles and drops out as the uninterrupted one would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RngState {
    /// The 256-bit key.
    pub(crate) seed: [u8; 32],
    /// The stream.
    pub(crate) stream: u64,
    /// The position in the stream, in 32-bit words.
    pub(crate) word_pos: u128,
}

/// This thread's generator's state.
pub(crate) fn rng_state() -> RngState {
    with_rng(|rng| RngState {
        seed: rng.get_seed(),
        stream: rng.get_stream(),
        word_pos: rng.get_word_pos(),
    })
}

/// Puts this thread's generator at `state`: it draws from there what it drew after
/// [`rng_state`] gave `state`.
pub(crate) fn set_rng_state(state: &RngState) {
    let mut rng = SessionRng::from_seed(state.seed);
    rng.set_stream(state.stream);
    rng.set_word_pos(state.word_pos);
    SESSION.with(|s| s.borrow_mut().rng = rng);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_std_rng() {
        // The session's numbers for a seed are those rand's StdRng gives it, as before the
        // generator was named.
        use rand::RngCore;
        let mut std = rand::rngs::StdRng::seed_from_u64(42);
        set_random_seed(42);
        for _ in 0..100 {
            assert_eq!(with_rng(|r| r.next_u64()), std.next_u64());
        }
    }

    #[test]
    fn a_state_restored_draws_the_same_numbers() {
        use rand::RngCore;
        set_random_seed(7);
        with_rng(|r| r.next_u32()); // mid-block: the buffered words count too
        let state = rng_state();
        let first: Vec<u64> = (0..40).map(|_| with_rng(|r| r.next_u64())).collect();
        set_random_seed(99);
        set_rng_state(&state);
        let again: Vec<u64> = (0..40).map(|_| with_rng(|r| r.next_u64())).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn names_count_from_zero_per_base() {
        clear_session();
        assert_eq!(unique_name("simple_rnn"), "simple_rnn");
        assert_eq!(unique_name("simple_rnn"), "simple_rnn_1");
        assert_eq!(unique_name("bidirectional"), "bidirectional");
        assert_eq!(unique_name("simple_rnn"), "simple_rnn_2");
        clear_session();
        assert_eq!(unique_name("simple_rnn"), "simple_rnn");
    }
}
