//! Keras's `Embedding`: a lookup table from integer ids to vectors.

use ndarray::{Array2, ArrayD, ArrayViewD, Ix2, IxDyn};

use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layer::{
    check_not_empty, check_specs, check_weights, common_builders, layer_plumbing, no_weights,
    output_grad, single_input, single_shape, CallContext, Gradients, InputDecl, Layer, LayerName,
    SavedForBackward, WeightSpec,
};
use crate::limits;
use crate::shape::Shape;
use crate::{init::sample2, layer::owned2};

/// Keras's `Embedding`: turns integer ids into dense vectors, one row of a table per id.
///
/// ```text
/// y[..., :] = embeddings[x[...], :]
/// mask      = x != 0                  (with mask_zero)
/// ```
///
/// - Input: ids in `[0, input_dim)`, as `f32` whole numbers, of any rank from 1 up; usually
///   `(batch, timesteps)`. Without a declaration it takes `(None, None)`, as Keras (so a model
///   that starts with an Embedding is built at once).
/// - Output: the input's shape followed by `output_dim`: `(batch, timesteps, output_dim)`.
/// - Weights: `embeddings (input_dim, output_dim)`, so `input_dim·output_dim` parameters.
/// - Mask: with [`mask_zero`](Embedding::mask_zero), a 2-D input makes the mask `id != 0` that
///   recurrent layers downstream read (other ranks make none); an incoming mask is dropped.
///
/// Options, with Keras's defaults: `mask_zero` false, `embeddings_initializer` uniform
/// (`random_uniform` in ±0.05), `trainable` true.
///
/// ```
/// use seqnn::{Embedding, Sequential, SimpleRNN};
/// // model.add(Embedding(20, 4, input_length=6))
/// // model.add(SimpleRNN(3))
/// let mut model = Sequential::new();
/// model.add(Embedding::new(20, 4).input_length(6))?;
/// model.add(SimpleRNN::new(3))?;
/// assert_eq!(model.layers()[0].count_params(), 80); // 20·4
/// let ids = ndarray::array![[1.0_f32, 5.0, 19.0, 0.0, 0.0, 0.0]];
/// assert_eq!(model.predict(&ids)?.shape(), &[1, 3]);
/// # Ok::<(), seqnn::Error>(())
/// ```
///
/// # Errors
/// Adding or building it fails with [`Error::InvalidArgument`] for a zero `input_dim` or
/// `output_dim` (Keras's message), or for an input that does not match `input_length`. A call
/// fails with [`Error::InvalidArgument`] for an id that is negative, not a whole number (NaN,
/// infinite or fractional) or not below `input_dim`, naming the id and its position in Keras's
/// words: `indices[0,2] = 25 is not in [0, 20)`.
#[derive(Debug, Clone)]
pub struct Embedding {
    name: LayerName,
    /// Keras's regularizers and constraints of the weights, and the activity regularizer.
    rules: crate::train::WeightRules,
    input: InputDecl,
    input_length: Option<usize>,
    input_dim: usize,
    output_dim: usize,
    mask_zero: bool,
    embeddings_initializer: Initializer,
    trainable: bool,
    built: bool,
    embeddings: Option<Box<Array2<f32>>>,
}

impl Embedding {
    /// An embedding of a vocabulary of `input_dim` ids into vectors of `output_dim` values, as
    /// Keras's `Embedding(input_dim, output_dim)`.
    ///
    /// A zero size is refused when the layer is added to a model or built.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            name: LayerName::new("embedding"),
            rules: crate::train::WeightRules::new(),
            input: InputDecl::default(),
            input_length: None,
            input_dim,
            output_dim,
            mask_zero: false,
            embeddings_initializer: Initializer::RandomUniform,
            trainable: true,
            built: false,
            embeddings: None,
        }
    }

    /// Keras's `input_length`: the number of ids per sample, declaring the input
    /// `(None, input_length)`. `input_shape` and `batch_input_shape` take precedence for the
    /// declaration, but the layer then checks that its input has this length.
    #[must_use]
    pub fn input_length(mut self, timesteps: usize) -> Self {
        self.input_length = Some(timesteps);
        self
    }

    /// Keras's `mask_zero`: id 0 is padding, and the layer makes the mask `id != 0`. Default
    /// false.
    #[must_use]
    pub fn with_mask_zero(mut self, yes: bool) -> Self {
        self.mask_zero = yes;
        self
    }

    /// Keras's `embeddings_initializer`. Default `uniform` ([`Initializer::RandomUniform`],
    /// ±0.05).
    #[must_use]
    pub fn with_embeddings_initializer(mut self, init: Initializer) -> Self {
        self.embeddings_initializer = init;
        self
    }

    common_builders!("embedding");

    crate::layer::rule_builders! {
        "embeddings", "the embeddings matrix" => with_embeddings_regularizer, with_embeddings_constraint;
    }

    /// The vocabulary size (Keras's `input_dim`).
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// The size of each vector (Keras's `output_dim`).
    pub fn output_dim(&self) -> usize {
        self.output_dim
    }

    /// Whether id 0 makes a mask.
    pub fn mask_zero(&self) -> bool {
        self.mask_zero
    }

    /// The table's initializer.
    pub fn embeddings_initializer(&self) -> Initializer {
        self.embeddings_initializer
    }

    /// Keras's check of the sizes, in its words.
    fn validate(&self) -> Result<()> {
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(Error::InvalidArgument {
                layer: self.name.get().to_string(),
                message: format!(
                    "Both `input_dim` and `output_dim` should be positive, Received input_dim = \
                     {} and output_dim = {}",
                    self.input_dim, self.output_dim
                ),
            });
        }
        check_specs(
            self.name.get(),
            &[("embeddings", &[self.input_dim, self.output_dim])],
        )
    }

    /// The embedding of every id of `input`, row-major, `(input.len(), output_dim)`.
    fn lookup(&self, table: &Array2<f32>, input: &ArrayViewD<'_, f32>) -> Result<Array2<f32>> {
        let width = self.output_dim;
        let table = table
            .as_slice()
            .expect("the table is kept in standard layout");
        let mut out = Array2::<f32>::zeros((input.len(), width));
        let rows = out
            .as_slice_mut()
            .expect("a fresh array is in standard layout")
            .chunks_exact_mut(width);
        for (k, (&id, row)) in input.iter().zip(rows).enumerate() {
            let i = self
                .index(id)
                .ok_or_else(|| self.bad_id(id, k, input.shape()))?;
            row.copy_from_slice(&table[i * width..(i + 1) * width]);
        }
        Ok(out)
    }

    /// The row of `id`, if it is a whole number in `[0, input_dim)`.
    fn index(&self, id: f32) -> Option<usize> {
        let ok = id.is_finite()
            && id.fract() == 0.0
            && id >= 0.0
            && f64::from(id) < self.input_dim as f64;
        ok.then_some(id as usize)
    }

    /// Keras's `indices[0,2] = 25 is not in [0, 20)`, for the `k`-th id in logical order.
    fn bad_id(&self, id: f32, k: usize, shape: &[usize]) -> Error {
        let at = crate::shape::unravel(k, shape)
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let vocab = self.input_dim;
        let message = if id.is_finite() && id.fract() == 0.0 {
            format!("indices[{at}] = {id} is not in [0, {vocab})")
        } else {
            format!("indices[{at}] = {id} is not an integer id in [0, {vocab})")
        };
        Error::InvalidArgument {
            layer: self.name.get().to_string(),
            message,
        }
    }
}

impl Layer for Embedding {
    layer_plumbing!();
    crate::layer::rule_methods!();

    fn class_name(&self) -> &'static str {
        "Embedding"
    }

    fn declared_input_shape(&self) -> Result<Option<Shape>> {
        self.validate()?;
        match self.input.resolve(self.name.get())? {
            Some(s) => Ok(Some(s)),
            // As Keras: input_shape=(input_length,), or (None,) without it.
            None => Ok(Some(Shape::new(vec![
                self.input.batch_size,
                self.input_length,
            ]))),
        }
    }

    fn compute_output_shape(&self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        self.validate()?;
        let name = self.name.get();
        let input = single_shape(name, inputs)?;
        if input.rank() == 0 {
            return Err(Error::IncompatibleRank {
                layer: name.to_string(),
                expected: 1,
                found: 0,
                shape: input.clone(),
            });
        }
        let mut dims = input.dims().to_vec();
        if let Some(n) = self.input_length {
            // Keras's check: one timestep axis, of that length where it is known; the output
            // takes the declared length where the input's is unknown.
            let fits = input.rank() == 2 && input.dim(1).is_none_or(|t| t == n);
            if !fits {
                return Err(Error::InvalidArgument {
                    layer: name.to_string(),
                    message: format!(
                        "\"input_length\" is {n}, but received input has shape {input}"
                    ),
                });
            }
            dims[1] = Some(n);
        }
        dims.push(Some(self.output_dim));
        let out = Shape::new(dims);
        limits::check_tensor(name, "output", &out)?;
        Ok(vec![out])
    }

    fn build(&mut self, inputs: &[Shape]) -> Result<Vec<Shape>> {
        let out = self.compute_output_shape(inputs)?;
        self.built = true;
        Ok(out)
    }

    fn is_built(&self) -> bool {
        self.built
    }

    fn weight_specs(&self) -> Vec<WeightSpec> {
        if self.built {
            vec![WeightSpec::new(
                "embeddings",
                vec![self.input_dim, self.output_dim],
            )]
        } else {
            Vec::new()
        }
    }

    fn initialize(&mut self) {
        if self.built {
            self.embeddings = Some(Box::new(sample2(
                self.embeddings_initializer,
                self.input_dim,
                self.output_dim,
            )));
        }
    }

    fn weights(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.embeddings
            .iter()
            .map(|e| e.view().into_dyn())
            .collect()
    }

    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if !self.built {
            return Err(no_weights(self.name.get()));
        }
        check_weights(self.name.get(), &self.weight_specs(), weights)?;
        self.embeddings = Some(Box::new(owned2(&weights[0])));
        Ok(())
    }

    fn call(
        &self,
        inputs: &[ArrayViewD<'_, f32>],
        ctx: &mut CallContext,
    ) -> Result<Vec<ArrayD<f32>>> {
        let name = self.name.get();
        let input = single_input(name, inputs)?;
        let table = self.embeddings.as_ref().ok_or_else(|| no_weights(name))?;
        let found = Shape::known(input.shape());
        if input.ndim() == 0 {
            return Err(Error::IncompatibleRank {
                layer: name.to_string(),
                expected: 1,
                found: 0,
                shape: found,
            });
        }
        check_not_empty(name, input.shape())?;
        let mut out_shape = input.shape().to_vec();
        out_shape.push(self.output_dim);
        limits::check_dims(name, "output", &out_shape)?;
        let rows = self.lookup(table, input)?;
        // As Keras: mask_zero masks the ids equal to 0, of a (batch, timesteps) input.
        let mask = match input.view().into_dimensionality::<Ix2>() {
            Ok(ids) if self.mask_zero => Some(ids.mapv(|id| id != 0.0)),
            _ => None,
        };
        ctx.set_output_masks(vec![mask]);
        if ctx.records() {
            // The ids were checked by the lookup: whole numbers within the table.
            let ids: Vec<usize> = input.iter().map(|&id| id as usize).collect();
            ctx.save_for_backward(Box::new(EmbeddingSaved {
                ids,
                out_shape: out_shape.clone(),
            }));
        }
        Ok(vec![rows
            .into_shape_with_order(IxDyn(&out_shape))
            .expect("one row per id fills the output shape")])
    }

    /// The table's gradient gathers each output row's gradient into the row of its id (ids
    /// met several times add up; rows never looked up get zeros). Ids take no gradient.
    fn backward(
        &self,
        saved: &SavedForBackward,
        output_grads: &[Option<ArrayViewD<'_, f32>>],
    ) -> Result<Gradients> {
        let name = self.name.get();
        let saved: &EmbeddingSaved = saved.get(name)?;
        let g = output_grad(name, output_grads, 0, &saved.out_shape)?;
        let mut table = Array2::<f32>::zeros((self.input_dim, self.output_dim));
        let rows = g
            .as_slice()
            .expect("standard layout")
            .chunks_exact(self.output_dim);
        for (&id, row) in saved.ids.iter().zip(rows) {
            table
                .row_mut(id)
                .iter_mut()
                .zip(row)
                .for_each(|(t, &v)| *t += v);
        }
        Ok(Gradients {
            inputs: vec![None],
            weights: vec![table.into_dyn()],
        })
    }
}

/// What a training call of an Embedding keeps: the ids looked up, in order, and the output's
/// shape.
#[derive(Debug)]
struct EmbeddingSaved {
    ids: Vec<usize>,
    out_shape: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{apply, apply_masked};
    use ndarray::array;

    /// Embedding(3, 2) with rows [0, 0], [1, 10], [2, 20]: row i is [i, 10·i].
    fn three_by_two(mask_zero: bool) -> Result<Embedding> {
        let mut e = Embedding::new(3, 2).with_mask_zero(mask_zero);
        e.build(&[Shape::new(vec![None, None])])?;
        e.set_weights(&[array![[0.0_f32, 0.0], [1.0, 10.0], [2.0, 20.0]].into_dyn()])?;
        Ok(e)
    }

    #[test]
    fn looks_up_one_row_per_id() -> Result<()> {
        let e = three_by_two(false)?;
        let y = apply(&e, array![[2.0_f32, 1.0, 2.0]].into_dyn().view())?;
        // ids 2, 1, 2 -> rows [2, 20], [1, 10], [2, 20]
        assert_eq!(
            y,
            array![[[2.0_f32, 20.0], [1.0, 10.0], [2.0, 20.0]]].into_dyn()
        );
        // Any rank: (2,) ids give (2, 2).
        let y = apply(&e, array![0.0_f32, 1.0].into_dyn().view())?;
        assert_eq!(y, array![[0.0_f32, 0.0], [1.0, 10.0]].into_dyn());
        Ok(())
    }

    #[test]
    fn a_bad_id_names_the_id_its_position_and_the_vocabulary() -> Result<()> {
        let e = three_by_two(false)?;
        let err = apply(
            &e,
            array![[0.0_f32, 1.0, 1.0], [1.0, 2.0, 25.0]]
                .into_dyn()
                .view(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert_eq!(
            err.to_string(),
            "layer \"embedding\": indices[1,2] = 25 is not in [0, 3)"
        );
        let at = |x: ArrayD<f32>| apply(&e, x.view()).unwrap_err().to_string();
        assert_eq!(
            at(array![[1.0_f32, -1.0]].into_dyn()),
            "layer \"embedding\": indices[0,1] = -1 is not in [0, 3)"
        );
        assert_eq!(
            at(array![[3.0_f32]].into_dyn()),
            "layer \"embedding\": indices[0,0] = 3 is not in [0, 3)"
        );
        assert_eq!(
            at(array![[1.0_f32, 2.5]].into_dyn()),
            "layer \"embedding\": indices[0,1] = 2.5 is not an integer id in [0, 3)"
        );
        assert_eq!(
            at(array![[[0.0_f32, f32::NAN]]].into_dyn()),
            "layer \"embedding\": indices[0,0,1] = NaN is not an integer id in [0, 3)"
        );
        assert_eq!(
            at(array![f32::INFINITY].into_dyn()),
            "layer \"embedding\": indices[0] = inf is not an integer id in [0, 3)"
        );
        Ok(())
    }

    #[test]
    fn mask_zero_makes_the_mask_and_drops_the_incoming_one() -> Result<()> {
        let ids = array![[1.0_f32, 2.0, 0.0], [0.0, 1.0, 0.0]];
        let incoming = array![[false, false, false], [true, true, true]];
        let e = three_by_two(true)?;
        let (y, mut mask) = apply_masked(&e, &[ids.view().into_dyn()], Some(incoming.view()))?;
        let (y, mask) = (&y[0], mask.swap_remove(0));
        assert_eq!(y.shape(), &[2, 3, 2]);
        assert_eq!(
            mask,
            Some(array![[true, true, false], [false, true, false]])
        );
        let plain = three_by_two(false)?;
        let (_, mut mask) = apply_masked(&plain, &[ids.view().into_dyn()], Some(incoming.view()))?;
        let mask = mask.swap_remove(0);
        assert_eq!(mask, None);
        Ok(())
    }

    #[test]
    fn shapes_params_and_declarations_follow_keras() -> Result<()> {
        let mut e = Embedding::new(20, 4);
        // Keras declares input_shape=(None,) when no input_length is given.
        assert_eq!(
            e.declared_input_shape()?,
            Some(Shape::new(vec![None, None]))
        );
        let out = e.build(&[Shape::new(vec![None, Some(6)])])?;
        assert_eq!(out[0].to_string(), "(None, 6, 4)");
        assert_eq!(e.count_params(), 80); // 20·4
        e.initialize();
        // The default initializer is uniform in ±0.05.
        assert!(e.weights()[0].iter().all(|v| v.abs() <= 0.05));

        let e = Embedding::new(20, 4).input_length(6);
        assert_eq!(e.declared_input_shape()?.unwrap().to_string(), "(None, 6)");
        // The declared length fills an unknown one, as Keras.
        assert_eq!(
            e.compute_output_shape(&[Shape::new(vec![None, None])])?[0].to_string(),
            "(None, 6, 4)"
        );
        let err = e
            .compute_output_shape(&[Shape::new(vec![None, Some(7)])])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"embedding\": \"input_length\" is 6, but received input has shape (None, 7)"
        );
        let e = Embedding::new(20, 4)
            .input_length(6)
            .batch_input_shape((8, 6));
        assert_eq!(e.declared_input_shape()?.unwrap().to_string(), "(8, 6)");
        Ok(())
    }

    #[test]
    fn zero_sizes_are_refused_with_keras_message() {
        let err = Embedding::new(0, 4).declared_input_shape().unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer \"embedding\": Both `input_dim` and `output_dim` should be positive, \
             Received input_dim = 0 and output_dim = 4"
        );
        let mut e = Embedding::new(20, 0);
        assert!(e.build(&[Shape::new(vec![None, None])]).is_err());
        assert!(!e.is_built());
    }
}
