//! The crate's one error type.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::shape::Shape;

/// Everything that can go wrong in seqnn.
///
/// Messages name the layer and quote the shapes involved, in the words Keras uses for the same
/// mistake where Keras has words for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input's number of dimensions is not what the layer takes.
    ///
    /// Keras: `Input 0 of layer "simple_rnn" is incompatible with the layer: expected ndim=3,
    /// found ndim=2. Full shape received: (None, 3)`.
    #[error("Input 0 of layer \"{layer}\" is incompatible with the layer: expected ndim={expected}, found ndim={found}. Full shape received: {shape}")]
    IncompatibleRank {
        /// The layer that refused the input.
        layer: String,
        /// The rank the layer takes.
        expected: usize,
        /// The rank it was given.
        found: usize,
        /// The full shape it was given.
        shape: Shape,
    },

    /// An input has the right rank but a dimension the layer cannot take (usually the features).
    ///
    /// Keras: `Input 0 of layer "simple_rnn" is incompatible with the layer: expected
    /// shape=(None, None, 10), found shape=(4, 2, 7)`.
    #[error("Input 0 of layer \"{layer}\" is incompatible with the layer: expected shape={expected}, found shape={found}")]
    IncompatibleShape {
        /// The layer that refused the input.
        layer: String,
        /// The shape the layer takes (`None` where any size goes).
        expected: Shape,
        /// The shape it was given.
        found: Shape,
    },

    /// An input with no elements along some axis (no samples, no timesteps or no features).
    #[error("Expected input data to be non-empty. Layer \"{layer}\" received an input of shape {shape}.")]
    EmptyInput {
        /// The layer (or model) that was given the input.
        layer: String,
        /// The shape it was given.
        shape: Shape,
    },

    /// A constructor argument or option that the layer cannot take; also an optimizer's or a
    /// learning-rate schedule's bad hyper-parameter, and a gradient that does not fit its
    /// variable.
    #[error("layer \"{layer}\": {message}")]
    InvalidArgument {
        /// The layer, optimizer or schedule being configured (its class or name).
        layer: String,
        /// What is wrong, quoting the value.
        message: String,
    },

    /// A name (activation, initializer, merge mode, ...) that is not one Keras knows.
    ///
    /// Keras: `Unknown activation function 'nope' cannot be deserialized.`
    #[error("{message}")]
    UnknownName {
        /// What kind of name it was: "activation function", "merge mode", "initializer".
        kind: &'static str,
        /// The name given.
        name: String,
        /// The full message, listing the names accepted.
        message: String,
    },

    /// `set_weights` was given the wrong number of arrays.
    #[error("You called `set_weights(weights)` on layer \"{layer}\" with a weight list of length {found}, but the layer was expecting {expected} weights.")]
    WeightCount {
        /// The layer or model whose weights were set.
        layer: String,
        /// How many arrays it holds.
        expected: usize,
        /// How many were given.
        found: usize,
    },

    /// `set_weights` was given an array of the wrong shape.
    ///
    /// Keras's words, then which weight: `Layer lstm weight shape (4, 12) is not compatible with
    /// provided weight shape (5, 12): weight 0 (kernel) of the layer.`
    #[error("Layer {layer} weight shape {expected} is not compatible with provided weight shape {found}: weight {index} ({weight}) of the layer.")]
    WeightShape {
        /// The layer that owns the weight.
        layer: String,
        /// The weight's position among the layer's weights, in Keras order.
        index: usize,
        /// The weight's Keras name (`kernel`, `recurrent_kernel`, ...).
        weight: String,
        /// The weight's shape in the layer.
        expected: Shape,
        /// The shape given.
        found: Shape,
    },

    /// A size beyond what seqnn accepts (see [`limits`](crate::limits)), or one whose
    /// arithmetic overflows: refused before anything is allocated for it.
    #[error("layer \"{layer}\" is too large: {message}")]
    TooLarge {
        /// The layer (or model) whose size was refused.
        layer: String,
        /// The sizes, and the limit they exceed.
        message: String,
    },

    /// The model (or layer) has no input shape yet, so it has no weights or shapes to show.
    #[error("This model has not yet been built. Build the model first by calling `build()` or by calling the model on a batch of data.")]
    NotBuilt {
        /// The model or layer that is not built.
        name: String,
    },

    /// A layer cannot go where it was put in a model.
    #[error("layer \"{layer}\": {message}")]
    UnsupportedInModel {
        /// The layer that was refused.
        layer: String,
        /// Why, and what to do instead.
        message: String,
    },

    /// Two layers of one model have the same name.
    #[error("All layers added to a Sequential model should have unique names. Name \"{name}\" is already the name of a layer in this model. Update the `name` argument to pass a unique name.")]
    DuplicateLayerName {
        /// The repeated name.
        name: String,
    },

    /// The operating system could not read or write a file: not found, no permission, a full
    /// disk. The [`std::io::Error`] is the [`source`](std::error::Error::source), and
    /// [`io_kind`](Error::io_kind) tells which.
    #[error("{}: {}", path.display(), **source)]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: Shared<std::io::Error>,
    },

    /// A model, weights or array file that cannot be read or written: damaged, not a Keras
    /// file, or holding something seqnn does not support. The message says what is wrong, and
    /// names the layer, its class and the option when a layer is the cause. The
    /// [`source`](std::error::Error::source), when there is one, is the error underneath: the
    /// zip, HDF5 or JSON reader's, or seqnn's own for a model the file describes (such as an
    /// [`Error::TooLarge`] layer).
    #[error("{}: {message}", path.display())]
    File {
        /// The file (`<bytes>` for a file given as bytes).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// The error underneath, if any.
        #[source]
        source: Option<Source>,
    },

    /// A Keras layer class, option or model kind that seqnn does not have. Nothing is skipped or
    /// approximated: such a model is refused.
    #[error("layer \"{layer}\" ({class}): {message}")]
    Unsupported {
        /// The layer's name in the file.
        layer: String,
        /// Its Keras class.
        class: String,
        /// The option or feature, and its value.
        message: String,
    },

    /// A callback of `fit` that cannot do what it was asked: a checkpoint path that cannot be
    /// written or formatted, a monitor whose direction Keras cannot tell, a bad option.
    #[error("{callback}: {message}")]
    Callback {
        /// The callback's Keras class: `"ModelCheckpoint"`, `"EarlyStopping"`.
        callback: String,
        /// What is wrong, naming the key or the path.
        message: String,
    },

    /// No layer of that name in the model.
    #[error("No such layer: {name}. Existing layers are: [{existing}].")]
    NoSuchLayer {
        /// The name asked for.
        name: String,
        /// The names the model has, comma separated.
        existing: String,
    },
}

impl Error {
    /// A wrapped layer's size error as its wrapper's: `layer "bidirectional" is too large: in
    /// its layer forward_lstm, ...`. Other errors stand as they are.
    pub(crate) fn in_wrapper(self, wrapper: &str) -> Error {
        match self {
            Error::TooLarge { layer, message } if layer != wrapper => Error::TooLarge {
                layer: wrapper.to_string(),
                message: format!("in its layer {layer}, {message}"),
            },
            other => other,
        }
    }

    /// This error with the file it came from: a [`Error::File`] naming `path`, whose source is
    /// the error itself. File errors keep their own path when they have one.
    pub fn in_file(self, path: &Path) -> Error {
        match self {
            Error::File {
                path: p,
                message,
                source,
            } if p.as_os_str().is_empty() => Error::File {
                path: path.to_path_buf(),
                message,
                source,
            },
            Error::File { .. } | Error::Io { .. } => self,
            other => Error::File {
                path: path.to_path_buf(),
                message: other.to_string(),
                source: Some(Shared(Arc::new(other))),
            },
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source: Shared(Arc::new(e)),
        }
    }

    /// A file error without a source; the path may be filled in later by [`in_file`](Error::in_file).
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::File {
            path: path.into(),
            message: message.into(),
            source: None,
        }
    }

    /// The kind of the I/O error underneath, for an [`Error::Io`] (or a file error caused by
    /// one): `NotFound`, `PermissionDenied`, ...
    ///
    /// ```
    /// let err = seqnn::load_model("no/such/model.keras").unwrap_err();
    /// assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    /// ```
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        if let Error::Io { source, .. } = self {
            return Some(source.kind());
        }
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = e {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return Some(io.kind());
            }
            e = err.source();
        }
        None
    }
}

/// The error underneath a file error: the zip, HDF5 or JSON reader's, or seqnn's own.
pub type Source = Shared<dyn std::error::Error + Send + Sync + 'static>;

/// An error shared by the clones of the [`Error`](enum@Error) it is under, so that the crate's
/// error stays `Clone`. It dereferences to the error itself, and that is what
/// [`source`](std::error::Error::source) returns, so it downcasts to its own type.
#[derive(Debug)]
pub struct Shared<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: std::error::Error + Send + Sync + 'static> From<T>
    for Shared<dyn std::error::Error + Send + Sync>
{
    fn from(e: T) -> Self {
        Shared(Arc::new(e))
    }
}

/// `Result` with [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;
