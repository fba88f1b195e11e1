#!/usr/bin/env python3
"""Layer-level fixtures of the normalization, reshaping and noise layers (tests/layers_norm.rs):
BatchNormalization (at inference, with moving statistics away from their initial values),
LayerNormalization, Reshape, Permute, SpatialDropout1D, GaussianNoise, GaussianDropout and
ActivityRegularization, each in tf_keras 2.21 and Keras 3.15 (LayerNormalization's rms_scaling
in Keras 3 only, which alone has it).

Masks ride on the input tensors (write_case's keras_masks), as a Masking or Embedding layer
upstream leaves them: BatchNormalization, LayerNormalization and the noise layers pass them on,
Reshape and Permute drop them.

    .venv-ref/bin/python tools/keras_reference/generate_layers_norm.py
"""

from pathlib import Path

import numpy as np

from layer_fixtures import write_case

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "layers" / "norm"
BY = "tools/keras_reference/generate_layers_norm.py"

MASK = np.array([[True, True, True, False], [True, True, False, False], [True, False, False, False]])
MASKED = {"masks": [MASK], "keras_masks": True}


def positive(*indices):
    """Weights drawn from (-0.6, 0.6), but from (0.2, 1.5) at `indices`: the variances and
    standard deviations, which must stay positive."""

    def make(default, rng):
        return [rng.uniform(0.2, 1.5, size=w.shape) if i in indices
                else rng.uniform(-0.6, 0.6, size=w.shape) for i, w in enumerate(default)]

    return make


BOTH = ("tf", "k3")

# (case, layer, input shapes without the batch, write_case options, libraries)
CASES = [
    # gamma, beta, moving_mean, moving_variance
    ("bn_2d", lambda L: L.BatchNormalization(), [(5,)], {"weights": positive(3)}, BOTH),
    ("bn_3d_masked", lambda L: L.BatchNormalization(), [(4, 3)],
     {"weights": positive(3), **MASKED}, BOTH),
    ("bn_axis1", lambda L: L.BatchNormalization(axis=1), [(4, 3)],
     {"weights": positive(3)}, BOTH),
    # Rank 4: tf_keras's fused kernel (NCHW for axis 1, NHWC for axis -1).
    ("bn_4d_axis1", lambda L: L.BatchNormalization(axis=1), [(2, 3, 4)],
     {"weights": positive(3)}, BOTH),
    ("bn_4d_last", lambda L: L.BatchNormalization(epsilon=1e-5), [(2, 3, 4)],
     {"weights": positive(3)}, BOTH),
    # gamma, moving_mean, moving_variance
    ("bn_no_center", lambda L: L.BatchNormalization(center=False, epsilon=0.01), [(4, 3)],
     {"weights": positive(2)}, BOTH),
    # beta, moving_mean, moving_variance
    ("bn_no_scale", lambda L: L.BatchNormalization(scale=False), [(6,)],
     {"weights": positive(2)}, BOTH),
    ("bn_plain_axis_minus2", lambda L: L.BatchNormalization(center=False, scale=False, axis=-2),
     [(4, 3)], {"weights": positive(1)}, BOTH),
    # ..., moving_variance, moving_stddev, renorm_mean, renorm_stddev
    ("bn_renorm", lambda L: L.BatchNormalization(renorm=True, momentum=0.9), [(4, 3)],
     {"weights": positive(3, 4, 6)}, BOTH),
    ("ln_last_masked", lambda L: L.LayerNormalization(), [(4, 6)], MASKED, BOTH),
    ("ln_axis1", lambda L: L.LayerNormalization(axis=1), [(4, 6)], {}, BOTH),
    ("ln_axes_12", lambda L: L.LayerNormalization(axis=[1, 2]), [(4, 6)], {}, BOTH),
    # Unsorted and mixed-sign lists: tf_keras shapes gamma in the order given, Keras 3 sorts it.
    ("ln_axes_21", lambda L: L.LayerNormalization(axis=[2, 1]), [(4, 6)], {}, BOTH),
    ("ln_axes_1_minus1", lambda L: L.LayerNormalization(axis=[1, -1]), [(3, 4, 5)], {}, BOTH),
    ("ln_no_center_no_scale", lambda L: L.LayerNormalization(center=False, scale=False), [(8,)],
     {}, BOTH),
    # epsilon below 1.001e-5: tf_keras's unfused path.
    ("ln_small_epsilon", lambda L: L.LayerNormalization(epsilon=1e-6, center=False), [(7,)], {},
     BOTH),
    ("ln_rms_scaling_masked", lambda L: L.LayerNormalization(rms_scaling=True), [(4, 6)], MASKED,
     ("k3",)),
    ("reshape_minus1_masked", lambda L: L.Reshape((-1, 2)), [(4, 6)], MASKED, BOTH),
    ("reshape_flat", lambda L: L.Reshape((24,)), [(4, 6)], {}, BOTH),
    ("reshape_3d", lambda L: L.Reshape((2, -1, 3)), [(4, 6)], {}, BOTH),
    ("reshape_up", lambda L: L.Reshape((3, 2, 2)), [(12,)], {}, BOTH),
    ("reshape_unknown_time", lambda L: L.Reshape((-1, 3)), [(None, 6)],
     {"inputs": [np.random.default_rng(7).uniform(-1, 1, (3, 4, 6)).astype(np.float32)]}, BOTH),
    ("permute_21_masked", lambda L: L.Permute((2, 1)), [(4, 6)], MASKED, BOTH),
    ("permute_312", lambda L: L.Permute((3, 1, 2)), [(2, 3, 4)], {}, BOTH),
    ("spatial_dropout1d_masked", lambda L: L.SpatialDropout1D(0.3), [(4, 6)], MASKED, BOTH),
    ("gaussian_noise_masked", lambda L: L.GaussianNoise(0.5), [(4, 6)], MASKED, BOTH),
    ("gaussian_dropout", lambda L: L.GaussianDropout(0.4), [(5,)], {}, BOTH),
    ("activity_regularization_masked", lambda L: L.ActivityRegularization(0.01, 0.02), [(4, 6)],
     MASKED, BOTH),
]


def main():
    for case, make, shapes, kw, libs in CASES:
        for lib in libs:
            print(write_case(OUT, case, lib, make, shapes, generated_by=BY, **kw))


if __name__ == "__main__":
    main()
