//! Keras's optimizers step for step: each case of `tests/fixtures/train/optimizers`
//! (`tools/keras_reference/generate_train_optimizers.py`, tf_keras 2.21 and Keras 3.15) takes the
//! same three steps in seqnn, from the same variables with the same float32 gradients, and
//! must leave the same variables after each step to 1e-6 (absolute below 1, relative above),
//! with the same learning rates; at the end its optimizer variables (names and values) and its
//! config must be Keras 3's. Also: a checkpoint of the optimizer variables resumes the same
//! training, and a step allocates nothing once the optimizer is built.

mod common;

use std::path::{Path, PathBuf};

use common::array;
use common::counting::{alone, measure, Counting};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

use seqnn::train::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, ConfigValue, CosineDecay, ExponentialDecay, Ftrl,
    InverseTimeDecay, LearningRateSchedule, Nadam, Optimizer, PiecewiseConstantDecay,
    PolynomialDecay, RMSprop, VariableValue, SGD,
};
use seqnn::WeightSpec;

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tolerance: 1e-6, absolute below 1, relative above.
const TOL: f64 = 1e-6;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL * b.abs().max(1.0)
}

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/optimizers")
}

/// The schedule of a case, as the generator made it.
fn schedule_for(case: &str) -> Option<Box<dyn LearningRateSchedule>> {
    Some(match case {
        "adam_exponential_decay" => Box::new(ExponentialDecay::new(0.01, 2, 0.5)),
        "adamw_cosine_decay" => Box::new(CosineDecay::new(0.05, 3).with_alpha(0.1)),
        "schedule_exponential" => Box::new(ExponentialDecay::new(0.1, 2, 0.3)),
        "schedule_exponential_staircase" => {
            Box::new(ExponentialDecay::new(0.1, 2, 0.3).with_staircase(true))
        }
        "schedule_piecewise" => Box::new(PiecewiseConstantDecay::new(
            vec![0, 1],
            vec![0.1, 0.05, 0.01],
        )),
        "schedule_cosine" => Box::new(CosineDecay::new(0.1, 4).with_alpha(0.2)),
        "schedule_cosine_warmup" => Box::new(CosineDecay::new(0.01, 5).with_warmup(0.2, 2)),
        "schedule_inverse_time" => Box::new(InverseTimeDecay::new(0.1, 1, 0.5)),
        "schedule_inverse_time_staircase" => {
            Box::new(InverseTimeDecay::new(0.1, 2, 0.5).with_staircase(true))
        }
        "schedule_polynomial" => Box::new(
            PolynomialDecay::new(0.1, 3)
                .with_end_learning_rate(0.01)
                .with_power(2.0),
        ),
        "schedule_polynomial_cycle" => Box::new(
            PolynomialDecay::new(0.1, 1)
                .with_end_learning_rate(0.02)
                .with_power(0.5)
                .with_cycle(true),
        ),
        _ => return None,
    })
}

/// A schedule behind a box, as a value `with_learning_rate_schedule` takes.
#[derive(Debug, Clone)]
struct Boxed(Box<dyn LearningRateSchedule>);

impl LearningRateSchedule for Boxed {
    fn class_name(&self) -> &'static str {
        self.0.class_name()
    }
    fn at(&self, step: u64) -> f32 {
        self.0.at(step)
    }
    fn check(&self) -> seqnn::Result<()> {
        self.0.check()
    }
    fn config(&self) -> seqnn::train::Config {
        self.0.config()
    }
    fn box_clone(&self) -> Box<dyn LearningRateSchedule> {
        self.0.box_clone()
    }
}

/// The optimizer of a case, made with seqnn's builders as the generator made it in Keras.
fn optimizer_for(case: &str) -> Box<dyn Optimizer> {
    let schedule = schedule_for(case).map(Boxed);
    // Every schedule case but two runs on SGD with Keras's defaults.
    if case.starts_with("schedule_") {
        let sgd = SGD::new().with_learning_rate_schedule(schedule.unwrap());
        return Box::new(if case == "schedule_piecewise" {
            sgd.with_momentum(0.5)
        } else {
            sgd
        });
    }
    match case {
        "sgd" => Box::new(SGD::new()),
        "sgd_lr" => Box::new(SGD::new().with_learning_rate(0.3)),
        "sgd_momentum" => Box::new(SGD::new().with_learning_rate(0.1).with_momentum(0.9)),
        "sgd_nesterov" => Box::new(
            SGD::new()
                .with_learning_rate(0.1)
                .with_momentum(0.8)
                .with_nesterov(true),
        ),
        "sgd_clipvalue" => Box::new(SGD::new().with_learning_rate(0.1).with_clipvalue(0.5)),
        "sgd_clipnorm" => Box::new(SGD::new().with_learning_rate(0.1).with_clipnorm(1.0)),
        "sgd_global_clipnorm" => {
            Box::new(SGD::new().with_learning_rate(0.1).with_global_clipnorm(2.0))
        }
        "sgd_weight_decay" => Box::new(
            SGD::new()
                .with_learning_rate(0.1)
                .with_momentum(0.5)
                .with_weight_decay(0.05),
        ),
        "adam" => Box::new(Adam::new()),
        "adam_options" => Box::new(
            Adam::new()
                .with_learning_rate(0.05)
                .with_beta_1(0.8)
                .with_beta_2(0.95)
                .with_epsilon(1e-3),
        ),
        "adam_amsgrad" => Box::new(Adam::new().with_learning_rate(0.01).with_amsgrad(true)),
        "adam_clipnorm" => Box::new(Adam::new().with_learning_rate(0.01).with_clipnorm(0.5)),
        "adam_global_clipnorm" => Box::new(
            Adam::new()
                .with_learning_rate(0.01)
                .with_global_clipnorm(1.0),
        ),
        "adam_clipvalue" => Box::new(Adam::new().with_learning_rate(0.01).with_clipvalue(0.1)),
        "adam_weight_decay" => {
            Box::new(Adam::new().with_learning_rate(0.01).with_weight_decay(0.1))
        }
        "adam_exponential_decay" => {
            Box::new(Adam::new().with_learning_rate_schedule(schedule.unwrap()))
        }
        "adamw" => Box::new(AdamW::new().with_learning_rate(0.01)),
        "adamw_options" => Box::new(
            AdamW::new()
                .with_learning_rate(0.02)
                .with_weight_decay(0.3)
                .with_amsgrad(true)
                .with_beta_1(0.5),
        ),
        "adamw_cosine_decay" => Box::new(
            AdamW::new()
                .with_weight_decay(0.1)
                .with_learning_rate_schedule(schedule.unwrap()),
        ),
        "rmsprop" => Box::new(RMSprop::new()),
        "rmsprop_momentum" => Box::new(
            RMSprop::new()
                .with_learning_rate(0.01)
                .with_momentum(0.9)
                .with_rho(0.8),
        ),
        "rmsprop_centered" => Box::new(RMSprop::new().with_learning_rate(0.01).with_centered(true)),
        "rmsprop_centered_momentum" => Box::new(
            RMSprop::new()
                .with_learning_rate(0.01)
                .with_centered(true)
                .with_momentum(0.5)
                .with_epsilon(1e-4),
        ),
        "rmsprop_clipnorm" => Box::new(RMSprop::new().with_learning_rate(0.01).with_clipnorm(1.0)),
        "adagrad" => Box::new(Adagrad::new().with_learning_rate(0.1)),
        "adagrad_options" => Box::new(
            Adagrad::new()
                .with_learning_rate(0.5)
                .with_initial_accumulator_value(0.0)
                .with_epsilon(1e-3),
        ),
        "adagrad_weight_decay" => Box::new(
            Adagrad::new()
                .with_learning_rate(0.1)
                .with_weight_decay(0.2),
        ),
        "adadelta" => Box::new(Adadelta::new().with_learning_rate(1.0)),
        "adadelta_options" => Box::new(
            Adadelta::new()
                .with_learning_rate(0.5)
                .with_rho(0.7)
                .with_epsilon(1e-4),
        ),
        "adamax" => Box::new(Adamax::new().with_learning_rate(0.01)),
        "adamax_options" => Box::new(
            Adamax::new()
                .with_learning_rate(0.05)
                .with_beta_1(0.7)
                .with_beta_2(0.9)
                .with_epsilon(1e-3),
        ),
        "adamax_global_clipnorm" => Box::new(
            Adamax::new()
                .with_learning_rate(0.01)
                .with_global_clipnorm(0.5),
        ),
        "nadam" | "nadam_one_variable" => Box::new(Nadam::new().with_learning_rate(0.01)),
        "nadam_options" => Box::new(
            Nadam::new()
                .with_learning_rate(0.05)
                .with_beta_1(0.8)
                .with_beta_2(0.9)
                .with_epsilon(1e-4),
        ),
        "nadam_weight_decay" => {
            Box::new(Nadam::new().with_learning_rate(0.01).with_weight_decay(0.1))
        }
        "ftrl" => Box::new(Ftrl::new().with_learning_rate(0.1)),
        "ftrl_l1_l2" => Box::new(
            Ftrl::new()
                .with_learning_rate(0.2)
                .with_l1_regularization_strength(0.3)
                .with_l2_regularization_strength(0.1),
        ),
        "ftrl_shrinkage_beta" => Box::new(
            Ftrl::new()
                .with_learning_rate(0.2)
                .with_learning_rate_power(-0.3)
                .with_initial_accumulator_value(0.5)
                .with_l1_regularization_strength(0.05)
                .with_l2_regularization_strength(0.2)
                .with_l2_shrinkage_regularization_strength(0.4)
                .with_beta(0.5),
        ),
        "ftrl_fixed_rate" => Box::new(
            Ftrl::new()
                .with_learning_rate(0.1)
                .with_learning_rate_power(0.0),
        ),
        other => panic!("no seqnn optimizer for the fixture case {other}"),
    }
}

fn arrays(v: &Value) -> Vec<ArrayD<f32>> {
    v.as_array()
        .expect("a list of arrays")
        .iter()
        .map(array)
        .collect()
}

/// Checks `got` against Keras's `want` and returns the largest difference, relative above 1.
fn assert_close(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (f64::from(*g), f64::from(*w));
        assert!(
            close(g, w),
            "{what}: element {i} is {g}, Keras has {w} (difference {:e})",
            (g - w).abs()
        );
        worst = worst.max((g - w).abs() / w.abs().max(1.0));
    }
    worst
}

/// A config value against Keras's JSON: floats exactly (they are the same Python floats, or
/// the float32 learning rate widened), schedules by class and config.
fn assert_config_value(what: &str, ours: &ConfigValue, keras: &Value) {
    match (ours, keras) {
        (ConfigValue::Null, Value::Null) => {}
        (ConfigValue::Bool(a), Value::Bool(b)) => assert_eq!(a, b, "{what}"),
        (ConfigValue::Int(a), Value::Number(b)) => assert_eq!(Some(*a), b.as_i64(), "{what}"),
        (ConfigValue::Float(a), Value::Number(b)) => assert_eq!(Some(*a), b.as_f64(), "{what}"),
        (ConfigValue::Str(a), Value::String(b)) => assert_eq!(a, b, "{what}"),
        (ConfigValue::List(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_config_value(&format!("{what}[{i}]"), x, y);
            }
        }
        (ConfigValue::Object(config), Value::Object(keras)) => {
            assert_eq!(keras["module"], "keras.optimizers.schedules", "{what}");
            assert_eq!(config.class_name, keras["class_name"], "{what}");
            assert_config(what, config, &keras["config"]);
        }
        _ => panic!("{what}: seqnn has {ours:?}, Keras {keras}"),
    }
}

/// Our config against Keras's, key by key (serde_json sorts the keys: their order is checked
/// against the fixture's `config_keys` where it matters).
fn assert_config(what: &str, ours: &seqnn::train::Config, keras: &Value) {
    let keras = keras.as_object().expect("a config object");
    let mut our_keys: Vec<&str> = ours.options.iter().map(|(k, _)| *k).collect();
    our_keys.sort_unstable();
    let keras_keys: Vec<&str> = keras.keys().map(String::as_str).collect();
    assert_eq!(our_keys, keras_keys, "{what}: the config's keys");
    for (key, value) in &ours.options {
        assert_config_value(&format!("{what}.{key}"), value, &keras[*key]);
    }
}

/// One fixture file, replayed; returns the largest difference of a variable after a step.
fn check_fixture(path: &Path) -> f64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let (case, library) = name
        .strip_suffix(".json")
        .and_then(|s| s.rsplit_once('.'))
        .expect("<case>.<library>.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(fixture["case"], case);
    assert_eq!(fixture["library"], library);
    let keras3 = library == "k3";

    seqnn::clear_session();
    let mut opt = optimizer_for(case);
    assert_eq!(opt.class_name(), fixture["class_name"], "{name}");
    let specs: Vec<WeightSpec> = fixture["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| WeightSpec::new(v["name"].as_str().unwrap(), array(v).shape().to_vec()))
        .collect();
    opt.build(&specs).unwrap();
    let mut variables = arrays(&fixture["variables"]);
    let gradients: Vec<Vec<ArrayD<f32>>> = fixture["gradients"]
        .as_array()
        .unwrap()
        .iter()
        .map(arrays)
        .collect();
    let rates = fixture["learning_rates"].as_array().unwrap();
    let mut ours = Vec::new();
    let mut worst = 0.0f64;
    for (k, (grads, after)) in gradients
        .iter()
        .zip(fixture["steps"].as_array().unwrap())
        .enumerate()
    {
        ours.push(opt.learning_rate());
        let mut views: Vec<_> = variables.iter_mut().map(|v| v.view_mut()).collect();
        let grad_views: Vec<_> = grads.iter().map(|g| g.view()).collect();
        opt.apply(&mut views, &grad_views).unwrap();
        for (i, (v, want)) in variables.iter().zip(arrays(after)).enumerate() {
            worst = worst.max(assert_close(
                &format!("{name}: step {k}, variable {i}"),
                v,
                &want,
            ));
        }
    }
    assert_eq!(opt.iterations(), gradients.len() as u64);
    // The learning rate before each step. Keras 3 reports the rate the next step uses;
    // tf_keras's `learning_rate` lags under a schedule: before step k it still holds the rate
    // of step k - 1 (it is computed at the start of apply_gradients).
    for (k, rate) in rates.iter().enumerate() {
        let ours_then = if keras3 {
            ours[k]
        } else {
            ours[k.saturating_sub(1)]
        };
        let rate = rate.as_f64().unwrap();
        assert!(
            close(f64::from(ours_then), rate),
            "{name}: learning rate before step {k} is {ours_then}, Keras says {rate}"
        );
    }
    if let Some(values) = fixture.get("schedule_values") {
        let schedule = schedule_for(case).unwrap();
        for (step, want) in values.as_array().unwrap().iter().enumerate() {
            let got = schedule.at(step as u64);
            assert!(
                close(f64::from(got), want.as_f64().unwrap()),
                "{name}: schedule at step {step} is {got}, Keras says {want}"
            );
        }
    }
    if !keras3 {
        // tf_keras names its optimizer variables its own way; Keras 3's are the reference.
        return worst;
    }
    let keras_vars = fixture["optimizer_variables"].as_array().unwrap();
    let ours = opt.variables();
    let names: Vec<&str> = ours.iter().map(|v| v.name.as_str()).collect();
    let keras_names: Vec<&str> = keras_vars
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, keras_names, "{name}: optimizer variables");
    let mut values = Vec::new();
    for (v, keras) in ours.iter().zip(keras_vars) {
        let what = format!("{name}: optimizer variable {}", v.name);
        match (&v.value, keras["dtype"].as_str().unwrap()) {
            (VariableValue::Int64(i), "int64") => {
                assert_eq!(*i as f64, keras["data"][0].as_f64().unwrap(), "{what}");
                values.push(VariableValue::Int64(
                    keras["data"][0].as_f64().unwrap() as i64
                ));
            }
            (VariableValue::Float32(a), "float32") => {
                worst = worst.max(assert_close(&what, a, &array(keras)));
                values.push(VariableValue::Float32(array(keras)));
            }
            (value, dtype) => panic!("{what}: seqnn has {value:?}, Keras a {dtype}"),
        }
    }
    let config = opt.config();
    assert_config(name, &config, &fixture["config"]);
    let order: Vec<&str> = config.options.iter().map(|(k, _)| *k).collect();
    let keras_order: Vec<&str> = fixture["config_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        order, keras_order,
        "{name}: the config's keys, in Keras's order"
    );

    // Keras's variables, set into a fresh optimizer, resume the same training.
    seqnn::clear_session();
    let mut resumed = optimizer_for(case);
    resumed.build(&specs).unwrap();
    resumed.set_variables(&values).unwrap();
    assert_eq!(resumed.iterations(), opt.iterations());
    let mut again = variables.clone();
    let grads: Vec<_> = gradients[0].iter().map(|g| g.view()).collect();
    opt.apply(
        &mut variables
            .iter_mut()
            .map(|v| v.view_mut())
            .collect::<Vec<_>>(),
        &grads,
    )
    .unwrap();
    resumed
        .apply(
            &mut again.iter_mut().map(|v| v.view_mut()).collect::<Vec<_>>(),
            &grads,
        )
        .unwrap();
    for (i, (a, b)) in again.iter().zip(&variables).enumerate() {
        assert_close(&format!("{name}: resumed step, variable {i}"), a, b);
    }
    worst
}

#[test]
fn every_optimizer_fixture_steps_as_keras() {
    let _alone = alone();
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 90, "the fixtures are there: {}", files.len());
    let worst = files.iter().map(|p| check_fixture(p)).fold(0.0, f64::max);
    eprintln!(
        "{} optimizer fixtures checked; the largest difference from Keras: {worst:e}",
        files.len()
    );
}

#[test]
fn a_built_optimizer_steps_without_allocating() {
    let _alone = alone();
    let shapes = [vec![64, 32], vec![32], vec![2, 3, 4, 5, 6]];
    let optimizers: Vec<Box<dyn Optimizer>> = vec![
        Box::new(SGD::new().with_momentum(0.9).with_nesterov(true)),
        Box::new(Adam::new().with_amsgrad(true).with_global_clipnorm(1.0)),
        Box::new(AdamW::new().with_clipnorm(1.0)),
        Box::new(RMSprop::new().with_centered(true).with_momentum(0.5)),
        Box::new(Adagrad::new().with_clipvalue(0.1)),
        Box::new(Adadelta::new()),
        Box::new(Adamax::new()),
        Box::new(Nadam::new().with_weight_decay(0.01)),
        Box::new(
            Ftrl::new()
                .with_l1_regularization_strength(0.1)
                .with_learning_rate_schedule(ExponentialDecay::new(0.1, 10, 0.9)),
        ),
    ];
    for mut opt in optimizers {
        let mut vars: Vec<ArrayD<f32>> = shapes
            .iter()
            .map(|s| ArrayD::from_elem(IxDyn(s), 0.5))
            .collect();
        let grads: Vec<ArrayD<f32>> = shapes
            .iter()
            .map(|s| ArrayD::from_shape_fn(IxDyn(s), |i| i[0] as f32 * 0.1 - 0.3))
            .collect();
        let mut views: Vec<_> = vars.iter_mut().map(|v| v.view_mut()).collect();
        let grad_views: Vec<_> = grads.iter().map(|g| g.view()).collect();
        opt.apply(&mut views, &grad_views).unwrap();
        // The counts are the process's: the test harness's own thread may allocate while a
        // step runs (recording the test before this one). A step that allocates does so
        // every time, so the fewest bytes over three tries is the step's.
        let mut fewest = usize::MAX;
        for _ in 0..3 {
            let (result, peak) = measure(|| opt.apply(&mut views, &grad_views));
            result.unwrap();
            fewest = fewest.min(peak);
        }
        assert_eq!(
            fewest,
            0,
            "{}: a step allocated {fewest} bytes",
            opt.class_name()
        );
        assert_eq!(opt.iterations(), 4);
    }
}
