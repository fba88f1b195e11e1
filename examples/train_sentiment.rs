//! A sentiment classifier as a Keras course trains it: Embedding(mask_zero=True) → LSTM →
//! Dense(sigmoid), on a synthetic grammar of positive and negative phrases ("the film was
//! not bad at all" is positive, "i did not like this plot" negative), padded with zeros. It
//! prints Keras-like progress and the accuracy on phrases it never saw.
//!
//! `cargo run --release --example train_sentiment`

use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seqnn::{
    set_random_seed, ActivationFn, Adam, Compiled, Dense, Embedding, FitOptions, Loss, Sequential,
    LSTM,
};

const VOCAB: &[&str] = &[
    "<pad>", "the", "film", "movie", "plot", "acting", "was", "is", "really", "very", "not",
    "good", "great", "fine", "bad", "awful", "boring", "i", "liked", "loved", "hated", "this",
    "at", "all", "quite", "did", "like",
];

fn id(word: &str) -> f32 {
    VOCAB
        .iter()
        .position(|w| *w == word)
        .expect("a word of the vocabulary") as f32
}

/// One phrase and its label: a subject, an optional intensifier, a positive or negative word,
/// and a negation that flips it.
fn phrase(rng: &mut StdRng) -> (Vec<&'static str>, f32) {
    let positive = ["good", "great", "fine"];
    let negative = ["bad", "awful", "boring"];
    let mut words = Vec::new();
    let mut good = rng.random_bool(0.5);
    let negated = rng.random_bool(0.4);
    if rng.random_bool(0.5) {
        words.extend([
            "the",
            ["film", "movie", "plot", "acting"][rng.random_range(0..4)],
        ]);
        words.push(["was", "is"][rng.random_range(0..2)]);
        if negated {
            words.push("not");
        }
        if rng.random_bool(0.5) {
            words.push(["really", "very", "quite"][rng.random_range(0..3)]);
        }
        let pool = if good { positive } else { negative };
        words.push(pool[rng.random_range(0..3)]);
        if negated && rng.random_bool(0.5) {
            words.extend(["at", "all"]);
        }
    } else {
        words.push("i");
        if negated {
            words.extend(["did", "not", "like"]);
        } else {
            words.push(if good {
                ["liked", "loved"][rng.random_range(0..2)]
            } else {
                "hated"
            });
        }
        words.extend(["this", ["film", "movie", "plot"][rng.random_range(0..3)]]);
        if negated {
            // "did not like": the negation of liking, whatever was drawn.
            good = true;
        }
    }
    let label = if good != negated { 1.0 } else { 0.0 };
    (words, label)
}

fn dataset(n: usize, len: usize, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Array2::<f32>::zeros((n, len));
    let mut y = Array1::<f32>::zeros(n);
    for i in 0..n {
        let (words, label) = phrase(&mut rng);
        for (t, w) in words.iter().enumerate() {
            x[[i, t]] = id(w);
        }
        y[i] = label;
    }
    (x, y)
}

fn main() -> seqnn::Result<()> {
    set_random_seed(3);
    let len = 8;
    let (x, y) = dataset(2_000, len, 1);
    let (x_test, y_test) = dataset(500, len, 2);

    let mut model = Sequential::new();
    model.add(
        Embedding::new(VOCAB.len(), 16)
            .with_mask_zero(true)
            .input_length(len),
    )?;
    model.add(LSTM::new(16))?;
    model.add(Dense::new(1).with_activation(ActivationFn::Sigmoid))?;
    println!("{}", model.summary()?);
    // model.compile(optimizer=Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    model.compile_with(
        Compiled::new(
            Box::new(Adam::new().with_learning_rate(0.01)),
            Loss::binary_crossentropy(),
        )
        .with_metrics(&["accuracy"])?,
    );
    model.fit(
        &x,
        &y,
        &FitOptions::new()
            .with_epochs(10)
            .with_batch_size(32)
            .with_validation_split(0.1),
    )?;
    let logs = model.evaluate(&x_test, &y_test, 32)?;
    let accuracy = logs
        .iter()
        .find(|(k, _)| k == "accuracy")
        .map_or(0.0, |(_, v)| *v);
    println!(
        "held-out accuracy on 500 new phrases: {:.1}%",
        100.0 * accuracy
    );
    Ok(())
}
