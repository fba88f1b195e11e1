//! Keras 3's operations in a Functional config (`"module": "keras.src.ops.numpy"`): the
//! `NotEqual`, `Any`, `ExpandDims`, ... nodes that Keras 3 records for masks, and the
//! `keras.ops` a model calls itself. Their constant operands (`not_equal(x, 0)`) are in the
//! node's arguments, which the Functional loader reads.

use serde_json::{json, Value};

use super::{Dialect, Entry};
use crate::error::Result;
use crate::layer::Layer;
use crate::layers::op::{BinaryOp, Op, OpKind, ReduceOp, UnaryOp};

/// Whether an entry is an operation: its module says so, or (in legacy configs, which have no
/// module) its class is one that no layer has.
pub(super) fn is_op(e: &Entry<'_>) -> bool {
    match e.entry["module"].as_str() {
        Some(m) => m.starts_with("keras.src.ops") || m.starts_with("keras.ops"),
        None => kind_of(e.class, &Value::Null).is_some() && !is_layer_class(e.class),
    }
}

/// Operation classes that are also layer classes: without a module, the layer is meant.
fn is_layer_class(class: &str) -> bool {
    matches!(
        class,
        "Add" | "Subtract" | "Multiply" | "Maximum" | "Minimum" | "Concatenate"
    )
}

/// An operation's kind from its class and config, `None` for a class that is not one.
fn kind_of(class: &str, c: &Value) -> Option<Result<OpKind>> {
    let b = |op| Some(Ok(OpKind::Binary(op)));
    let u = |op| Some(Ok(OpKind::Unary(op)));
    match class {
        "Equal" => b(BinaryOp::Equal),
        "NotEqual" => b(BinaryOp::NotEqual),
        "Greater" => b(BinaryOp::Greater),
        "GreaterEqual" => b(BinaryOp::GreaterEqual),
        "Less" => b(BinaryOp::Less),
        "LessEqual" => b(BinaryOp::LessEqual),
        "LogicalAnd" => b(BinaryOp::LogicalAnd),
        "LogicalOr" => b(BinaryOp::LogicalOr),
        "LogicalXor" => b(BinaryOp::LogicalXor),
        "Add" => b(BinaryOp::Add),
        "Subtract" => b(BinaryOp::Subtract),
        "Multiply" => b(BinaryOp::Multiply),
        "Divide" | "TrueDivide" => b(BinaryOp::Divide),
        "Maximum" => b(BinaryOp::Maximum),
        "Minimum" => b(BinaryOp::Minimum),
        "LogicalNot" => u(UnaryOp::LogicalNot),
        "ZerosLike" => u(UnaryOp::ZerosLike),
        "OnesLike" => u(UnaryOp::OnesLike),
        "Absolute" => u(UnaryOp::Absolute),
        "Negative" => u(UnaryOp::Negative),
        "Square" => u(UnaryOp::Square),
        "Sqrt" => u(UnaryOp::Sqrt),
        "Exp" => u(UnaryOp::Exp),
        "Log" => u(UnaryOp::Log),
        "Cast" => Some(cast(c)),
        "ExpandDims" => Some(int(c, "axis").map(|axis| OpKind::ExpandDims {
            axis: axis.unwrap_or(0),
        })),
        "Squeeze" => Some(int(c, "axis").map(|axis| OpKind::Squeeze { axis })),
        "Any" | "All" | "Sum" | "Mean" | "Max" | "Min" => {
            let op = match class {
                "Any" => ReduceOp::Any,
                "All" => ReduceOp::All,
                "Sum" => ReduceOp::Sum,
                "Mean" => ReduceOp::Mean,
                "Max" => ReduceOp::Max,
                _ => ReduceOp::Min,
            };
            Some(axes(c).map(|axis| OpKind::Reduce {
                op,
                axis,
                keepdims: c["keepdims"].as_bool().unwrap_or(false),
            }))
        }
        "Concatenate" => Some(int(c, "axis").map(|axis| OpKind::Concatenate {
            axis: axis.unwrap_or(0),
        })),
        _ => None,
    }
}

fn bad(key: &str, v: &Value) -> crate::Error {
    super::malformed(format!(
        "an operation's {key} is {}, not what Keras writes",
        super::excerpt(v)
    ))
}

fn int(c: &Value, key: &str) -> Result<Option<isize>> {
    match &c[key] {
        Value::Null => Ok(None),
        Value::Array(a) if a.len() == 1 => int(&json!({ key: a[0] }), key),
        v => v
            .as_i64()
            .and_then(|a| isize::try_from(a).ok())
            .map(Some)
            .ok_or_else(|| bad(key, v)),
    }
}

fn axes(c: &Value) -> Result<Option<Vec<isize>>> {
    match &c["axis"] {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_i64()
                    .and_then(|x| isize::try_from(x).ok())
                    .ok_or_else(|| bad("axis", x))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        v => int(c, "axis")
            .map(|a| a.map(|a| vec![a]))
            .map_err(|_| bad("axis", v)),
    }
}

fn cast(c: &Value) -> Result<OpKind> {
    let dtype = c["dtype"].as_str().unwrap_or("float32");
    let op = if dtype == "bool" {
        UnaryOp::CastBool
    } else if dtype.starts_with("int") || dtype.starts_with("uint") {
        UnaryOp::CastInt
    } else if dtype.starts_with("float") || dtype.starts_with("bfloat") {
        UnaryOp::CastFloat
    } else {
        return Err(bad("dtype", &c["dtype"]));
    };
    Ok(OpKind::Unary(op))
}

/// An operation from its entry.
pub(super) fn from_entry(e: &Entry<'_>, _d: Dialect) -> Option<Result<Box<dyn Layer>>> {
    if !is_op(e) {
        return None;
    }
    let kind = kind_of(e.class, e.config).unwrap_or_else(|| {
        Err(e.unsupported(format!("{} is not an operation seqnn has", e.class)))
    });
    Some(kind.map(|k| Box::new(Op::new(k)) as Box<dyn Layer>))
}

/// An operation's own options, for Keras 3's config.
pub(super) fn to_config(layer: &dyn Layer) -> Option<Result<Value>> {
    let any: &dyn std::any::Any = layer;
    let op = any.downcast_ref::<Op>()?;
    Some(Ok(match op.kind() {
        OpKind::Unary(UnaryOp::ZerosLike | UnaryOp::OnesLike) => json!({ "dtype": "float32" }),
        OpKind::Unary(UnaryOp::CastBool) => json!({ "dtype": "bool" }),
        OpKind::Unary(UnaryOp::CastInt) => json!({ "dtype": "int32" }),
        OpKind::Unary(UnaryOp::CastFloat) => json!({ "dtype": "float32" }),
        OpKind::ExpandDims { axis } => json!({ "axis": axis }),
        OpKind::Squeeze { axis } => json!({ "axis": axis }),
        OpKind::Concatenate { axis } => json!({ "axis": axis }),
        OpKind::Reduce { axis, keepdims, .. } => json!({ "axis": axis, "keepdims": keepdims }),
        _ => json!({}),
    }))
}

/// An operation's entry as Keras 3 writes it: its module and class, and a config of its name
/// and options only (an operation has no `trainable` or dtype policy).
pub(super) fn entry(layer: &dyn Layer) -> Result<Value> {
    let options = to_config(layer).unwrap_or_else(|| Ok(json!({})))?;
    let mut config = json!({ "name": layer.name() });
    if let (Some(c), Value::Object(o)) = (config.as_object_mut(), options) {
        c.extend(o);
    }
    let module = if layer.class_name() == "Cast" {
        "keras.src.ops.core"
    } else {
        "keras.src.ops.numpy"
    };
    Ok(json!({
        "module": module,
        "class_name": layer.class_name(),
        "config": config,
        "registered_name": layer.class_name(),
    }))
}
