//! Damaged files never panic: a bounded loop of random byte flips and truncations over valid
//! model files of each format must give `Err` or a valid model, every time.
#![cfg(feature = "keras")]

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seqnn::load_model_from_bytes;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/files")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads `bytes`; a valid result must also summarize and count its parameters.
fn survive(bytes: &[u8], what: &str) {
    let result = std::panic::catch_unwind(|| match load_model_from_bytes(bytes) {
        Ok(model) => {
            assert!(model.summary().is_ok());
            assert!(model.count_params().is_ok());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    });
    assert!(result.is_ok(), "loading panicked on {what}");
}

fn damage(name: &str, rounds: usize, seed: u64) {
    let original = fixture(name);
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..rounds {
        let mut bytes = original.clone();
        match round % 3 {
            // A few random bytes replaced.
            0 | 1 => {
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = rng.random();
                }
            }
            // Cut short.
            _ => bytes.truncate(rng.random_range(0..bytes.len())),
        }
        survive(&bytes, &format!("{name}, round {round}"));
    }
}

#[test]
fn damaged_keras3_archives_never_panic() {
    damage("course_text_classifier.k3.keras", 150, 1);
}

#[test]
fn damaged_tf_keras_archives_never_panic() {
    damage("course_seq2seq.tf.keras", 150, 2);
}

#[test]
fn damaged_legacy_h5_never_panic() {
    damage("course_sequence_tagger.tf.h5", 150, 3);
    damage("course_text_classifier.k3.h5", 100, 4);
}

#[test]
fn empty_and_tiny_inputs_are_errors() {
    for bytes in [&b""[..], b"PK", b"\x89HDF\r\n\x1a\n", b"PK\x03\x04garbage"] {
        assert!(load_model_from_bytes(bytes).is_err());
    }
}
