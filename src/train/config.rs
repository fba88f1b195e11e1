//! What an optimizer or a schedule was made with, as Keras's `get_config()` lists it: a class
//! name and `(key, value)` pairs in Keras's order, free of any JSON library, so that a writer
//! can turn it into Keras's `compile_config`.

use crate::error::{Error, Result};

/// One value of a [`Config`]: the JSON values Keras's configs hold.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// Python's `None`.
    Null,
    /// `True` / `False`.
    Bool(bool),
    /// A Python int (`decay_steps`, a boundary).
    Int(i64),
    /// A Python float, as given (a learning rate as Keras's float32 variable holds it).
    Float(f64),
    /// A string (a schedule's `name`).
    Str(String),
    /// A list (`boundaries`, `values`).
    List(Vec<ConfigValue>),
    /// A nested Keras object: a learning-rate schedule, which Keras serializes as
    /// `{"module": "keras.optimizers.schedules", "class_name", "config", "registered_name"}`.
    Object(Config),
}

/// A Keras object's class and its `get_config()` entries, in Keras's order.
///
/// ```
/// use seqnn::train::{Adam, ConfigValue, Optimizer};
/// let config = Adam::new().with_amsgrad(true).config();
/// assert_eq!(config.class_name, "Adam");
/// assert_eq!(config.get("amsgrad"), Some(&ConfigValue::Bool(true)));
/// assert_eq!(config.get("clipnorm"), Some(&ConfigValue::Null));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Keras's class name: `"Adam"`, `"ExponentialDecay"`.
    pub class_name: &'static str,
    /// The entries of `get_config()`, in Keras 3's order.
    pub options: Vec<(&'static str, ConfigValue)>,
}

impl Config {
    /// The value of `key`, if the config has it.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.options.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Refuses a float that is not finite, anywhere in the config (nested schedules included):
    /// Keras takes `nan` and `inf` and trains on to NaN weights; seqnn says so at once.
    pub(crate) fn check_finite(&self, owner: &str) -> Result<()> {
        for (key, value) in &self.options {
            value.check_finite(owner, key)?;
        }
        Ok(())
    }
}

impl ConfigValue {
    /// An optional float: `None` as [`ConfigValue::Null`].
    pub(crate) fn float_or_null(v: Option<f64>) -> ConfigValue {
        v.map_or(ConfigValue::Null, ConfigValue::Float)
    }

    pub(crate) fn check_finite(&self, owner: &str, key: &str) -> Result<()> {
        match self {
            ConfigValue::Float(v) if !v.is_finite() => Err(Error::InvalidArgument {
                layer: owner.to_string(),
                message: format!(
                    "`{key}` must be a finite number. Received: {key}={}",
                    py_repr(*v)
                ),
            }),
            ConfigValue::List(items) => items.iter().try_for_each(|v| v.check_finite(owner, key)),
            ConfigValue::Object(config) => config.check_finite(owner),
            _ => Ok(()),
        }
    }
}

/// A float as Python's `repr` prints it: `1.0`, `0.001`, `1e-07`, `1e+16`, `nan`, `inf`.
pub(crate) fn py_repr(v: f64) -> String {
    repr_from(v, format!("{v:e}"), v.to_string())
}

/// A float32 as NumPy's `str` prints it: its shortest digits, in Python's notation
/// (`0.1`, `1e-05`).
pub(crate) fn py_repr_f32(v: f32) -> String {
    repr_from(f64::from(v), format!("{v:e}"), v.to_string())
}

/// Python's repr from the shortest digits of a float (`sci` as `{:e}`, `fixed` as `{}` print
/// them, for the float's own width).
fn repr_from(v: f64, sci: String, fixed: String) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python's repr does.
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..16).contains(&exp) {
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// An optional float as Python prints it: `None` or its repr.
pub(crate) fn py_option(v: Option<f64>) -> String {
    v.map_or_else(|| "None".into(), py_repr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (v, s) in [
            (1.0, "1.0"),
            (0.001, "0.001"),
            (1e-7, "1e-07"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (123456789.0, "123456789.0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(py_repr(v), s);
        }
        assert_eq!(py_option(None), "None");
    }

    #[test]
    fn non_finite_floats_are_refused_even_nested() {
        let inner = Config {
            class_name: "ExponentialDecay",
            options: vec![("decay_rate", ConfigValue::Float(f64::NAN))],
        };
        let outer = Config {
            class_name: "SGD",
            options: vec![
                ("momentum", ConfigValue::Float(0.5)),
                ("learning_rate", ConfigValue::Object(inner)),
            ],
        };
        let err = outer.check_finite("sgd").unwrap_err().to_string();
        assert!(
            err.contains("`decay_rate` must be a finite number"),
            "{err}"
        );
        let list = ConfigValue::List(vec![ConfigValue::Float(f64::INFINITY)]);
        assert!(list.check_finite("s", "values").is_err());
    }
}
