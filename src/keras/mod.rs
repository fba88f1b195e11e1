//! Keras files: load `.keras` and legacy `.h5` models, load `.weights.h5` weights, save `.keras`.
//!
//! Behind the `keras` cargo feature (on by default). The core never imports this module.

use std::path::Path;

use crate::error::{Error, Result, Source};
mod archive;
mod compile;
mod config;
mod cudnn;
mod hdf5;
mod legacy;
mod optimizer_state;
mod writer;

use crate::functional::Model;
use crate::input::InputArray;
use crate::sequential::Sequential;
use config::Loaded;
use ndarray::ArrayD;

/// Loads a Keras Sequential model file into a ready [`Sequential`]: names, configuration and
/// weights as saved. Reads Keras 3 `.keras` archives, the `.keras` archives tf_keras 2.x
/// writes, and legacy full-model `.h5` files (Keras 2.0 to 2.2, tf.keras, tf_keras, and Keras
/// 3's `model.save("x.h5")`). A Functional model's file is loaded by [`Model::load`], and a
/// file of either kind by [`load_any`].
///
/// # Errors
/// [`Error::File`] naming the path and what is wrong (missing, damaged, not a model, wrong
/// weight shapes or dtype); [`Error::Unsupported`] for a layer class, option or model kind seqnn
/// does not have (a custom activation, a subclassed model, ...), or for a Functional model.
/// Nothing is skipped.
pub fn load_model(path: impl AsRef<Path>) -> Result<Sequential> {
    load_any(path)?.into_sequential()
}

/// [`load_model`] from the bytes of a `.keras` or `.h5` file, such as one embedded with
/// `include_bytes!`. Errors name the file as `<bytes>`.
///
/// # Errors
/// As [`load_model`].
pub fn load_model_from_bytes(bytes: &[u8]) -> Result<Sequential> {
    load_any_from_bytes(bytes)?.into_sequential()
}

/// Loads a Keras model file of either kind, as Keras's `keras.models.load_model`: a
/// [`Sequential`] or a Functional [`Model`], with names, configuration and weights as saved.
///
/// ```no_run
/// let model = seqnn::load_any("model.keras")?;
/// println!("{}", model.summary()?);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// As [`load_model`], without the error for a Functional model.
pub fn load_any(path: impl AsRef<Path>) -> Result<AnyModel> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    load(std::borrow::Cow::Owned(bytes))
        .map(AnyModel::from)
        .map_err(|e| in_file(e, path))
}

/// [`load_any`] from a file's bytes. Errors name the file as `<bytes>`.
///
/// # Errors
/// As [`load_any`].
pub fn load_any_from_bytes(bytes: &[u8]) -> Result<AnyModel> {
    load(std::borrow::Cow::Borrowed(bytes))
        .map(AnyModel::from)
        .map_err(|e| in_file(e, Path::new("<bytes>")))
}

/// A model a Keras file holds: a [`Sequential`] or a Functional [`Model`], which
/// [`load_any`] returns. It runs, summarises and saves either way, with the inputs and outputs
/// as lists.
#[derive(Debug, Clone)]
pub enum AnyModel {
    /// Keras's `Sequential`.
    Sequential(Sequential),
    /// Keras's `Functional` (`keras.Model(inputs, outputs)`).
    Functional(Model),
}

impl From<Loaded> for AnyModel {
    fn from(l: Loaded) -> Self {
        match l {
            Loaded::Sequential(m) => AnyModel::Sequential(m),
            Loaded::Functional(m) => AnyModel::Functional(m),
        }
    }
}

impl AnyModel {
    /// The Sequential model, or [`Error::Unsupported`] for a Functional one.
    ///
    /// # Errors
    /// For a Functional model, with a pointer to [`Model::load`].
    pub fn into_sequential(self) -> Result<Sequential> {
        match self {
            AnyModel::Sequential(m) => Ok(m),
            AnyModel::Functional(m) => Err(Error::Unsupported {
                layer: m.name().to_string(),
                class: "Functional".into(),
                message: "this file holds a Functional model (keras.Model(inputs, outputs)), not \
                          a Sequential one: load it with seqnn::Model::load or seqnn::load_any"
                    .into(),
            }),
        }
    }

    /// The Functional model, or [`Error::Unsupported`] for a Sequential one.
    ///
    /// # Errors
    /// For a Sequential model, with a pointer to [`load_model`].
    pub fn into_functional(self) -> Result<Model> {
        match self {
            AnyModel::Functional(m) => Ok(m),
            AnyModel::Sequential(m) => Err(Error::Unsupported {
                layer: m.name().to_string(),
                class: "Sequential".into(),
                message: "this file holds a Sequential model, not a Functional one: load it \
                          with seqnn::load_model or seqnn::load_any"
                    .into(),
            }),
        }
    }

    /// The model's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            AnyModel::Sequential(m) => m.name(),
            AnyModel::Functional(m) => m.name(),
        }
    }

    /// The summary table Keras prints for the model.
    ///
    /// # Errors
    /// As [`Sequential::summary`].
    #[must_use = "the summary is returned, not printed: println!(\"{}\", model.summary()?)"]
    pub fn summary(&self) -> Result<String> {
        match self {
            AnyModel::Sequential(m) => m.summary(),
            AnyModel::Functional(m) => m.summary(),
        }
    }

    /// What the model was compiled with (its file's compile configuration, or a later
    /// `compile`); `None` for an uncompiled model.
    #[must_use]
    pub fn compiled(&self) -> Option<&crate::Compiled> {
        match self {
            AnyModel::Sequential(m) => m.compiled(),
            AnyModel::Functional(m) => m.compiled(),
        }
    }

    /// The names of the model's inputs, in order, as the file named them (`input_1`, ... in
    /// tf_keras; see [`Sequential::input_name`]).
    #[must_use]
    pub fn input_names(&self) -> Vec<String> {
        match self {
            AnyModel::Sequential(m) => vec![m.input_name().to_string()],
            AnyModel::Functional(m) => m.input_names(),
        }
    }

    /// The names of the layers whose outputs are the model's outputs, in order.
    #[must_use]
    pub fn output_names(&self) -> Vec<String> {
        match self {
            AnyModel::Sequential(m) => m
                .layers()
                .last()
                .map(|l| vec![l.name().to_string()])
                .unwrap_or_default(),
            AnyModel::Functional(m) => m.output_names(),
        }
    }

    /// How many inputs the model takes.
    #[must_use]
    pub fn input_count(&self) -> usize {
        match self {
            AnyModel::Sequential(_) => 1,
            AnyModel::Functional(m) => m.input_shapes().len(),
        }
    }

    /// [`Model::predict_batched`] for either kind: one array per input, one per output.
    ///
    /// # Errors
    /// As [`Sequential::predict_batched`] and [`Model::predict_batched`]; the wrong number of
    /// inputs.
    pub fn predict_batched(
        &self,
        inputs: &[InputArray<'_>],
        batch_size: usize,
    ) -> Result<Vec<ArrayD<f32>>> {
        match self {
            AnyModel::Sequential(m) => match inputs {
                [x] => m.predict_input(x, batch_size).map(|y| vec![y]),
                _ => Err(Error::InvalidArgument {
                    layer: m.name().to_string(),
                    message: format!(
                        "Layer \"{}\" expects 1 input(s), but it received {} input tensors.",
                        m.name(),
                        inputs.len()
                    ),
                }),
            },
            AnyModel::Functional(m) => m.predict_batched(inputs, batch_size),
        }
    }

    /// [`predict_batched`](Self::predict_batched) with Keras's batch of 32.
    ///
    /// # Errors
    /// As [`predict_batched`](Self::predict_batched).
    pub fn predict(&self, inputs: &[InputArray<'_>]) -> Result<Vec<ArrayD<f32>>> {
        self.predict_batched(inputs, crate::DEFAULT_BATCH_SIZE)
    }

    /// The layers, in Keras's `model.layers` order.
    #[must_use]
    pub fn layers(&self) -> &[Box<dyn crate::Layer>] {
        match self {
            AnyModel::Sequential(m) => m.layers(),
            AnyModel::Functional(m) => m.layers(),
        }
    }

    /// The number of scalars in all weights.
    ///
    /// # Errors
    /// As [`Sequential::count_params`].
    pub fn count_params(&self) -> Result<usize> {
        match self {
            AnyModel::Sequential(m) => m.count_params(),
            AnyModel::Functional(m) => m.count_params(),
        }
    }

    /// Every weight, in Keras's `model.get_weights()` order.
    #[must_use]
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        match self {
            AnyModel::Sequential(m) => m.get_weights(),
            AnyModel::Functional(m) => m.get_weights(),
        }
    }

    /// Replaces every weight, in Keras's order; nothing changes on an error.
    ///
    /// # Errors
    /// As [`Sequential::set_weights`].
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        match self {
            AnyModel::Sequential(m) => m.set_weights(weights),
            AnyModel::Functional(m) => m.set_weights(weights),
        }
    }

    /// Loads the weights of a file saved from a model of the same structure.
    ///
    /// # Errors
    /// As [`Sequential::load_weights`].
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        match self {
            AnyModel::Sequential(m) => m.load_weights(path),
            AnyModel::Functional(m) => m.load_weights(path),
        }
    }

    /// Whether the model has stateful layers (run it with
    /// [`predict_stateful`](Self::predict_stateful)).
    #[must_use]
    pub fn is_stateful(&self) -> bool {
        match self {
            AnyModel::Sequential(m) => m.is_stateful(),
            AnyModel::Functional(m) => m.is_stateful(),
        }
    }

    /// [`Sequential::predict_stateful`] or [`Model::predict_stateful`]: a stateful model in
    /// batches of its own batch size, its states carried on.
    ///
    /// # Errors
    /// As those.
    pub fn predict_stateful(&mut self, inputs: &[InputArray<'_>]) -> Result<Vec<ArrayD<f32>>> {
        match self {
            AnyModel::Sequential(m) => match inputs {
                [x] => m.predict_stateful_input(x).map(|y| vec![y]),
                _ => self.predict(inputs),
            },
            AnyModel::Functional(m) => m.predict_stateful(inputs),
        }
    }

    /// Zeroes the states of every stateful layer.
    pub fn reset_states(&mut self) {
        match self {
            AnyModel::Sequential(m) => m.reset_states(),
            AnyModel::Functional(m) => m.reset_states(),
        }
    }

    /// Saves the model as a Keras 3 `.keras` archive.
    ///
    /// # Errors
    /// As [`Sequential::save`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        match self {
            AnyModel::Sequential(m) => m.save(path),
            AnyModel::Functional(m) => m.save(path),
        }
    }
}

/// A model from a file's bytes: an archive is read where it lies; an HDF5 file is handed to
/// the HDF5 reader, which keeps its own copy.
fn load(bytes: std::borrow::Cow<'_, [u8]>) -> std::result::Result<Loaded, LoadError> {
    if bytes.starts_with(b"PK") {
        archive::load_model(&bytes)
    } else if hdf5_pure::is_hdf5_bytes(&bytes) {
        hdf5::open(bytes.into_owned()).and_then(|file| legacy::load_model(&file))
    } else {
        Err("not a Keras model file: neither a .keras archive (zip) nor HDF5".into())
    }
}

/// How a legacy full-model file stores its layers' weights, from its config (none when it has
/// no readable config: the weights are then read as the model holds them).
fn stored_layouts(file: &hdf5_pure::File) -> config::StoredLayouts {
    legacy::described(file)
        .map(|d| d.stored)
        .unwrap_or_default()
}

/// The whole file; a missing or unreadable one is an [`Error::Io`] naming it.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Why a load failed: the file (a message the caller puts the path on, with the reader's error
/// underneath when there is one) or the model it describes (an error that stands as it is, such
/// as an unsupported layer).
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The file is damaged, incomplete or not what was expected.
    File(String),
    /// The same, caused by the zip, HDF5 or JSON reader's error.
    Sourced(String, Source),
    /// The model the file describes cannot be built here.
    Model(Error),
}

impl LoadError {
    /// A file problem caused by `source`.
    pub(crate) fn sourced(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> LoadError {
        LoadError::Sourced(message.into(), source.into())
    }
}

impl From<String> for LoadError {
    fn from(p: String) -> Self {
        LoadError::File(p)
    }
}

impl From<&str> for LoadError {
    fn from(p: &str) -> Self {
        LoadError::File(p.to_string())
    }
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Model(e)
    }
}

/// A load failure as the crate's error: file problems name the path; an unsupported layer
/// stands as it is (it names the layer, its class and the option); the model's other errors
/// become the file's, with themselves as the source.
fn in_file(e: LoadError, path: &Path) -> Error {
    match e {
        LoadError::File(message) => Error::file(path, message),
        LoadError::Sourced(message, source) => Error::File {
            path: path.to_path_buf(),
            message,
            source: Some(source),
        },
        LoadError::Model(e @ Error::Unsupported { .. }) => e,
        LoadError::Model(e) => e.in_file(path),
    }
}

/// One layer from its JSON config, as Keras's `keras.layers.deserialize`: what
/// `layer.get_config()` wrapped with its class (`{"class_name": "LSTM", "config": {...}}`)
/// gives in tf_keras 2.x or Keras 3 (`keras.layers.serialize(layer)`). The layer is not built:
/// build it for its input shapes, then initialize it or set its weights.
///
/// ```
/// use seqnn::{keras::layer_from_config, Layer, Shape};
/// let json = r#"{"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "relu"}}"#;
/// let mut dense = layer_from_config(json)?;
/// assert_eq!(dense.name(), "d");
/// dense.build(&[Shape::new(vec![None, Some(4)])])?;
/// assert_eq!(dense.count_params(), 15);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// [`Error::File`] (its path `<json>`) for JSON that is not a layer config;
/// [`Error::Unsupported`] for a class or option seqnn does not have.
pub fn layer_from_config(json: &str) -> Result<Box<dyn crate::Layer>> {
    let in_json = |e: Error| match e {
        e @ Error::Unsupported { .. } => e,
        other => other.in_file(Path::new("<json>")),
    };
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| in_json(Error::file("", format!("not JSON ({e})"))))?;
    let entry = config::Entry::new(&v).map_err(in_json)?;
    config::layer_from(&entry, config::Dialect::of_json(json)).map_err(in_json)
}

/// A layer's config as Keras 3 serializes it (`keras.layers.serialize(layer)`), JSON text that
/// [`layer_from_config`] (here, or `keras.layers.deserialize` in Keras 3) rebuilds it from.
///
/// # Errors
/// [`Error::Unsupported`] for an option Keras 3 has no name for (Keras 2's `hard_sigmoid`).
pub fn layer_to_config(layer: &dyn crate::Layer) -> Result<String> {
    Ok(config::layer_entry(layer)?.to_string())
}

/// A model from its JSON config, as Keras's `keras.models.model_from_json`: the layers, their
/// options and names, with fresh weights from their initializers. Takes what `model.to_json()`
/// returns in tf_keras 2.x and in Keras 3 (the `config.json` of a `.keras` file too).
///
/// ```
/// use seqnn::{model_from_json, Sequential, LSTM};
/// let mut model = Sequential::new();
/// model.add(LSTM::new(4).input_shape((6, 3)))?;
/// let copy = model_from_json(&model.to_json()?)?;
/// assert_eq!(copy.summary()?, model.summary()?);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// [`Error::File`] (its path `<json>`) for JSON that is not a Keras model config;
/// [`Error::Unsupported`] for a layer or option seqnn does not have.
pub fn model_from_json(json: &str) -> Result<Sequential> {
    any_from_json(json)?.into_sequential()
}

/// [`model_from_json`] for a model of either kind.
///
/// # Errors
/// As [`model_from_json`], without the error for a Functional model.
pub fn any_from_json(json: &str) -> Result<AnyModel> {
    let model = config::model_from_config(json, config::Dialect::of_json(json))
        .map_err(|e| match e {
            e @ Error::Unsupported { .. } => e,
            other => other.in_file(Path::new("<json>")),
        })?
        .model;
    Ok(match model {
        Loaded::Sequential(mut m) => {
            m.initialize_missing_weights();
            AnyModel::Sequential(m)
        }
        Loaded::Functional(mut m) => {
            crate::Layer::initialize(&mut m);
            AnyModel::Functional(m)
        }
    })
}

#[cfg_attr(docsrs, doc(cfg(feature = "keras")))]
impl Sequential {
    /// The model's config as JSON, as Keras 3's `model.to_json()`: what `model_from_json`
    /// (here or in Keras 3) rebuilds the model from, without its weights.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] for an unbuilt model; [`Error::Unsupported`] for an option Keras 3
    /// has no name for (Keras 2's `hard_sigmoid`).
    #[must_use = "the JSON is returned, not written anywhere"]
    pub fn to_json(&self) -> Result<String> {
        let input = self.input_shape().ok_or_else(|| Error::NotBuilt {
            name: self.name().to_string(),
        })?;
        Ok(writer::model_config(self, &input)?.to_string())
    }

    /// Saves the model as a Keras 3 `.keras` archive (`config.json`, `metadata.json`,
    /// `model.weights.h5`), which `keras.models.load_model` opens.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] for an unbuilt model; [`Error::File`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = writer::keras_archive(self).map_err(|e| match e {
            e @ Error::File { .. } => e.in_file(path),
            other => other,
        })?;
        write_atomic(path, &bytes)
    }

    /// Saves the weights as a Keras 3 `.weights.h5` file (Keras 3's
    /// `model.save_weights("x.weights.h5")`), which [`load_weights`](Sequential::load_weights)
    /// and Keras 3's `load_weights` read.
    ///
    /// ```
    /// use seqnn::{Dense, Sequential};
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(2).input_dim(3))?;
    /// let path = std::env::temp_dir().join("seqnn_doc_save_weights.weights.h5");
    /// model.save_weights(&path)?;
    /// let mut copy = seqnn::model_from_json(&model.to_json()?)?;
    /// copy.load_weights(&path)?;
    /// assert_eq!(copy.get_weights(), model.get_weights());
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), seqnn::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotBuilt`] for an unbuilt model; [`Error::File`] when the file cannot be
    /// written. A save is atomic: a failure leaves the file that was there.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !self.is_built() {
            return Err(Error::NotBuilt {
                name: self.name().to_string(),
            });
        }
        let optimizer = self.compiled().map(|c| c.optimizer());
        let bytes = writer::weights_h5(self.name(), self.layers(), optimizer)
            .map_err(|e| e.in_file(path))?;
        write_atomic(path, &bytes)
    }

    /// Loads weights into this model from a `.weights.h5` file (Keras 3's `save_weights`), or
    /// from the weights of a `.keras` or legacy `.h5` file saved from a model with the same
    /// structure. Every shape is checked before anything changes.
    ///
    /// A compiled model also takes the optimizer's state a `.keras` or legacy `.h5` file
    /// holds for an optimizer of its own optimizer's class, as Keras 3's `load_weights` does
    /// (so that training goes on where the file's run stopped); the state of another class is
    /// skipped, as Keras skips it. A `.weights.h5` gives the weights alone.
    ///
    /// # Errors
    /// [`Error::File`] for a damaged file, or weights or optimizer state that do not fit the
    /// model; the weights and the optimizer are as they were then.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !self.is_built() {
            return Err(Error::NotBuilt {
                name: self.name().to_string(),
            });
        }
        let (weights, compiled) = read_checkpoint(path, self, self.layers(), self.compiled())?;
        self.set_weights(&weights).map_err(|e| e.in_file(path))?;
        if let Some(compiled) = compiled {
            self.compile_with(compiled);
        }
        Ok(())
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "keras")))]
impl Model {
    /// Loads a Functional model from a Keras file (`.keras` of Keras 3 or tf_keras, legacy
    /// `.h5`), as Keras's `keras.models.load_model`.
    ///
    /// # Errors
    /// As [`load_model`]; a Sequential model's file is refused with a pointer to it.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        load_any(path)?.into_functional()
    }

    /// [`load`](Model::load) from a file's bytes.
    ///
    /// # Errors
    /// As [`load`](Model::load).
    pub fn load_from_bytes(bytes: &[u8]) -> Result<Model> {
        load_any_from_bytes(bytes)?.into_functional()
    }

    /// The model's config as JSON, as Keras 3's `model.to_json()`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an option Keras 3 has no name for.
    #[must_use = "the JSON is returned, not written anywhere"]
    pub fn to_json(&self) -> Result<String> {
        Ok(writer::functional_config(self)?.to_string())
    }

    /// Saves the model as a Keras 3 `.keras` archive, which `keras.models.load_model` opens.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer option a Keras file cannot hold; [`Error::File`]
    /// when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = writer::functional_archive(self).map_err(|e| match e {
            e @ Error::File { .. } => e.in_file(path),
            other => other,
        })?;
        write_atomic(path, &bytes)
    }

    /// Saves the weights as a Keras 3 `.weights.h5` file, as
    /// [`Sequential::save_weights`].
    ///
    /// # Errors
    /// [`Error::File`] when the file cannot be written; a failure leaves the file that was
    /// there.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let optimizer = self.compiled().map(|c| c.optimizer());
        let bytes = writer::weights_h5(self.name(), self.layers(), optimizer)
            .map_err(|e| e.in_file(path))?;
        write_atomic(path, &bytes)
    }

    /// Loads weights into this model from a `.weights.h5` file (Keras 3's `save_weights`), or
    /// from the weights of a `.keras` or legacy `.h5` file saved from a model of the same
    /// structure, with the optimizer's state as [`Sequential::load_weights`] takes it. Every
    /// shape is checked before anything changes.
    ///
    /// # Errors
    /// [`Error::File`] for a damaged file, or weights or optimizer state that do not fit the
    /// model; the weights and the optimizer are as they were then.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (weights, compiled) = read_checkpoint(path, self, self.layers(), self.compiled())?;
        self.set_weights(&weights).map_err(|e| e.in_file(path))?;
        if let Some(compiled) = compiled {
            self.compile_with(compiled);
        }
        Ok(())
    }
}

/// The layers of a model being trained (a [`Sequential`] or a [`Model`] behind `&dyn Layer`),
/// which its Keras files list; an [`Error::Unsupported`] for another layer.
fn layers_of(layer: &dyn crate::Layer) -> Result<&[Box<dyn crate::Layer>]> {
    let any: &dyn std::any::Any = layer;
    match (
        any.downcast_ref::<Sequential>(),
        any.downcast_ref::<Model>(),
    ) {
        (Some(m), _) if !m.is_built() => Err(Error::NotBuilt {
            name: m.name().to_string(),
        }),
        (Some(m), _) => Ok(m.layers()),
        (_, Some(m)) => Ok(m.layers()),
        _ => Err(not_a_model(layer)),
    }
}

/// The error for a layer that is neither a [`Sequential`] nor a [`Model`], which Keras files
/// cannot hold alone.
fn not_a_model(layer: &dyn crate::Layer) -> Error {
    Error::Unsupported {
        layer: layer.name().to_string(),
        class: "Layer".into(),
        message: "only a Sequential or a Functional model can be saved to a Keras file".into(),
    }
}

/// Saves a model being trained (a [`Sequential`] or a [`Model`] behind `&dyn Layer`, its
/// compile configuration apart) as a `.keras` archive, or its weights as `.weights.h5` with
/// the optimizer's state (Keras 3's `save_weights` of a compiled model): what a checkpoint
/// writes.
pub(crate) fn save_layer(
    layer: &dyn crate::Layer,
    compiled: &crate::Compiled,
    path: &Path,
    weights_only: bool,
) -> Result<()> {
    let layers = layers_of(layer)?;
    if weights_only {
        let bytes = writer::weights_h5(layer.name(), layers, Some(compiled.optimizer()))
            .map_err(|e| e.in_file(path))?;
        return write_atomic(path, &bytes);
    }
    // During `fit` the compile configuration is held apart from the model: a copy with it is
    // saved, so the file loads compiled.
    let any: &dyn std::any::Any = layer;
    if let Some(m) = any.downcast_ref::<Sequential>() {
        let mut copy = m.clone();
        copy.compile_with(compiled.clone());
        return copy.save(path);
    }
    let Some(m) = any.downcast_ref::<Model>() else {
        return Err(not_a_model(layer));
    };
    let mut copy = m.clone();
    copy.compile_with(compiled.clone());
    copy.save(path)
}

/// What a Keras 3 `.weights.h5` file (`save_weights` of a compiled model: the weights and
/// `optimizer/vars`) holds for a model being trained: its weights, and `compiled` with the
/// file's optimizer state (`None` when the file holds none, or that of an optimizer before
/// its first step). Everything is checked, nothing is set: the caller sets both.
///
/// Unlike [`Sequential::load_weights`], the optimizer's state is read without the file's
/// optimizer class (a `.weights.h5` does not name it): its variables must fit the model's
/// optimizer, in number and shapes.
pub(crate) fn read_training_weights(
    layer: &dyn crate::Layer,
    compiled: &crate::Compiled,
    path: &Path,
) -> Result<(Vec<ArrayD<f32>>, Option<crate::Compiled>)> {
    let layers = layers_of(layer)?;
    let bytes = read_file(path)?;
    let read = || -> std::result::Result<_, LoadError> {
        if !hdf5_pure::is_hdf5_bytes(&bytes) {
            return Err("not a Keras 3 .weights.h5 file: it is not HDF5".into());
        }
        let file = hdf5::open(bytes)?;
        let weights = archive::weights(&file, layers)?;
        let restored = optimizer_state::with_state(
            layer,
            Some(compiled),
            &file,
            optimizer_state::Stored::Vars(config::Dialect::Keras3),
            None,
        )?;
        Ok((weights, restored))
    };
    read().map_err(|e| in_file(e, path))
}

/// The temporary file beside `path` that an atomic write goes through:
/// `.<file name>.<process id>.tmp`, in the same directory.
pub(crate) fn temporary_beside(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically: to a temporary file of the same directory, flushed to
/// the disk, then renamed over `path`. On any failure the temporary file is removed and the
/// file at `path`, if any, is as it was.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = temporary_beside(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e));
    drop(file);
    let done = written.and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Checks that files can be written into `dir` (made if missing): a probe file is written and
/// removed.
pub(crate) fn check_writable(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = temporary_beside(&dir.join("seqnn-probe"));
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

/// [`checkpoint_of`] the file at `path`, its errors naming it.
fn read_checkpoint(
    path: &Path,
    model: &dyn crate::Layer,
    layers: &[Box<dyn crate::Layer>],
    compiled: Option<&crate::Compiled>,
) -> Result<(Vec<ArrayD<f32>>, Option<crate::Compiled>)> {
    let bytes = read_file(path)?;
    checkpoint_of(bytes, model, layers, compiled).map_err(|e| in_file(e, path))
}

/// What a weights file or a model file of either format holds for `model`: its weights, and
/// `compiled` with the file's optimizer state (`None` when there is none to take; see
/// [`Sequential::load_weights`]).
fn checkpoint_of(
    bytes: Vec<u8>,
    model: &dyn crate::Layer,
    layers: &[Box<dyn crate::Layer>],
    compiled: Option<&crate::Compiled>,
) -> std::result::Result<(Vec<ArrayD<f32>>, Option<crate::Compiled>), LoadError> {
    use optimizer_state::{with_state, Stored};
    // The class of the file's own optimizer, from its compile configuration.
    let class_in = |config: &serde_json::Value, dialect: config::Dialect| {
        compile::compiled_from(config, compile::loss_dialect(dialect), &[String::new()])
            .ok()
            .flatten()
            .map(|c| c.optimizer().class_name())
    };
    if bytes.starts_with(b"PK") {
        let a = archive::read(&bytes)?;
        let weights = archive::weights(&a.weights, layers)?;
        let dialect = config::Dialect::from_version(a.keras_version.as_deref());
        let class = class_in(&compile::compile_config_of(&a.config), dialect);
        let Some(class) = class else {
            return Ok((weights, None));
        };
        let restored = with_state(
            model,
            compiled,
            &a.weights,
            Stored::Vars(dialect),
            Some(class),
        )?;
        Ok((weights, restored))
    } else if hdf5_pure::is_hdf5_bytes(&bytes) {
        let file = hdf5::open(bytes)?;
        if legacy::is_full_model(&file) {
            let weights = legacy::weights(&file, "model_weights", layers, &stored_layouts(&file))?;
            let root = hdf5::attrs(&file, "/")?;
            let dialect =
                config::Dialect::from_version(hdf5::attr_string(&root, "keras_version").as_deref());
            let config = hdf5::attr_string(&root, "training_config")
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let Some(class) = class_in(&config, dialect) else {
                return Ok((weights, None));
            };
            let restored =
                with_state(model, compiled, &file, Stored::Legacy(dialect), Some(class))?;
            Ok((weights, restored))
        } else if legacy::is_weights_file(&file) {
            Ok((
                legacy::weights(&file, "/", layers, &Default::default())?,
                None,
            ))
        } else {
            Ok((archive::weights(&file, layers)?, None))
        }
    } else {
        Err("not a Keras weights file: neither HDF5 nor a .keras archive".into())
    }
}
