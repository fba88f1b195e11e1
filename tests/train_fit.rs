//! `compile`, `fit`, `evaluate`, `train_on_batch`: bad input gives a clear error and changes
//! neither the weights nor the optimizer's state.

use ndarray::{Array2, Array3, ArrayD};
use seqnn::{Dense, Error, FitOptions, Sequential, SimpleRNN, SGD};

fn model() -> Sequential {
    seqnn::set_random_seed(1);
    let mut m = Sequential::new();
    m.add(SimpleRNN::new(3).input_shape((4, 2))).unwrap();
    m.add(Dense::new(2).with_activation(seqnn::ActivationFn::Softmax))
        .unwrap();
    m
}

fn data(n: usize) -> (Array3<f32>, Array2<f32>) {
    let x = Array3::from_shape_fn((n, 4, 2), |(b, t, f)| {
        ((b * 7 + t * 3 + f) % 5) as f32 * 0.2 - 0.4
    });
    let y = Array2::from_shape_fn((n, 2), |(b, c)| if b % 2 == c { 1.0 } else { 0.0 });
    (x, y)
}

fn iterations(m: &Sequential) -> u64 {
    m.compiled().map_or(0, |c| c.optimizer().iterations())
}

/// Runs `f` and checks that it fails with an `InvalidArgument` or `EmptyInput` whose text
/// contains `needle`, leaving the weights and the optimizer's step count unchanged.
fn refused(
    what: &str,
    m: &mut Sequential,
    needle: &str,
    f: impl FnOnce(&mut Sequential) -> seqnn::Result<()>,
) {
    let weights: Vec<ArrayD<f32>> = m.get_weights();
    let steps = iterations(m);
    let err = f(m).expect_err(what);
    assert!(
        matches!(
            err,
            Error::InvalidArgument { .. } | Error::EmptyInput { .. }
        ),
        "{what}: {err:?}"
    );
    assert!(err.to_string().contains(needle), "{what}: {err}");
    assert_eq!(m.get_weights(), weights, "{what}: the weights changed");
    assert_eq!(iterations(m), steps, "{what}: the optimizer stepped");
}

#[test]
fn fit_trains_and_counts_its_steps() -> seqnn::Result<()> {
    let (x, y) = data(20);
    trains_for_ten_epochs(model(), &x, &y).map(drop)
}

/// Compiles `m` with Adam and categorical cross-entropy, checks that 10 epochs over the 20
/// samples `x`, `y` run their 30 steps and lower the loss, and returns the loss after them.
fn trains_for_ten_epochs(
    mut m: Sequential,
    x: &Array3<f32>,
    y: &Array2<f32>,
) -> seqnn::Result<f32> {
    assert_eq!(x.shape()[0], 20);
    m.compile(
        seqnn::Adam::new().with_learning_rate(0.05),
        "categorical_crossentropy",
    )?;
    let before = m.evaluate(x, y, 8)?[0].1;
    let history = m.fit(
        x,
        y,
        &FitOptions::new()
            .with_epochs(10)
            .with_batch_size(8)
            .with_verbose(0),
    )?;
    // 20 samples in batches of 8: 3 steps an epoch.
    assert_eq!(iterations(&m), 30);
    assert_eq!(history.epoch(), (0..10).collect::<Vec<_>>());
    let losses = history.get("loss").expect("loss logged");
    assert!(losses[9] < losses[0], "{losses:?}");
    let after = m.evaluate(x, y, 8)?[0].1;
    assert!(after < before, "{before} -> {after}, {losses:?}");
    Ok(after)
}

#[test]
fn a_convolutional_model_trains() -> seqnn::Result<()> {
    use seqnn::{AveragePooling1D, Conv1D, ConvLSTM1D, MaxPooling1D, Padding};
    let mut m = Sequential::new();
    m.add(
        Conv1D::new(4, 2)
            .with_padding(Padding::Causal)
            .with_activation(seqnn::ActivationFn::Relu)
            .input_shape((4, 2)),
    )?;
    m.add(MaxPooling1D::new(2).with_strides(1))?;
    m.add(AveragePooling1D::new(2).with_padding(Padding::Same))?;
    m.add(seqnn::Reshape::new(vec![2_i64, 4, 1]))?;
    m.add(ConvLSTM1D::new(2, 2).with_padding(Padding::Same))?;
    m.add(seqnn::Flatten::new())?;
    m.add(Dense::new(2).with_activation(seqnn::ActivationFn::Softmax))?;
    // Which channel has the larger sum: a task the convolutions can learn (`data`'s labels
    // are not a function of its inputs).
    let x = Array3::from_shape_fn((20, 4, 2), |(b, t, f)| {
        (((b * 13 + t * 7 + f * 5) % 11) as f32 - 5.0) * 0.2
    });
    let y = Array2::from_shape_fn((20, 2), |(b, c)| {
        let sum = |f: usize| (0..4).map(|t| x[[b, t, f]]).sum::<f32>();
        f32::from(u8::from((sum(0) > sum(1)) == (c == 0)))
    });
    let after = trains_for_ten_epochs(m, &x, &y)?;
    assert!(after < 0.6, "{after}");
    Ok(())
}

/// A GRU with `recurrent_dropout=0.2`, in both variants, trains: the training calls drop
/// its recurrent state, `evaluate` runs it whole, and the loss falls.
#[test]
fn a_gru_with_recurrent_dropout_trains() -> seqnn::Result<()> {
    use seqnn::GRU;
    // Whether the first feature's sum is the larger: a task the GRU can learn.
    let x = Array3::from_shape_fn((20, 4, 2), |(b, t, f)| {
        (((b * 13 + t * 7 + f * 5) % 11) as f32 - 5.0) * 0.2
    });
    let y = Array2::from_shape_fn((20, 2), |(b, c)| {
        let sum = |f: usize| (0..4).map(|t| x[[b, t, f]]).sum::<f32>();
        f32::from(u8::from((sum(0) > sum(1)) == (c == 0)))
    });
    for reset_after in [true, false] {
        seqnn::set_random_seed(2);
        let mut m = Sequential::new();
        m.add(
            GRU::new(8)
                .with_reset_after(reset_after)
                .with_recurrent_dropout(0.2)
                .input_shape((4, 2)),
        )?;
        m.add(Dense::new(2).with_activation(seqnn::ActivationFn::Softmax))?;
        let after = trains_for_ten_epochs(m, &x, &y)?;
        assert!(after < 0.6, "reset_after={reset_after}: {after}");
    }
    Ok(())
}

#[test]
fn metrics_are_logged_in_compile_order_and_for_validation() -> seqnn::Result<()> {
    let mut m = model();
    m.compile_with(
        seqnn::Compiled::new(
            Box::new(SGD::new()),
            seqnn::Loss::categorical_crossentropy(),
        )
        .with_metrics(&["accuracy", "mae"])?,
    );
    let (x, y) = data(12);
    let h = m.fit(
        &x,
        &y,
        &FitOptions::new()
            .with_epochs(2)
            .with_batch_size(4)
            .with_validation_split(0.25)
            .with_shuffle(false)
            .with_verbose(0),
    )?;
    let keys: Vec<&str> = h.history().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "accuracy",
            "loss",
            "mae",
            "val_accuracy",
            "val_loss",
            "val_mae"
        ]
    );
    let logs = m.evaluate(&x, &y, 4)?;
    let names: Vec<&str> = logs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["loss", "accuracy", "mae"]);
    // Accuracy of one-hot targets is categorical accuracy: a fraction of the samples.
    let acc = logs[1].1;
    assert!((acc * 12.0 - (acc * 12.0).round()).abs() < 1e-4, "{acc}");
    Ok(())
}

#[test]
fn validation_split_holds_out_the_last_samples() -> seqnn::Result<()> {
    let mut m = model();
    m.compile("sgd", "mse")?;
    let (x, y) = data(20);
    let h = m.fit(
        &x,
        &y,
        &FitOptions::new()
            .with_epochs(2)
            .with_batch_size(4)
            .with_validation_split(0.25)
            .with_shuffle(false)
            .with_verbose(0),
    )?;
    // 15 samples train (4 steps an epoch), the last 5 validate.
    assert_eq!(iterations(&m), 8);
    let val = h.get("val_loss").expect("val_loss logged");
    assert_eq!(val.len(), 2);
    let x_val = x.slice(ndarray::s![15.., .., ..]).to_owned();
    let y_val = y.slice(ndarray::s![15.., ..]).to_owned();
    let expected = m.evaluate(&x_val, &y_val, 4)?[0].1;
    assert!((val[1] - expected).abs() <= 1e-6 * expected.abs().max(1.0));
    Ok(())
}

#[test]
fn bad_input_changes_nothing() -> seqnn::Result<()> {
    let (x, y) = data(10);
    let opts = FitOptions::new().with_verbose(0);
    let mut m = model();
    refused("uncompiled", &mut m, "compile()", |m| {
        m.fit(&x, &y, &opts).map(drop)
    });
    m.compile("adam", "categorical_crossentropy")?;
    // One real step first, so that the optimizer has state to keep.
    m.train_on_batch(&x, &y)?;
    assert_eq!(iterations(&m), 1);
    let (x9, _) = data(9);
    refused("lengths", &mut m, "x sizes: 9, y sizes: 10", |m| {
        m.fit(&x9, &y, &opts).map(drop)
    });
    refused("batch 0", &mut m, "batch_size", |m| {
        m.fit(&x, &y, &opts.clone().with_batch_size(0)).map(drop)
    });
    refused("split 1", &mut m, "validation_split", |m| {
        m.fit(&x, &y, &opts.clone().with_validation_split(1.0))
            .map(drop)
    });
    refused("split -0.1", &mut m, "validation_split", |m| {
        m.fit(&x, &y, &opts.clone().with_validation_split(-0.1))
            .map(drop)
    });
    let (x0, y0) = (
        x.slice(ndarray::s![..0, .., ..]).to_owned(),
        y.slice(ndarray::s![..0, ..]).to_owned(),
    );
    refused("empty", &mut m, "(0, 4, 2)", |m| {
        m.fit(&x0, &y0, &opts).map(drop)
    });
    // One-hot targets of the wrong width, and targets that are not probabilities.
    let y3 = Array2::<f32>::zeros((10, 3));
    refused("width", &mut m, "categorical_crossentropy", |m| {
        m.fit(&x, &y3, &opts).map(drop)
    });
    let y_bad = y.mapv(|v| v * 2.0);
    refused(
        "not probabilities",
        &mut m,
        "categorical_crossentropy",
        |m| m.fit(&x, &y_bad, &opts).map(drop),
    );
    Ok(())
}

#[test]
fn sparse_labels_out_of_range_are_refused() -> seqnn::Result<()> {
    let (x, _) = data(6);
    let mut m = model();
    m.compile("sgd", "sparse_categorical_crossentropy")?;
    let opts = FitOptions::new().with_verbose(0);
    for (what, bad) in [
        ("2 of 2 classes", 2.0_f32),
        ("negative", -1.0),
        ("fractional", 0.5),
    ] {
        let y = ndarray::Array1::from_shape_fn(6, |i| if i == 3 { bad } else { 0.0 });
        refused(what, &mut m, "sparse_categorical_crossentropy", |m| {
            m.fit(&x, &y, &opts).map(drop)
        });
    }
    Ok(())
}

#[test]
fn a_loss_that_is_not_finite_stops_training_at_its_step() -> seqnn::Result<()> {
    let mut m = model();
    m.compile(SGD::new().with_learning_rate(0.1), "mse")?;
    let (mut x, y) = data(16);
    // The third batch of 4 holds a NaN input.
    x[[9, 0, 0]] = f32::NAN;
    let before = m.get_weights();
    let err = m
        .fit(
            &x,
            &y,
            &FitOptions::new()
                .with_batch_size(4)
                .with_shuffle(false)
                .with_verbose(0),
        )
        .expect_err("a NaN loss");
    assert!(err.to_string().contains("epoch 1, batch 3"), "{err}");
    // Two steps ran: the weights are theirs, not the first ones, and all finite.
    assert_eq!(iterations(&m), 2);
    let after = m.get_weights();
    assert_ne!(after, before);
    assert!(after.iter().all(|w| w.iter().all(|v| v.is_finite())));
    // An infinite input gives a finite loss (tanh saturates) but a gradient that is not:
    // that step is refused too.
    let mut m = model();
    m.compile(SGD::new().with_learning_rate(0.1), "mse")?;
    let (mut x, y) = data(16);
    x[[5, 1, 1]] = f32::INFINITY;
    let err = m
        .fit(
            &x,
            &y,
            &FitOptions::new()
                .with_batch_size(4)
                .with_shuffle(false)
                .with_verbose(0),
        )
        .expect_err("an infinite gradient");
    assert!(
        err.to_string()
            .contains("gradient is not finite at epoch 1, batch 2"),
        "{err}"
    );
    assert_eq!(iterations(&m), 1);
    Ok(())
}

/// A layer of the user's own that has no backward pass: the identity, with the trait's default
/// `backward` (`Error::Unsupported`).
#[derive(Debug, Clone)]
struct Untrainable {
    built: bool,
}

impl seqnn::Layer for Untrainable {
    fn name(&self) -> &str {
        "untrainable"
    }
    fn ensure_named(&mut self) {}
    fn set_name(&mut self, _name: String) {}
    fn class_name(&self) -> &'static str {
        "Untrainable"
    }
    fn trainable(&self) -> bool {
        true
    }
    fn set_trainable(&mut self, _trainable: bool) {}
    fn declared_input_shape(&self) -> seqnn::Result<Option<seqnn::Shape>> {
        Ok(Some(seqnn::Shape::new(vec![None, Some(4), Some(2)])))
    }
    fn compute_output_shape(&self, inputs: &[seqnn::Shape]) -> seqnn::Result<Vec<seqnn::Shape>> {
        Ok(inputs.to_vec())
    }
    fn build(&mut self, inputs: &[seqnn::Shape]) -> seqnn::Result<Vec<seqnn::Shape>> {
        self.built = true;
        Ok(inputs.to_vec())
    }
    fn is_built(&self) -> bool {
        self.built
    }
    fn weight_specs(&self) -> Vec<seqnn::WeightSpec> {
        Vec::new()
    }
    fn initialize(&mut self) {}
    fn weights(&self) -> Vec<ndarray::ArrayViewD<'_, f32>> {
        Vec::new()
    }
    fn set_weights(&mut self, _weights: &[ArrayD<f32>]) -> seqnn::Result<()> {
        Ok(())
    }
    fn call(
        &self,
        inputs: &[ndarray::ArrayViewD<'_, f32>],
        _ctx: &mut seqnn::CallContext,
    ) -> seqnn::Result<Vec<ArrayD<f32>>> {
        Ok(inputs.iter().map(|x| x.to_owned()).collect())
    }
    fn clone_box(&self) -> Box<dyn seqnn::Layer> {
        Box::new(self.clone())
    }
}

#[test]
fn a_layer_without_backward_is_refused_before_any_step() -> seqnn::Result<()> {
    // It stands between the loss and the first Dense's weights: its backward is needed.
    let mut m = Sequential::new();
    m.add(Dense::new(2).input_shape((4, 2)))?;
    m.add(Untrainable { built: false })?;
    m.add(seqnn::Flatten::new())?;
    m.add(Dense::new(2))?;
    m.compile("sgd", "mse")?;
    let (x, y) = data(4);
    let weights = m.get_weights();
    let err = m
        .fit(&x, &y, &FitOptions::new().with_verbose(0))
        .expect_err("no backward");
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("untrainable"), "{err}");
    assert_eq!(m.get_weights(), weights);
    Ok(())
}

#[test]
fn a_first_layer_without_weights_needs_no_backward() -> seqnn::Result<()> {
    // fit needs no gradient of the model's input, so nothing runs the first layer backward,
    // as Keras's tape takes none through layers before the first weights.
    let mut m = Sequential::new();
    m.add(Untrainable { built: false })?;
    m.add(seqnn::Flatten::new())?;
    m.add(Dense::new(2))?;
    m.compile("sgd", "mse")?;
    let (x, y) = data(4);
    let weights = m.get_weights();
    m.fit(&x, &y, &FitOptions::new().with_verbose(0))?;
    assert_ne!(m.get_weights(), weights);
    Ok(())
}

/// Dense → BatchNormalization → Dense, as `tests/fixtures/train/fits/dense_bn_sgd_mse` (whose
/// numbers are Keras's): here, what `fit` does with the moving statistics around a failure.
fn bn_model() -> Sequential {
    seqnn::set_random_seed(3);
    let mut m = Sequential::new();
    m.add(Dense::new(3).input_shape((2,))).unwrap();
    m.add(seqnn::BatchNormalization::new().with_momentum(0.5))
        .unwrap();
    m.add(Dense::new(1)).unwrap();
    m
}

fn moving(m: &Sequential) -> Vec<ArrayD<f32>> {
    m.layers()[1].weights()[2..4]
        .iter()
        .map(|w| w.to_owned())
        .collect()
}

#[test]
fn batch_normalization_moves_once_per_step_and_not_on_a_failed_step() -> seqnn::Result<()> {
    let x = Array2::from_shape_fn((12, 2), |(b, f)| ((b * 5 + f * 3) % 7) as f32 * 0.3 - 0.9);
    let mut y = Array2::from_shape_fn((12, 1), |(b, _)| (b % 3) as f32 - 1.0);
    let options = FitOptions::new()
        .with_batch_size(4)
        .with_shuffle(false)
        .with_verbose(0);
    // Two steps on the first 8 samples.
    let mut two = bn_model();
    two.compile(SGD::new().with_learning_rate(0.1), "mse")?;
    let start = moving(&two);
    two.fit(
        &x.slice(ndarray::s![..8, ..]),
        &y.slice(ndarray::s![..8, ..]),
        &options,
    )?;
    assert_ne!(moving(&two), start, "two steps move the statistics");
    // The same, then a third batch whose loss is NaN: the statistics are the two steps'.
    y[[10, 0]] = f32::NAN;
    let mut failed = bn_model();
    failed.compile(SGD::new().with_learning_rate(0.1), "mse")?;
    let err = failed.fit(&x, &y, &options).expect_err("a NaN loss");
    assert!(err.to_string().contains("epoch 1, batch 3"), "{err}");
    assert_eq!(iterations(&failed), 2);
    assert_eq!(moving(&failed), moving(&two));
    assert_eq!(failed.get_weights(), two.get_weights());
    // One step moves them once: momentum 0.5 halves the way to the batch's statistics.
    let mut one = bn_model();
    one.compile(SGD::new().with_learning_rate(0.1), "mse")?;
    let h = one.layers()[0].call(
        &[x.slice(ndarray::s![..4, ..]).into_dyn()],
        &mut seqnn::CallContext::inference(),
    )?;
    one.train_on_batch(
        &x.slice(ndarray::s![..4, ..]),
        &y.slice(ndarray::s![..4, ..]),
    )?;
    let mean = h[0].mean_axis(ndarray::Axis(0)).unwrap();
    let after = moving(&one);
    for c in 0..3 {
        // moving_mean starts at 0: 0·0.5 + mean·0.5.
        assert!((after[0][c] - 0.5 * mean[c]).abs() < 1e-6, "channel {c}");
    }
    Ok(())
}
