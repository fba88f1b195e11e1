#!/usr/bin/env python3
"""Generate legacy-HDF5 model files exactly as Keras 2.0-2.2 (2017-2019) and
tf.keras of TensorFlow 2.2 wrote them, for seqnn's loader tests: Sequential
models of recurrent layers, and (the second group of cases, built with `Net`)
Sequential and Functional models with the layers users put around them
(Conv1D, MaxPooling1D, BatchNormalization, Reshape, Permute,
SpatialDropout1D, global pooling, Add/Multiply/Concatenate, an
encoder-decoder whose states feed the decoder's initial_state,
TimeDistributed(Conv2D)).

Run from the repository root:

    .venv-ref/bin/python tools/keras_reference/generate_old_files.py

It (re)writes everything in tests/fixtures/old/ (about half a minute):

    <case>.h5          the full-model file ("model.save('x.h5')") of the
                       emulated Keras version
    <case>.json        input, expected output (real tf_keras 2.21 numbers),
                       tf_keras's summary, params, the emulated version, the
                       HDF5 types written, what the case exercises, the sources
    <case>.input.npy   long_sequence only (the 8,800-step input)
    manifest.json      every case and what tf_keras 2.21 does with its file
    README.md          the formats, with their sources, and this command

`generate_old_files.py CASE...` regenerates only those cases (manifest and
README are rewritten from the cases' JSON files); `--dump FILE...` prints
the HDF5 tree of a file with the exact type of every attribute.

No installable Keras writes these files any more (Keras 2.0-2.2 need
TensorFlow 1.x or Theano and Python <= 3.7; h5py >= 3 stores strings
differently from h5py 2.x), so this script writes them itself with h5py,
reproducing, call by call, what these sources do (all read for this script;
each layout detail below cites the file and function it comes from):

  [K208] [K210] [K216] [K220] [K222] [K223] [K224]: keras-team/keras
         releases 2.0.8, 2.1.0, 2.1.6, 2.2.0, 2.2.2, 2.2.3, 2.2.4, read in their PyPI source
         archives Keras-<version>.tar.gz (sha256 digests in SOURCES below)
  [KGIT] the same files in the search index of keras-team/keras:
         keras/engine/saving.py at 376db3cd91bce8e3b075d5a4258d62397f3180ca
         (the 2.2.0-2.2.2 `save_model`) and at
         0246317e5a1082169bd8e980f60937b528a993f6 (the 2.2.3+ H5Dict
         `_serialize_model`, later than 2.2.4 but the same for these files)
  [TF22] tensorflow/tensorflow, TensorFlow 2.2.0 (PyPI
         tensorflow_cpu-2.2.0-cp38-cp38-manylinux2010_x86_64.whl):
         tensorflow/python/keras/saving/hdf5_format.py (also read in the
         search index at 021bfd4e8001ca9ded726921e90d61594c044419),
         .../saving/saving_utils.py, .../engine/{sequential,network,
         base_layer,input_layer}.py, .../layers/recurrent{,_v2}.py,
         .../layers/{convolutional,pooling,normalization{,_v2}}.py,
         .../utils/{generic_utils,tf_utils}.py, .../keras/__init__.py
  [H5PY2] h5py 2.10.0 (PyPI h5py-2.10.0.tar.gz): h5py/_hl/attrs.py
         `AttributeManager.create`, h5py/_hl/base.py `guess_dtype`,
         h5py/_hl/dataset.py `make_new_dset` (track_times)

The exact HDF5 types (the part no current library reproduces by itself):

  * A Python `bytes` scalar assigned to an attribute (`keras_version`,
    `backend`, `model_config`, `training_config` -- all `.encode('utf8')`ed
    by Keras) is stored by h5py 2.x as a VARIABLE-LENGTH ASCII string:
    [H5PY2] attrs.py `create` calls `base.guess_dtype(data)`, which returns
    `h5t.string_dtype(encoding='ascii')` for `type(data) == bytes`. (A
    Python 3 `str` -- tf.keras's root `keras_version` and `backend` --
    becomes a variable-length UTF-8 string.)
  * A Python LIST of bytes (`layer_names`, `weight_names`) has no guessed
    dtype and goes through `numpy.asarray(data)`: a FIXED-LENGTH 'S<n>'
    array (n = longest name), ASCII, null-padded. An empty list (layers
    without weights) becomes `numpy.asarray([])`: float64, shape (0,).
  * h5py >= 3 stores both bytes scalars and lists of bytes as variable-length
    strings, so today's tf_keras files differ here; this script passes the
    h5py 2.x types explicitly.
  * Weight datasets: `create_dataset(name, val.shape, dtype=val.dtype)`,
    contiguous float32, no filters; h5py 2.10 leaves track_times at the
    HDF5 default (True), so every dataset header holds a modification time
    ([H5PY2] dataset.py `make_new_dset`: only `track_times in (True, False)`
    is applied; the default is None). Those times are the only bytes that
    differ between two runs of this script.
  * A weight name containing '/' (all of them: 'lstm_1/kernel:0') makes
    intermediate groups: model_weights/lstm_1/lstm_1/kernel:0.

Conventions as in generate_files.py: rng =
np.random.default_rng(zlib.crc32(case)), weights rng.uniform(-0.6, 0.6)
float32 in the file's weight order (layer order, then weight_names order),
then the input from the same rng; optimizer state (case k224_lstm_dense)
after the input. Expected outputs come from real Keras: tf_keras 2.21
`load_model(file)` + `predict`; where tf_keras cannot read the file the
JSON says why (from tf_keras's source) and uses an equivalent tf_keras
model given the same weights (and where it loads but cannot predict --
CuDNN layers need a GPU -- the equivalent model takes the file's weights
through tf_keras's own `load_weights` conversion). Every case also checks
the equivalent model against the loaded one (they must agree exactly).

check_old_files.py (same folder) runs the real Keras 2.0.8-2.2.4 code on
the same models and compares its files with these: model_config and
training_config are byte-identical, HDF5 trees identical. Its CASES hold the
Sequential cases of the first group; the Keras 2 cases of the second group
were compared the same way (the Keras code quoted above each `net_*`
function run in that Keras with check_old_files.py's machinery, plus
`tf.nn.{convolution,max_pool,...} = tf.compat.v1.nn....` for Keras's
`filter=` calls): byte-identical model_config, identical HDF5 trees.
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import h5py  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore")
import absl.logging  # noqa: E402

absl.logging.set_verbosity(absl.logging.ERROR)

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "fixtures" / "old"
GENERATED_BY = "tools/keras_reference/generate_old_files.py"
VERSIONS = {
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "numpy": np.__version__,
    "h5py": h5py.__version__,
}

# --------------------------------------------------------------------------
# Sources (cited by key in the JSON files and below)
# --------------------------------------------------------------------------

SOURCES = {
    "K208": "keras-team/keras 2.0.8 (PyPI Keras-2.0.8.tar.gz, sha256 "
            "899dc6aaed366f20100b9f80cf1093ea5b43eecc74afd1dc63a4e48dfa776ab9)",
    "K210": "keras-team/keras 2.1.0 (PyPI Keras-2.1.0.tar.gz, sha256 "
            "67a0d66c20fff99312fc280e34c8f6dc3dbb027d4a33c13c79bec3c1173f6909)",
    "K216": "keras-team/keras 2.1.6 (PyPI Keras-2.1.6.tar.gz, sha256 "
            "c14af1081242c25617ade7eb62121d58d01f16e1e744bae9fc4f1f95a417716e)",
    "K220": "keras-team/keras 2.2.0 (PyPI Keras-2.2.0.tar.gz, sha256 "
            "5b8499d157af217f1a5ee33589e774127ebc3e266c833c22cb5afbb0ed1734bf)",
    "K222": "keras-team/keras 2.2.2 (PyPI Keras-2.2.2.tar.gz, sha256 "
            "468d98da104ec5c3dbb10c2ef6bb345ab154f6ca2d722d4c250ef4d6105de17a)",
    "K223": "keras-team/keras 2.2.3 (PyPI Keras-2.2.3.tar.gz, sha256 "
            "694aee60a6f8e0d3d6d3e4967e063b4623e3ca90032f023fd6d16bb5f81d18de)",
    "K224": "keras-team/keras 2.2.4 (PyPI Keras-2.2.4.tar.gz, sha256 "
            "90b610a3dbbf6d257b20a079eba3fdf2eed2158f64066a7c6f7227023fd60bc9)",
    "KGIT": "keras-team/keras keras/engine/saving.py in the search index at "
            "376db3cd91bce8e3b075d5a4258d62397f3180ca (2.2.0-2.2.2 save_model) "
            "and 0246317e5a1082169bd8e980f60937b528a993f6 (2.2.3+ "
            "_serialize_model / H5Dict, the same as 2.2.4 for these files)",
    "TF22": "tensorflow/tensorflow 2.2.0 (PyPI "
            "tensorflow_cpu-2.2.0-cp38-cp38-manylinux2010_x86_64.whl, sha256 "
            "8d1b7c1d45e7f582d8703c0d0a034a60d4bac942b11205bed91fa55981124d60); "
            "hdf5_format.py also in the search index at "
            "021bfd4e8001ca9ded726921e90d61594c044419",
    "H5PY2": "h5py 2.10.0 (PyPI h5py-2.10.0.tar.gz, sha256 "
             "84412798925dc870ffd7107f045d7659e60f5d46d1c70c700375248bf6bf512d)",
    "TFK": "tf_keras 2.21.0 (installed in .venv-ref): "
           "tf_keras/src/saving/legacy/hdf5_format.py",
}

# Layout facts and where each comes from. Keys are cited per case in JSON.
CITES = {
    # --- HDF5 writers -----------------------------------------------------
    "save_k224": "[K224] (and [K223]) keras/engine/saving.py `save_model` -> "
                 "`_serialize_model(model, H5Dict(path, 'w'))`: root attrs "
                 "keras_version, backend, model_config; group model_weights "
                 "(attrs layer_names, backend, keras_version; one group per "
                 "layer with attr weight_names and one dataset per weight); "
                 "then attr training_config and group optimizer_weights if "
                 "compiled; [K224] keras/utils/io_utils.py `H5Dict.__setitem__`"
                 " (bytes -> attrs[...] = val; list -> attrs[...] = val; numpy "
                 "array -> create_dataset(name, shape, dtype)); [KGIT]",
    "save_k222": "[K222] keras/engine/saving.py `save_model` + "
                 "`save_weights_to_hdf5_group` + "
                 "`save_attributes_to_hdf5_group` (same attrs/groups/order as "
                 "2.2.4, written with h5py directly); [KGIT] 376db3cd",
    "save_k21": "[K216]/[K210] keras/models.py `save_model` + "
                "keras/engine/topology.py `save_weights_to_hdf5_group` / "
                "`_save_attributes_to_hdf5_group`; [K208] the same with "
                "`f.attrs['layer_names'] = [...]` set directly",
    "save_tf22": "[TF22] tensorflow/python/keras/saving/hdf5_format.py "
                 "`save_model_to_hdf5` (root attrs from saving_utils.py "
                 "`model_metadata`: keras_version and backend are Python str, "
                 "model_config is json.dumps(...).encode('utf8')) and "
                 "`save_weights_to_hdf5_group` (layer groups created in "
                 "sorted(layers, key=name) order; weight names from "
                 "`_legacy_weights`: trainable then non-trainable)",
    "h5py2_types": "[H5PY2] h5py/_hl/attrs.py `AttributeManager.create` + "
                   "h5py/_hl/base.py `guess_dtype`: bytes scalar -> "
                   "variable-length ASCII string; str -> variable-length "
                   "UTF-8; list of bytes -> numpy.asarray -> fixed-length "
                   "'S<n>'; [] -> float64 (0,); h5py/_hl/dataset.py "
                   "`make_new_dset`: track_times=None keeps the HDF5 default "
                   "(modification times recorded)",
    # --- configs ------------------------------------------------------------
    "seq_dict_k224": "[K224] keras/engine/sequential.py `Sequential.get_config`"
                     ": {'name': 'sequential_1', 'layers': [...]} (the same "
                     "in [K223], where it replaced [K222]'s bare list; "
                     "`from_config` still reads the list)",
    "seq_list": "[K222]/[K220] keras/engine/sequential.py and [K216]/[K210]/"
                "[K208] keras/models.py `Sequential.get_config`: a bare list "
                "[{'class_name', 'config'}, ...] of the added layers (no "
                "InputLayer)",
    "seq_tf22": "[TF22] tensorflow/python/keras/engine/sequential.py "
                "`Sequential.get_config`: {'name', 'layers'} over "
                "`self.layers` (the auto InputLayer is filtered out), plus "
                "'build_input_shape' = network.py `_init_graph_network` "
                "`nest.map_structure(lambda x: x.shape, inputs)` serialized "
                "by util/serialization.py `get_json_type` (TensorShape -> "
                "as_list())",
    "names_k2": "[K224] keras/engine/base_layer.py `Layer.__init__` ([K216]/"
                "[K208] keras/engine/topology.py): name = "
                "_to_snake_case(class name) + '_' + K.get_uid(class name), "
                "counted from 1 per class (lstm_1, dense_1, cu_dnnlstm_1); "
                "network.py `_base_init`: sequential_1",
    "names_tf22": "[TF22] base_layer.py `_init_set_name` -> "
                  "backend.unique_object_name(to_snake_case(cls), "
                  "zero_based=True): lstm, lstm_1, ...; the RNN cell is built "
                  "without an explicit name (recurrent.py LSTM/GRU `__init__`"
                  ": `cell = LSTMCell(...)`), so it is lstm_cell, "
                  "lstm_cell_1, ...",
    "first_layer_k2": "[K224] base_layer.py `Layer.__init__` (and [K208]/"
                      "[K216] topology.py): batch_input_shape and dtype are "
                      "set only when input_shape/batch_input_shape is given, "
                      "so only the first layer's config has them "
                      "(`Layer.get_config`: name, trainable, "
                      "[batch_input_shape, dtype])",
    "base_tf22": "[TF22] base_layer.py `Layer.get_config`: name, trainable, "
                 "[batch_input_shape], dtype (on every layer)",
    "weights_tf_k2": "[K224] backend/tensorflow_backend.py `variable` + "
                     "base_layer.py `Layer.__call__` (`with "
                     "K.name_scope(self.name)` around build): weight names "
                     "'<layer>/<weight>:0'; RNN cells are built by "
                     "recurrent.py `RNN.build` without a scope of their own",
    "weights_theano": "[K216]/[K224] backend/theano_backend.py `variable` "
                      "(theano.shared(name=_prepare_name(name, 'variable'))"
                      " with `_prepare_name` = '/'.join(NAME_SCOPE_STACK) + "
                      "'/' + name): '<layer>/<weight>' with no ':0'",
    "weights_tf22": "[TF22] recurrent.py `RNN.build` (`with "
                    "K.name_scope(self.cell.name)`): "
                    "'<layer>/<cell>/<weight>:0'; Dense '<layer>/<weight>:0'",
    "rnn_k208": "[K208] keras/layers/recurrent.py `Recurrent.get_config` "
                "(return_sequences, return_state, go_backwards, stateful, "
                "unroll, implementation -- default 0, also on SimpleRNN) "
                "then `SimpleRNN/GRU/LSTM.get_config`; no reset_after: the "
                "GRU is the reset-before variant (what GRU(reset_after=False)"
                " computes)",
    "rnn_k210": "[K210] keras/layers/recurrent.py `RNN.get_config` (no "
                "implementation) + `GRU/LSTM.get_config` (implementation, "
                "default 1, at the end; SimpleRNN has none); GRU has no "
                "reset_after yet (added by keras-team/keras PR #9112, first "
                "released in 2.1.5)",
    "rnn_k216": "[K216]/[K224] keras/layers/recurrent.py `GRU.get_config` "
                "ends with implementation, reset_after (default False); "
                "`LSTM.get_config` ends with implementation (default 1)",
    "hard_sigmoid_k2": "[K224] recurrent.py: LSTM/GRU default "
                       "recurrent_activation='hard_sigmoid'; "
                       "backend/tensorflow_backend.py `hard_sigmoid` = "
                       "clip(0.2*x + 0.5, 0, 1); theano_backend.py uses "
                       "T.nnet.hard_sigmoid (same formula), cntk_backend.py "
                       "the same formula",
    "cudnn_k224": "[K224] keras/layers/cudnn_recurrent.py: "
                  "`_CuDNNRNN.get_config` (return_sequences, return_state, "
                  "go_backwards, stateful; no unroll/activation), "
                  "`CuDNNLSTM.get_config`/`CuDNNGRU.get_config`; `build`: "
                  "kernel (input_dim, gates*units), recurrent_kernel (units, "
                  "gates*units), bias (2*gates*units,) = input biases then "
                  "recurrent biases",
    "cudnn_convert": "[K224] keras/engine/saving.py `_convert_rnn_weights` "
                     "(the same in [TFK] `_convert_rnn_weights`): per gate, "
                     "kernel.T.reshape(kernel.shape, order='F'); recurrent "
                     "kernel per gate transposed; LSTM bias = sum of the two "
                     "halves; GRU bias reshaped to (2, 3*units)",
    "bidir_k224": "[K224] keras/layers/wrappers.py `Bidirectional.__init__` "
                  "(forward_layer = copy of layer renamed 'forward_' + name, "
                  "backward_layer from_config renamed 'backward_' + name), "
                  "`Bidirectional.build` (`with "
                  "K.name_scope(self.forward_layer.name)`), `get_config` "
                  "(layer = the wrapped layer's config under its own name, "
                  "then merge_mode); weights forward then backward",
    "td_k224": "[K224] keras/layers/wrappers.py `TimeDistributed.build` "
               "builds the inner layer inside the wrapper's name scope: "
               "'time_distributed_1/kernel:0'; `Wrapper.get_config`: "
               "{name, trainable, layer}",
    "embedding_k224": "[K224] keras/layers/embeddings.py `Embedding.__init__`"
                      " (input_length -> input_shape, so batch_input_shape "
                      "and dtype 'float32') and `get_config`",
    "core_k224": "[K224] keras/layers/core.py `Dense/Dropout/Activation."
                 "get_config`; keras/initializers.py (glorot_uniform = "
                 "VarianceScaling(1.0, 'fan_avg', 'uniform')); "
                 "keras/regularizers.py `L1L2.get_config` (float32 values: "
                 "0.01 -> 0.009999999776482582); keras/constraints.py",
    "training_k224": "[K224] saving.py `_serialize_model`: training_config "
                     "json {optimizer_config, loss, metrics, "
                     "sample_weight_mode, loss_weights}; optimizers.py "
                     "`Adam.get_config` (float(K.get_value(...)) of float32 "
                     "variables) and `Adam.get_updates` (weights = "
                     "[iterations] + ms + vs + vhats; names "
                     "'Adam/iterations:0', 'training/Adam/Variable:0', ...)",
    "tf22_rnn": "[TF22] layers/recurrent.py `RNN.get_config` (adds "
                "time_major), `LSTM/GRU.get_config` (implementation; GRU "
                "reset_after), layers/recurrent_v2.py defaults "
                "(recurrent_activation='sigmoid', implementation=2, "
                "reset_after=True); initializers serialized by "
                "utils/generic_utils.py `serialize_keras_object` "
                "(GlorotUniform {'seed': None})",
    # --- Functional models and the layers around the RNNs ---------------------
    "functional_k2": "[K224] keras/engine/network.py `Network.get_config` "
                     "({'name': 'model_1', 'layers', 'input_layers', "
                     "'output_layers'}; each layer {'name', 'class_name', "
                     "'config', 'inbound_nodes'}, a node [[layer, node_index,"
                     " tensor_index, kwargs], ...], kwargs {} when "
                     "json.dumps(node.arguments) fails or there are none) "
                     "and `_base_init` (name = 'model_' + K.get_uid('model'))"
                     "; [K216]/[K208] keras/engine/topology.py "
                     "`Container.get_config` (the same); saving: "
                     "`model_config = {'class_name': 'Model', 'config': ...}`"
                     ", layer_names = model.layers, InputLayers included "
                     "([K224] saving.py `_serialize_model`, [K216]/[K208] "
                     "models.py `save_model`)",
    "functional_tf22": "[TF22] engine/network.py `get_network_config` "
                       "(layer entries {'class_name', 'config', 'name', "
                       "'inbound_nodes'}: serialize_keras_object, then name "
                       "and inbound_nodes; node data packed as the call's "
                       "inputs and, for one tensor, put in a list; "
                       "input_layers/output_layers [[layer, node, tensor]] "
                       "via tf_utils.ListWrapper + convert_inner_node_data), "
                       "`_updated_config`/`model_metadata` class_name "
                       "'Model' (no Functional class before TF 2.3); "
                       "base_layer.py `_init_set_name` (model name 'model', "
                       "zero-based); base_layer.py `__call__` pops the "
                       "framework's training/mask kwargs, so kwargs are {}",
    "graph_order_k2": "[K224] engine/network.py `_map_graph_network` "
                      "([K216]/[K208] topology.py `Container.__init__`, "
                      "[TF22] network.py `_map_graph_network`: the same): "
                      "model.layers sorted by decreasing depth, ties in the "
                      "order a depth-first walk from the outputs met them",
    "input_layer_k2": "[K224] engine/input_layer.py `InputLayer.__init__` "
                      "(name 'input_' + K.get_uid('input'), from 1) and "
                      "`get_config` (batch_input_shape, dtype, sparse, "
                      "name); [K216]/[K208] engine/topology.py `InputLayer`"
                      " (the same)",
    "input_layer_tf22": "[TF22] engine/input_layer.py `InputLayer.__init__` "
                        "(name 'input_' + backend.get_uid('input'), from 1) "
                        "and `get_config` (batch_input_shape, dtype, sparse, "
                        "ragged, name)",
    "return_state_k224": "[K224] layers/recurrent.py `RNN.__call__`: with "
                         "Keras-tensor initial_state the layer is called on "
                         "[inputs] + initial_state, so its inbound node lists"
                         " the input then each state tensor ([layer, 0, i, "
                         "{}], i = 1, 2 for an LSTM's h and c); the "
                         "initial_state kwarg holds tensors, json.dumps "
                         "fails and network.py `get_config` writes {} "
                         "(`from_config` calls the layer on the list and "
                         "`_standardize_args` splits it again); "
                         "return_state=True: outputs [output, h(, c)]",
    "return_state_tf22": "[TF22] layers/recurrent.py `RNN.__call__`: Keras-"
                         "tensor initial states are appended to the inputs "
                         "(full_input = [inputs] + additional_inputs) and "
                         "not kept in kwargs; network.py "
                         "`get_network_config` then lists them in the node",
    "conv_k2": "[K224] layers/convolutional.py `_Conv.get_config` (rank, "
               "filters, kernel_size, strides, padding, data_format, "
               "dilation_rate, activation, use_bias, initializers, "
               "regularizers, constraints; the tuples from "
               "conv_utils.normalize_tuple become JSON lists); "
               "`Conv1D.get_config` and `Conv2D.get_config` pop 'rank'; in "
               "[K208]/[K210]/[K216] `Conv1D.get_config` also pops "
               "'data_format' (kept from [K220] on); `_Conv.build`: kernel "
               "kernel_size + (input_dim, filters), bias (filters,)",
    "conv_tf22": "[TF22] layers/convolutional.py `Conv.get_config` (no "
                 "rank; data_format kept; no groups before TF 2.3)",
    "pool_k2": "[K224] layers/pooling.py `_Pooling1D.get_config` (strides, "
               "pool_size, padding, data_format) and `_Pooling2D.get_config`"
               " (pool_size, padding, strides, data_format); [K208]/[K216] "
               "(up to [K222]) `_Pooling1D.get_config` has no data_format",
    "pool_tf22": "[TF22] layers/pooling.py `Pooling1D.get_config` (strides, "
                 "pool_size, padding, data_format)",
    "global_pool_k2": "[K224] layers/pooling.py `_GlobalPooling1D.get_config`"
                      " (data_format; added in [K223]); [K208]/[K216] "
                      "`_GlobalPooling1D` has no get_config (name and "
                      "trainable only)",
    "bn_k224": "[K224] layers/normalization.py `BatchNormalization.get_config`"
               " (axis, momentum, epsilon, center, scale, beta/gamma/"
               "moving_mean/moving_variance initializers, regularizers, "
               "constraints) and `build` (gamma if scale, beta if center, "
               "then the non-trainable moving_mean, moving_variance); "
               "base_layer.py `weights` = trainable + non_trainable, the "
               "order of weight_names",
    "bn_tf22": "[TF22] layers/normalization.py `BatchNormalizationBase."
               "get_config` (as Keras 2.2.4; renorm/virtual_batch_size only "
               "when set) and `build` (axis becomes a list of non-negative "
               "axes: -1 -> [2] for 3-D inputs, before get_config reads "
               "it); saving/hdf5_format.py `_legacy_weights` = trainable + "
               "non_trainable",
    "core_more_k224": "[K224] layers/core.py `Reshape.get_config` "
                      "(target_shape), `Permute.get_config` (dims), "
                      "`SpatialDropout1D` (Dropout's get_config: rate, "
                      "noise_shape, seed), `Flatten.get_config` "
                      "(data_format)",
    "merge_k224": "[K224] layers/merge.py: `_Merge` subclasses (Add, "
                  "Multiply) have Layer's get_config (name, trainable); "
                  "`Concatenate.get_config` adds axis",
    "td_conv_k224": "[K224] layers/wrappers.py `TimeDistributed.build` "
                    "(builds the inner Conv2D inside the wrapper's name "
                    "scope: 'time_distributed_1/kernel:0'), "
                    "`Wrapper.get_config` ({name, trainable, "
                    "[batch_input_shape, dtype], layer}); the inner layer "
                    "is named first (conv2d_1, then time_distributed_1)",
    "tf22_version": "[TF22] tensorflow/python/keras/__init__.py: "
                    "__version__ = '2.3.0-tf' under TF2 behaviour ('2.2.4-tf'"
                    " under v1 behaviour; TF 1.13-1.15 and 2.0-2.1 wrote "
                    "'2.2.4-tf', TF 2.3 '2.4.0')",
}

ASCII_VLEN = h5py.string_dtype("ascii")
UTF8_VLEN = h5py.string_dtype("utf-8")


def f32(v):
    """A Python float of a float32 value (Keras 2 casts config numbers such
    as regularizer factors and optimizer hyper-parameters to floatx)."""
    return float(np.float32(v))


def snake(name):
    """[K224] base_layer.py `_to_snake_case` ([TF22] generic_utils.py
    `to_snake_case` is the same)."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    if insecure[0] != "_":
        return insecure
    return "private" + insecure


# --------------------------------------------------------------------------
# Keras 2.0.8 - 2.2.4 (multi-backend Keras) model description
# --------------------------------------------------------------------------

GLOROT = {"class_name": "VarianceScaling",
          "config": {"scale": 1.0, "mode": "fan_avg",
                     "distribution": "uniform", "seed": None}}
ORTHO = {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}}
ZEROS = {"class_name": "Zeros", "config": {}}
EMB_UNIFORM = {"class_name": "RandomUniform",
               "config": {"minval": -0.05, "maxval": 0.05, "seed": None}}


def l1l2(l1=0.0, l2=0.0):
    """[K224] regularizers.py `L1L2.get_config` -> {'l1': float(l1),
    'l2': float(l2)} of K.cast_to_floatx values; l1(), l2(), l1_l2() all
    return L1L2."""
    return {"class_name": "L1L2", "config": {"l1": f32(l1), "l2": f32(l2)}}


def max_norm(v, axis=0):
    return {"class_name": "MaxNorm", "config": {"max_value": float(v),
                                                "axis": axis}}


def unit_norm(axis=0):
    return {"class_name": "UnitNorm", "config": {"axis": axis}}


def non_neg():
    return {"class_name": "NonNeg", "config": {}}


def min_max_norm(lo, hi, rate=1.0, axis=0):
    return {"class_name": "MinMaxNorm",
            "config": {"min_value": float(lo), "max_value": float(hi),
                       "rate": float(rate), "axis": axis}}


class Layer2:
    """One layer of the file: its config entry, its weights (name, array)
    and how to build the same layer in tf_keras 2.21 (for the
    equivalent-model check / fallback)."""

    def __init__(self, class_name, name, config, weights, equiv,
                 equiv_weights=None):
        self.class_name = class_name
        self.name = name
        self.config = config
        self.weights = weights            # [(weight name, np.ndarray)]
        self.equiv = equiv                # fn(L, first_kwargs) -> tf_keras layer
        # arrays to set into the equivalent layer (None: self.weights as is)
        self.equiv_weights = equiv_weights


class Keras2:
    """Builds the layers of one Keras 2.x Sequential model, in the dialect
    of `version` (a tuple) and `backend`, with weights drawn from `rng`.

    Config dicts are built in the insertion order of the get_config they
    copy (`dict(list(base_config.items()) + list(config.items()))`), i.e.
    the key order json.dumps wrote under Python >= 3.6; Python 2.7/3.5
    files have the same keys in arbitrary order."""

    def __init__(self, version, backend, rng):
        self.version = version
        self.backend = backend
        self.rng = rng
        self.uids = Counter()
        self.layers = []
        self.feat = None          # size of the last axis of the running shape
        self.first_kwargs = None  # tf_keras kwargs for the first layer

    # -- names ---------------------------------------------------------------
    def new_name(self, cls):
        # names_k2: K.get_uid(prefix) counts per class name, from 1.
        self.uids[cls] += 1
        return f"{snake(cls)}_{self.uids[cls]}"

    def wname(self, scope, w):
        # weights_tf_k2 / weights_theano
        if self.backend == "tensorflow":
            return f"{scope}/{w}:0"
        return f"{scope}/{w}"

    def draw(self, shape):
        return self.rng.uniform(-0.6, 0.6, size=shape).astype(np.float32)

    # -- config pieces -------------------------------------------------------
    def base(self, name, batch_input_shape=None):
        # first_layer_k2
        c = {"name": name, "trainable": True}
        if batch_input_shape is not None:
            c["batch_input_shape"] = list(batch_input_shape)
            c["dtype"] = "float32"
        return c

    def take_input(self, input_shape, batch_size):
        """batch_input_shape for the first layer (None for the others) and
        the tf_keras first-layer kwargs."""
        if input_shape is None:
            return None
        bis = (batch_size,) + tuple(input_shape)
        self.first_kwargs = {"batch_input_shape": bis}
        self.feat = input_shape[-1]
        return bis

    def rnn_base(self, c, kw, implementation):
        c.update({"return_sequences": kw.get("return_sequences", False),
                  "return_state": False,
                  "go_backwards": kw.get("go_backwards", False),
                  "stateful": kw.get("stateful", False),
                  "unroll": kw.get("unroll", False)})
        if self.version < (2, 1, 0):
            # rnn_k208: Recurrent.get_config puts implementation here.
            c["implementation"] = implementation

    def regs_cons(self, c, kw, recurrent=True):
        c["kernel_regularizer"] = kw.get("kernel_regularizer")
        if recurrent:
            c["recurrent_regularizer"] = kw.get("recurrent_regularizer")
        c["bias_regularizer"] = kw.get("bias_regularizer")
        c["activity_regularizer"] = kw.get("activity_regularizer")
        c["kernel_constraint"] = kw.get("kernel_constraint")
        if recurrent:
            c["recurrent_constraint"] = kw.get("recurrent_constraint")
        c["bias_constraint"] = kw.get("bias_constraint")

    def default_impl(self):
        return 0 if self.version < (2, 1, 0) else 1

    # -- recurrent layers ----------------------------------------------------
    def rnn_config(self, cls, name, units, kw, bis=None):
        """Config of SimpleRNN / GRU / LSTM (rnn_k208, rnn_k210, rnn_k216)."""
        impl = kw.get("implementation", self.default_impl())
        c = self.base(name, bis)
        self.rnn_base(c, kw, impl)
        c["units"] = units
        c["activation"] = kw.get("activation", "tanh")
        if cls != "SimpleRNN":
            # hard_sigmoid_k2: the Keras 2 default.
            c["recurrent_activation"] = kw.get("recurrent_activation",
                                               "hard_sigmoid")
        c["use_bias"] = kw.get("use_bias", True)
        c["kernel_initializer"] = GLOROT
        c["recurrent_initializer"] = ORTHO
        c["bias_initializer"] = ZEROS
        if cls == "LSTM":
            c["unit_forget_bias"] = True
        self.regs_cons(c, kw)
        c["dropout"] = float(kw.get("dropout", 0.0))
        c["recurrent_dropout"] = float(kw.get("recurrent_dropout", 0.0))
        if cls in ("GRU", "LSTM") and self.version >= (2, 1, 0):
            c["implementation"] = impl
        if cls == "GRU" and self.version >= (2, 1, 5):
            c["reset_after"] = kw.get("reset_after", False)
        return c

    def rnn_weights(self, cls, scope, units, kw, feat):
        gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[cls]
        shapes = [("kernel", (feat, gates * units)),
                  ("recurrent_kernel", (units, gates * units))]
        if kw.get("use_bias", True):
            if cls == "GRU" and kw.get("reset_after", False):
                shapes.append(("bias", (2, gates * units)))
            else:
                shapes.append(("bias", (gates * units,)))
        return [(self.wname(scope, w), self.draw(s)) for w, s in shapes]

    def rnn_equiv(self, cls, units, kw):
        """tf_keras 2.21 layer computing what the Keras 2 layer computed
        (same implementation mode as the file, so that the arithmetic is
        the same as tf_keras's own load; Keras 2 `from_config` maps 0 to 1)."""
        args = dict(units=units,
                    activation=kw.get("activation", "tanh"),
                    use_bias=kw.get("use_bias", True),
                    return_sequences=kw.get("return_sequences", False),
                    go_backwards=kw.get("go_backwards", False),
                    stateful=kw.get("stateful", False),
                    unroll=kw.get("unroll", False),
                    # no effect at inference, but recurrent_dropout > 0
                    # makes tf_keras take its generic (non-fused) RNN path,
                    # so keep them for bit-identical arithmetic
                    dropout=kw.get("dropout", 0.0),
                    recurrent_dropout=kw.get("recurrent_dropout", 0.0))
        if cls != "SimpleRNN":
            args["recurrent_activation"] = kw.get("recurrent_activation",
                                                  "hard_sigmoid")
        if cls == "GRU":
            args["reset_after"] = kw.get("reset_after", False)
        if cls != "SimpleRNN":
            args["implementation"] = max(1, kw.get("implementation",
                                                   self.default_impl()))

        def make(L, first):
            return getattr(L, cls)(**args, **first)
        return make

    def rnn(self, cls, units, input_shape=None, batch_size=None, **kw):
        bis = self.take_input(input_shape, batch_size)
        name = self.new_name(cls)
        config = self.rnn_config(cls, name, units, kw, bis)
        weights = self.rnn_weights(cls, name, units, kw, self.feat)
        self.feat = units
        self.add(Layer2(cls, name, config, weights,
                        self.rnn_equiv(cls, units, kw)))

    # -- CuDNN ---------------------------------------------------------------
    def cudnn(self, cls, units, input_shape=None, batch_size=None, **kw):
        """cudnn_k224. The equivalent tf_keras layer is the one tf_keras's
        `_convert_rnn_weights` converts these weights for: LSTM (with
        sigmoid gates, as cuDNN computes) / GRU(reset_after=True,
        recurrent_activation='sigmoid')."""
        bis = self.take_input(input_shape, batch_size)
        name = self.new_name(cls)
        c = self.base(name, bis)
        c.update({"return_sequences": kw.get("return_sequences", False),
                  "return_state": False,
                  "go_backwards": kw.get("go_backwards", False),
                  "stateful": kw.get("stateful", False),
                  "units": units,
                  "kernel_initializer": GLOROT,
                  "recurrent_initializer": ORTHO,
                  "bias_initializer": ZEROS})
        if cls == "CuDNNLSTM":
            c["unit_forget_bias"] = True
        self.regs_cons(c, kw)
        gates = 4 if cls == "CuDNNLSTM" else 3
        shapes = [("kernel", (self.feat, gates * units)),
                  ("recurrent_kernel", (units, gates * units)),
                  ("bias", (2 * gates * units,))]
        weights = [(self.wname(name, w), self.draw(s)) for w, s in shapes]
        self.feat = units
        plain = "LSTM" if cls == "CuDNNLSTM" else "GRU"
        args = dict(units=units, activation="tanh",
                    recurrent_activation="sigmoid",
                    return_sequences=kw.get("return_sequences", False),
                    go_backwards=kw.get("go_backwards", False),
                    stateful=kw.get("stateful", False))
        if plain == "GRU":
            args["reset_after"] = True

        def make(L, first):
            return getattr(L, plain)(**args, **first)
        self.add(Layer2(cls, name, c, weights, make,
                        equiv_weights=cudnn_to_plain(
                            plain, [w for _, w in weights])))

    # -- wrappers ------------------------------------------------------------
    def bidirectional(self, cls, units, merge_mode="concat", input_shape=None,
                      batch_size=None, **kw):
        """bidir_k224"""
        bis = self.take_input(input_shape, batch_size)
        inner = self.new_name(cls)        # the wrapped layer is made first
        name = self.new_name("Bidirectional")
        c = self.base(name, bis)
        c["layer"] = {"class_name": cls,
                      "config": self.rnn_config(cls, inner, units, kw)}
        c["merge_mode"] = merge_mode
        feat = self.feat
        weights = (self.rnn_weights(cls, f"{name}/forward_{inner}", units, kw,
                                    feat)
                   + self.rnn_weights(cls, f"{name}/backward_{inner}", units,
                                      kw, feat))
        self.feat = 2 * units if merge_mode == "concat" else units
        inner_make = self.rnn_equiv(cls, units, kw)

        def make(L, first):
            return L.Bidirectional(inner_make(L, {}), merge_mode=merge_mode,
                                   **first)
        self.add(Layer2("Bidirectional", name, c, weights, make))

    def time_distributed_dense(self, units, activation="linear"):
        """td_k224: the Dense inside is named (dense_N, which uses up a
        Dense uid) but its weights live under the wrapper's name."""
        inner = self.new_name("Dense")
        name = self.new_name("TimeDistributed")
        c = self.base(name)
        c["layer"] = {"class_name": "Dense",
                      "config": self.dense_config(inner, units, activation, {})}
        weights = [(self.wname(name, "kernel"), self.draw((self.feat, units))),
                   (self.wname(name, "bias"), self.draw((units,)))]
        self.feat = units

        def make(L, first):
            return L.TimeDistributed(L.Dense(units, activation=activation),
                                     **first)
        self.add(Layer2("TimeDistributed", name, c, weights, make))

    # -- core ----------------------------------------------------------------
    def dense_config(self, name, units, activation, kw, bis=None):
        c = self.base(name, bis)
        c.update({"units": units, "activation": activation,
                  "use_bias": kw.get("use_bias", True),
                  "kernel_initializer": GLOROT, "bias_initializer": ZEROS})
        self.regs_cons(c, kw, recurrent=False)
        return c

    def dense(self, units, activation="linear", input_shape=None, **kw):
        bis = self.take_input(input_shape, None)
        name = self.new_name("Dense")
        c = self.dense_config(name, units, activation, kw, bis)
        weights = [(self.wname(name, "kernel"), self.draw((self.feat, units))),
                   (self.wname(name, "bias"), self.draw((units,)))]
        self.feat = units

        def make(L, first):
            return L.Dense(units, activation=activation, **first)
        self.add(Layer2("Dense", name, c, weights, make))

    def dropout(self, rate):
        name = self.new_name("Dropout")
        c = self.base(name)
        c["rate"] = rate
        if self.version >= (2, 1, 0):
            # [K210]/[K216]/[K224] core.py `Dropout.get_config`: rate,
            # noise_shape, seed; [K208] has rate only (2.0.9 unchecked)
            c["noise_shape"] = None
            c["seed"] = None
        self.add(Layer2("Dropout", name, c, [],
                        lambda L, first: L.Dropout(rate, **first)))

    def activation(self, act):
        name = self.new_name("Activation")
        c = self.base(name)
        c["activation"] = act
        self.add(Layer2("Activation", name, c, [],
                        lambda L, first: L.Activation(act, **first)))

    def embedding(self, input_dim, output_dim, input_length, mask_zero=False):
        """embedding_k224"""
        name = self.new_name("Embedding")
        c = self.base(name, (None, input_length))
        c.update({"input_dim": input_dim, "output_dim": output_dim,
                  "embeddings_initializer": EMB_UNIFORM,
                  "embeddings_regularizer": None,
                  "activity_regularizer": None,
                  "embeddings_constraint": None,
                  "mask_zero": mask_zero,
                  "input_length": input_length})
        weights = [(self.wname(name, "embeddings"),
                    self.draw((input_dim, output_dim)))]
        self.feat = output_dim
        self.first_kwargs = {"input_length": input_length}

        def make(L, first):
            return L.Embedding(input_dim, output_dim, mask_zero=mask_zero,
                               **first)
        self.add(Layer2("Embedding", name, c, weights, make))

    def add(self, layer):
        self.layers.append(layer)

    # -- the whole model -----------------------------------------------------
    def model_config(self):
        entries = [{"class_name": l.class_name, "config": l.config}
                   for l in self.layers]
        if self.version >= (2, 2, 3):
            # seq_dict_k224 ("sequential_1": network.py `_base_init`,
            # K.get_uid('sequential')).
            config = {"name": "sequential_1", "layers": entries}
        else:
            config = entries     # seq_list
        # [K224] saving.py `_serialize_model`: json.dumps(default=...)
        # with the default separators, then .encode('utf-8').
        return json.dumps({"class_name": "Sequential", "config": config})


def cudnn_to_plain(plain, weights):
    """Our own copy of the conversion tf_keras applies on load (cudnn_convert);
    used to cross-check tf_keras's load_weights."""
    kernel, rec, bias = weights
    gates = 4 if plain == "LSTM" else 3
    units = rec.shape[0]

    def per_gate(m, fn):
        return np.hstack([fn(k) for k in np.hsplit(m, gates)])
    k = per_gate(kernel, lambda a: a.T.reshape(a.shape, order="F"))
    r = per_gate(rec, lambda a: a.T)
    if plain == "LSTM":
        b = np.sum(np.split(bias, 2, axis=0), axis=0)
    else:
        b = bias.reshape((2, gates * units))
    return [k, r, b]


# --------------------------------------------------------------------------
# tf.keras of TensorFlow 2.2 (keras_version '2.3.0-tf')
# --------------------------------------------------------------------------

GLOROT_V2 = {"class_name": "GlorotUniform", "config": {"seed": None}}
ORTHO_V2 = {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}}


class TfKeras22(Keras2):
    """tf.keras 2.2 dialect: zero-based names (lstm, lstm_1), cell scopes in
    the weight names, dtype on every layer, time_major, v2 defaults."""

    def __init__(self, rng):
        super().__init__((2, 3, 0), "tensorflow", rng)
        self.cell_uids = Counter()

    def new_name(self, cls):
        # names_tf22 (zero_based=True)
        n = self.uids[cls]
        self.uids[cls] += 1
        return snake(cls) if n == 0 else f"{snake(cls)}_{n}"

    def new_cell(self, cls):
        n = self.cell_uids[cls]
        self.cell_uids[cls] += 1
        base = snake(cls + "Cell")
        return base if n == 0 else f"{base}_{n}"

    def base(self, name, batch_input_shape=None):
        # base_tf22
        c = {"name": name, "trainable": True}
        if batch_input_shape is not None:
            c["batch_input_shape"] = list(batch_input_shape)
        c["dtype"] = "float32"
        return c

    def rnn_config(self, cls, name, units, kw, bis=None):
        """tf22_rnn (LSTM and GRU with the v2 defaults)."""
        c = self.base(name, bis)
        c.update({"return_sequences": kw.get("return_sequences", False),
                  "return_state": kw.get("return_state", False),
                  "go_backwards": False,
                  "stateful": False, "unroll": False, "time_major": False,
                  "units": units, "activation": "tanh",
                  "recurrent_activation": "sigmoid", "use_bias": True,
                  "kernel_initializer": GLOROT_V2,
                  "recurrent_initializer": ORTHO_V2,
                  "bias_initializer": ZEROS})
        if cls == "LSTM":
            c["unit_forget_bias"] = True
        self.regs_cons(c, kw)
        c.update({"dropout": 0.0, "recurrent_dropout": 0.0,
                  "implementation": 2})
        if cls == "GRU":
            c["reset_after"] = True
        return c

    def rnn(self, cls, units, input_shape=None, batch_size=None, **kw):
        # tf22_rnn
        bis = self.take_input(input_shape, batch_size)
        cell = self.new_cell(cls)       # made in LSTM.__init__ before the layer
        name = self.new_name(cls)
        c = self.rnn_config(cls, name, units, kw, bis)
        gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[cls]
        shapes = [("kernel", (self.feat, gates * units)),
                  ("recurrent_kernel", (units, gates * units)),
                  ("bias", (2, gates * units) if cls == "GRU"
                   else (gates * units,))]
        weights = [(f"{name}/{cell}/{w}:0", self.draw(s)) for w, s in shapes]
        self.feat = units
        rs = kw.get("return_sequences", False)

        def make(L, first):
            if cls == "GRU":
                return L.GRU(units, return_sequences=rs, **first)
            return getattr(L, cls)(units, return_sequences=rs, **first)
        self.add(Layer2(cls, name, c, weights, make))

    def dense(self, units, activation="linear", input_shape=None, **kw):
        bis = self.take_input(input_shape, None)
        name = self.new_name("Dense")
        c = self.base(name, bis)
        c.update({"units": units, "activation": activation, "use_bias": True,
                  "kernel_initializer": GLOROT_V2, "bias_initializer": ZEROS})
        self.regs_cons(c, kw, recurrent=False)
        weights = [(f"{name}/kernel:0", self.draw((self.feat, units))),
                   (f"{name}/bias:0", self.draw((units,)))]
        self.feat = units
        self.add(Layer2("Dense", name, c, weights,
                        lambda L, first: L.Dense(units, activation=activation,
                                                 **first)))

    def model_config(self):
        # seq_tf22
        entries = [{"class_name": l.class_name, "config": l.config}
                   for l in self.layers]
        bis = list(self.first_kwargs["batch_input_shape"])
        config = {"name": "sequential", "layers": entries,
                  "build_input_shape": bis}
        return json.dumps({"class_name": "Sequential", "config": config})


# --------------------------------------------------------------------------
# Graph models: Functional configs and the layers around the RNNs
# --------------------------------------------------------------------------

ONES = {"class_name": "Ones", "config": {}}
RNN_CLASSES = ("SimpleRNN", "GRU", "LSTM")
MERGE_CLASSES = ("Add", "Multiply", "Concatenate")


def conv_length(length, size, padding, stride, dilation=1):
    """[K224] keras/utils/conv_utils.py `conv_output_length` (the same in
    [K208], [K216], [TF22])."""
    dilated = (size - 1) * dilation + 1
    if padding in ("same", "causal"):
        out = length
    else:
        assert padding == "valid", padding
        out = length - dilated + 1
    return (out + stride - 1) // stride


class Sym:
    """A Keras tensor of the emulated model: output `index` of call `node`
    of `layer` (layer None: the implicit input of a Sequential model), and
    its shape without the batch axis."""

    def __init__(self, layer, node, index, shape):
        self.layer = layer
        self.node = node
        self.index = index
        self.shape = tuple(shape)


class GLayer:
    """A layer of a Net: its config entry, its weights (drawn by
    `Net.finish`, in file order), how its output shapes follow from its
    input shapes, and its tf_keras 2.21 twin (same name)."""

    def __init__(self, class_name, name, config, specs, shape_fn, equiv):
        self.class_name = class_name
        self.name = name
        self.config = config
        self.specs = specs          # [(weight name, shape, "w" | "pos")]
        self.shape_fn = shape_fn    # fn([input shapes]) -> [output shapes]
        self.equiv = equiv          # fn(L) -> tf_keras layer named self.name
        self.calls = []             # [[Sym, ...]]: the inputs of each call
        self.weights = []           # [(weight name, np.ndarray)]
        self.equiv_weights = None


class Net:
    """A Sequential or Functional ("Model") model of Keras 2.0.8-2.2.4 or
    tf.keras 2.2, built by calling layers on tensors as the Keras code did
    (`x = Conv1D(...)(x)`), in the dialect of `k` (a Keras2 or TfKeras22:
    names, base config, initializers, weight names).

    Conventions as for the Sequential cases: weights drawn after the model
    is complete, in the file's order (model.layers, then weight_names), with
    rng.uniform(-0.6, 0.6), except BatchNormalization's gamma and
    moving_variance: rng.uniform(0.5, 1.5) (a variance must be positive, and
    a scale near 1 keeps the signal); the input, rng.uniform(-2, 2), is
    drawn after the weights."""

    def __init__(self, k, functional):
        self.k = k
        self.tf22 = isinstance(k, TfKeras22)
        self.version = k.version
        self.functional = functional
        self.created = []           # GLayers in creation order
        self.log = []               # (GLayer, call index) in call order
        self.inputs = []
        self.outputs = []
        self.seq_input = None       # Sequential: (shape, batch_size)
        self.layers = None          # model.layers order, after finish()
        self.first_kwargs = None

    # -- dialect pieces --------------------------------------------------------
    def glorot(self):
        return GLOROT_V2 if self.tf22 else GLOROT

    def orth(self):
        return ORTHO_V2 if self.tf22 else ORTHO

    def since(self, version):
        """Keras 2 version >= `version` (tf.keras 2.2 counts as newest)."""
        return self.tf22 or self.version >= version

    def read(self, *versions):
        """Guard: this layer's config was read in these versions only."""
        v = "tf22" if self.tf22 else ".".join(map(str, self.version))
        assert v in versions, f"config not read for {v}: {versions}"

    def bis(self, x):
        """batch_input_shape for a layer called on `x`: set on the first
        layer of a Sequential model only (first_layer_k2, base_tf22)."""
        if x.layer is None and not self.functional:
            return (self.seq_input[1],) + self.seq_input[0]
        return None

    # -- building --------------------------------------------------------------
    def input(self, shape, batch_size=None):
        """Sequential: the first layer's input_shape. Functional:
        `Input(shape)`, an InputLayer named input_1, input_2, ... ([K224]
        engine/input_layer.py `InputLayer.__init__`: 'input_' +
        K.get_uid('input'), from 1; [K216]/[K208] engine/topology.py; [TF22]
        engine/input_layer.py: the same, backend.get_uid, from 1)."""
        shape = tuple(shape)
        if not self.functional:
            self.seq_input = (shape, batch_size)
            self.first_kwargs = {"batch_input_shape": (batch_size,) + shape}
            return Sym(None, 0, 0, shape)
        self.k.uids["__input__"] += 1
        name = f"input_{self.k.uids['__input__']}"
        # input_layer_k2 / input_layer_tf22
        c = {"batch_input_shape": [batch_size] + list(shape),
             "dtype": "float32", "sparse": False}
        if self.tf22:
            c["ragged"] = False
        c["name"] = name
        layer = GLayer("InputLayer", name, c, [], None, None)
        self.created.append(layer)
        s = Sym(layer, 0, 0, shape)
        self.inputs.append(s)
        return s

    def call(self, layer, inputs):
        self.created.append(layer)
        ins = inputs if isinstance(inputs, list) else [inputs]
        layer.calls.append(ins)
        self.log.append((layer, len(layer.calls) - 1))
        shapes = layer.shape_fn([s.shape for s in ins])
        outs = [Sym(layer, len(layer.calls) - 1, i, sh)
                for i, sh in enumerate(shapes)]
        return outs if len(outs) > 1 else outs[0]

    def wname(self, scope, w):
        return self.k.wname(scope, w)

    def conv_config(self, cls, name, filters, kernel_size, strides, padding,
                    dilation_rate, activation, bis=None):
        """conv_k2 / conv_tf22: `_Conv.get_config` (Conv1D / Conv2D pop
        'rank'; Keras 2.0.8-2.1.6 Conv1D also pops 'data_format')."""
        rank = 1 if cls == "Conv1D" else 2
        c = self.k.base(name, bis)
        c.update({"filters": filters,
                  "kernel_size": [kernel_size] * rank
                  if isinstance(kernel_size, int) else list(kernel_size),
                  "strides": [strides] * rank if isinstance(strides, int)
                  else list(strides),
                  "padding": padding})
        if rank == 2 or self.since((2, 2, 0)):
            c["data_format"] = "channels_last"
        c.update({"dilation_rate": [dilation_rate] * rank,
                  "activation": activation, "use_bias": True,
                  "kernel_initializer": self.glorot(),
                  "bias_initializer": ZEROS})
        self.k.regs_cons(c, {}, recurrent=False)
        return c

    def conv1d(self, x, filters, kernel_size, strides=1, padding="valid",
               dilation_rate=1, activation="linear"):
        name = self.k.new_name("Conv1D")
        c = self.conv_config("Conv1D", name, filters, kernel_size, strides,
                             padding, dilation_rate, activation, self.bis(x))
        specs = [(self.wname(name, "kernel"),
                  (kernel_size, x.shape[-1], filters), "w"),
                 (self.wname(name, "bias"), (filters,), "w")]

        def shape(s):
            return [(conv_length(s[0][0], kernel_size, padding, strides,
                                 dilation_rate), filters)]

        def equiv(L):
            return L.Conv1D(filters, kernel_size, strides=strides,
                            padding=padding, dilation_rate=dilation_rate,
                            activation=activation, name=name)
        return self.call(GLayer("Conv1D", name, c, specs, shape, equiv), x)

    def pool_config(self, cls, name, pool_size, strides, padding, bis=None):
        """pool_k2 / pool_tf22: `_Pooling1D.get_config` (strides,
        pool_size, padding, data_format -- data_format from 2.2.3 on) and
        `_Pooling2D.get_config` (pool_size, padding, strides,
        data_format)."""
        c = self.k.base(name, bis)
        if cls == "MaxPooling1D":
            c.update({"strides": [strides], "pool_size": [pool_size],
                      "padding": padding})
            if self.since((2, 2, 3)):
                c["data_format"] = "channels_last"
        else:
            self.read("2.2.4")
            c.update({"pool_size": list(pool_size), "padding": padding,
                      "strides": list(strides),
                      "data_format": "channels_last"})
        return c

    def max_pooling1d(self, x, pool_size=2, strides=None, padding="valid"):
        strides = pool_size if strides is None else strides
        name = self.k.new_name("MaxPooling1D")
        c = self.pool_config("MaxPooling1D", name, pool_size, strides,
                             padding, self.bis(x))

        def shape(s):
            return [(conv_length(s[0][0], pool_size, padding, strides),
                     s[0][1])]

        def equiv(L):
            return L.MaxPooling1D(pool_size, strides=strides, padding=padding,
                                  name=name)
        return self.call(GLayer("MaxPooling1D", name, c, [], shape, equiv),
                         x)

    def batch_norm(self, x, momentum=0.99, epsilon=1e-3, center=True,
                   scale=True):
        """bn_k224 / bn_tf22 (axis -1)."""
        self.read("2.2.4", "tf22")
        name = self.k.new_name("BatchNormalization")
        c = self.k.base(name, self.bis(x))
        # [TF22] BatchNormalizationBase.build turns axis into a list of
        # non-negative axes, before get_config sees it.
        c.update({"axis": [len(x.shape)] if self.tf22 else -1,
                  "momentum": momentum, "epsilon": epsilon,
                  "center": center, "scale": scale,
                  "beta_initializer": ZEROS, "gamma_initializer": ONES,
                  "moving_mean_initializer": ZEROS,
                  "moving_variance_initializer": ONES,
                  "beta_regularizer": None, "gamma_regularizer": None,
                  "beta_constraint": None, "gamma_constraint": None})
        dim = (x.shape[-1],)
        specs = ([(self.wname(name, "gamma"), dim, "pos")] if scale else []) \
            + ([(self.wname(name, "beta"), dim, "w")] if center else []) \
            + [(self.wname(name, "moving_mean"), dim, "w"),
               (self.wname(name, "moving_variance"), dim, "pos")]

        def equiv(L):
            return L.BatchNormalization(momentum=momentum, epsilon=epsilon,
                                        center=center, scale=scale,
                                        name=name)
        return self.call(GLayer("BatchNormalization", name, c, specs,
                                lambda s: [s[0]], equiv), x)

    def reshape(self, x, target_shape):
        self.read("2.2.4")
        name = self.k.new_name("Reshape")
        c = self.k.base(name, self.bis(x))
        c["target_shape"] = list(target_shape)
        return self.call(GLayer(
            "Reshape", name, c, [], lambda s: [tuple(target_shape)],
            lambda L: L.Reshape(target_shape, name=name)), x)

    def permute(self, x, dims):
        self.read("2.2.4")
        name = self.k.new_name("Permute")
        c = self.k.base(name, self.bis(x))
        c["dims"] = list(dims)
        return self.call(GLayer(
            "Permute", name, c, [],
            lambda s: [tuple(s[0][d - 1] for d in dims)],
            lambda L: L.Permute(dims, name=name)), x)

    def spatial_dropout1d(self, x, rate):
        """[K224] core.py `SpatialDropout1D` has Dropout's get_config."""
        self.read("2.2.4")
        name = self.k.new_name("SpatialDropout1D")
        c = self.k.base(name, self.bis(x))
        c.update({"rate": rate, "noise_shape": None, "seed": None})
        return self.call(GLayer(
            "SpatialDropout1D", name, c, [], lambda s: [s[0]],
            lambda L: L.SpatialDropout1D(rate, name=name)), x)

    def global_pooling1d(self, x, cls):
        """[K224] pooling.py `_GlobalPooling1D.get_config` (data_format,
        from 2.2.3 on; [K216]/[K208] have no get_config: name and trainable
        only)."""
        assert not self.tf22
        name = self.k.new_name(cls)
        c = self.k.base(name, self.bis(x))
        if self.since((2, 2, 3)):
            c["data_format"] = "channels_last"
        return self.call(GLayer(
            cls, name, c, [], lambda s: [(s[0][-1],)],
            lambda L: getattr(L, cls)(name=name)), x)

    def rnn(self, x, cls, units, initial_state=None, **kw):
        """A recurrent layer called on x (and its initial states): rnn_k2* /
        tf22_rnn configs; with return_state=True its outputs are [output,
        state, ...] (LSTM: h, c)."""
        if self.tf22:
            cell = self.k.new_cell(cls)
        name = self.k.new_name(cls)
        c = self.k.rnn_config(cls, name, units, kw, self.bis(x))
        rs = kw.get("return_state", False)
        c["return_state"] = rs
        gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[cls]
        reset_after = kw.get("reset_after", self.tf22)
        scope = f"{name}/{cell}" if self.tf22 else name
        specs = [(self.wname(scope, "kernel"), (x.shape[-1], gates * units),
                  "w"),
                 (self.wname(scope, "recurrent_kernel"),
                  (units, gates * units), "w"),
                 (self.wname(scope, "bias"),
                  (2, gates * units) if cls == "GRU" and reset_after
                  else (gates * units,), "w")]
        seq = kw.get("return_sequences", False)
        n_states = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2}[cls]

        def shape(s):
            out = (s[0][0], units) if seq else (units,)
            return [out] + ([(units,)] * n_states if rs else [])

        if self.tf22:
            def equiv(L):
                return getattr(L, cls)(units, return_sequences=seq,
                                       return_state=rs, name=name)
        else:
            make = self.k.rnn_equiv(cls, units, kw)

            def equiv(L):
                return make(L, {"return_state": rs, "name": name})
        layer = GLayer(cls, name, c, specs, shape, equiv)
        return self.call(layer, [x] + list(initial_state or []))

    def dense(self, x, units, activation="linear"):
        name = self.k.new_name("Dense")
        if self.tf22:
            c = self.k.base(name, self.bis(x))
            c.update({"units": units, "activation": activation,
                      "use_bias": True, "kernel_initializer": GLOROT_V2,
                      "bias_initializer": ZEROS})
            self.k.regs_cons(c, {}, recurrent=False)
        else:
            c = self.k.dense_config(name, units, activation, {}, self.bis(x))
        specs = [(self.wname(name, "kernel"), (x.shape[-1], units), "w"),
                 (self.wname(name, "bias"), (units,), "w")]
        return self.call(GLayer(
            "Dense", name, c, specs, lambda s: [s[0][:-1] + (units,)],
            lambda L: L.Dense(units, activation=activation, name=name)), x)

    def merge(self, cls, xs, axis=-1):
        """[K224] layers/merge.py: `_Merge` has Layer's get_config (name,
        trainable); `Concatenate.get_config` adds axis."""
        self.read("2.2.4")
        name = self.k.new_name(cls)
        c = self.k.base(name)
        if cls == "Concatenate":
            c["axis"] = axis
            assert axis == -1

            def shape(s):
                return [s[0][:-1] + (sum(t[-1] for t in s),)]

            def equiv(L):
                return L.Concatenate(axis=axis, name=name)
        else:
            def shape(s):
                return [s[0]]

            def equiv(L):
                return getattr(L, cls)(name=name)
        return self.call(GLayer(cls, name, c, [], shape, equiv), xs)

    def time_distributed(self, x, cls, **a):
        """td_k224 around Conv2D, MaxPooling2D or Flatten: the inner layer is
        made (and named) first; its weights live under the wrapper's
        name."""
        self.read("2.2.4")
        inner = self.k.new_name(cls)
        name = self.k.new_name("TimeDistributed")
        step = x.shape[1:]
        specs = []
        if cls == "Conv2D":
            f, ks = a["filters"], tuple(a["kernel_size"])
            ic = self.conv_config("Conv2D", inner, f, ks, (1, 1), "valid", 1,
                                  a.get("activation", "linear"))
            specs = [(self.wname(name, "kernel"), ks + (step[-1], f), "w"),
                     (self.wname(name, "bias"), (f,), "w")]
            out = (conv_length(step[0], ks[0], "valid", 1),
                   conv_length(step[1], ks[1], "valid", 1), f)

            def make(L):
                return L.Conv2D(f, ks, activation=a.get("activation",
                                                        "linear"),
                                name=inner)
        elif cls == "MaxPooling2D":
            ps = tuple(a["pool_size"])
            ic = self.pool_config("MaxPooling2D", inner, ps, ps, "valid")
            out = (conv_length(step[0], ps[0], "valid", ps[0]),
                   conv_length(step[1], ps[1], "valid", ps[1]), step[2])

            def make(L):
                return L.MaxPooling2D(ps, name=inner)
        else:
            assert cls == "Flatten"
            # [K224] core.py `Flatten.get_config`: data_format ([K216] has
            # it too, [K210] no get_config)
            ic = self.k.base(inner)
            ic["data_format"] = "channels_last"
            out = (int(np.prod(step)),)

            def make(L):
                return L.Flatten(name=inner)
        c = self.k.base(name, self.bis(x))
        c["layer"] = {"class_name": cls, "config": ic}
        return self.call(GLayer(
            "TimeDistributed", name, c, specs,
            lambda s: [(s[0][0],) + out],
            lambda L: L.TimeDistributed(make(L), name=name)), x)

    def model(self, inputs, outputs):
        """`Model(inputs, outputs)` (Functional) or the end of a Sequential
        model."""
        self.outputs = outputs if isinstance(outputs, list) else [outputs]
        if not self.functional:
            return
        self.inputs = inputs if isinstance(inputs, list) else [inputs]
        if self.tf22:
            # names_tf22: unique_object_name('model', zero_based=True)
            self.model_name = "model"
        else:
            # names_k2: network.py `_base_init`: class name lowered + '_' +
            # K.get_uid(...), from 1
            self.model_name = "model_1"

    # -- the model -------------------------------------------------------------
    def graph_order(self):
        """model.layers of a Functional model: graph_order_k2 ([K224]
        network.py `_map_graph_network`, [K216]/[K208] topology.py
        `Container.__init__`, [TF22] network.py `_map_graph_network`: the
        same algorithm): a depth-first walk from the outputs numbers the
        layers; layers sorted by decreasing depth, then by that number."""
        def inbound(node):
            layer, i = node
            if layer.class_name == "InputLayer":
                return []
            return [(s.layer, s.node) for s in layer.calls[i]]

        index, finished, decreasing = {}, set(), []

        def build_map(node):
            key = (node[0].name, node[1])
            if key in finished:
                return
            index.setdefault(node[0].name, len(index))
            for n in inbound(node):
                build_map(n)
            finished.add(key)
            decreasing.append(node)
        for s in self.outputs:
            build_map((s.layer, s.node))
        node_depth, layer_depth = {}, {}
        for node in reversed(decreasing):
            key = (node[0].name, node[1])
            depth = node_depth.setdefault(key, 0)
            depth = max(depth, layer_depth.get(node[0].name, 0))
            layer_depth[node[0].name] = depth
            node_depth[key] = depth
            for n in inbound(node):
                k = (n[0].name, n[1])
                node_depth[k] = max(depth + 1, node_depth.get(k, 0))
        by_name = {l.name: l for l in self.created}
        order = []
        for depth in sorted(set(layer_depth.values()), reverse=True):
            names = [n for n, d in layer_depth.items() if d == depth]
            order += [by_name[n] for n in sorted(names, key=index.get)]
        assert len(order) == len({l.name for l in self.created}), \
            "a layer is not connected to the outputs"
        return order

    def finish(self):
        seen, uniq = set(), []
        for l in self.created:
            if l.name not in seen:
                seen.add(l.name)
                uniq.append(l)
        self.created = uniq
        self.layers = self.graph_order() if self.functional else uniq
        for l in self.layers:
            l.weights = [(n, self.k.draw(s) if kind == "w" else
                          self.k.rng.uniform(0.5, 1.5, size=s).astype(
                              np.float32))
                         for n, s, kind in l.specs]

    def model_config(self):
        if not self.functional:
            # seq_dict_k224 / seq_list / seq_tf22, as the Sequential cases
            self.k.layers = self.layers
            self.k.first_kwargs = self.first_kwargs
            return self.k.model_config()
        # functional_k2 / functional_tf22
        entries = []
        for l in self.layers:
            inbound = [[[s.layer.name, s.node, s.index, {}] for s in call]
                       for call in l.calls]
            if self.tf22:
                entries.append({"class_name": l.class_name,
                                "config": l.config, "name": l.name,
                                "inbound_nodes": inbound})
            else:
                entries.append({"name": l.name, "class_name": l.class_name,
                                "config": l.config,
                                "inbound_nodes": inbound})
        config = {"name": self.model_name, "layers": entries,
                  "input_layers": [[s.layer.name, s.node, s.index]
                                   for s in self.inputs],
                  "output_layers": [[s.layer.name, s.node, s.index]
                                    for s in self.outputs]}
        return json.dumps({"class_name": "Model", "config": config})

    # -- the equivalent tf_keras 2.21 model ------------------------------------
    def equivalent(self):
        fresh()
        L = tf_keras.layers
        made = {l.name: l.equiv(L) for l in self.created
                if l.class_name != "InputLayer"}
        if not self.functional:
            shape, batch = self.seq_input
            return tf_keras.Sequential(
                [tf_keras.Input(shape=shape, batch_size=batch)]
                + [made[l.name] for l in self.layers])
        tensors = {}
        for s in self.inputs:
            tensors[(s.layer.name, 0, 0)] = tf_keras.Input(
                shape=s.shape, name=s.layer.name)
        for layer, i in self.log:
            ins = [tensors[(s.layer.name, s.node, s.index)]
                   for s in layer.calls[i]]
            fn = made[layer.name]
            if layer.class_name in MERGE_CLASSES:
                out = fn(ins)
            elif len(ins) > 1:
                assert layer.class_name in RNN_CLASSES
                out = fn(ins[0], initial_state=ins[1:])
            else:
                out = fn(ins[0])
            for j, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(layer.name, i, j)] = t
        return tf_keras.Model(
            [tensors[(s.layer.name, 0, 0)] for s in self.inputs],
            [tensors[(s.layer.name, s.node, s.index)] for s in self.outputs],
            name=self.model_name)

    def set_equivalent_weights(self, eq):
        for l in self.layers:
            if l.weights:
                eq.get_layer(l.name).set_weights([w for _, w in l.weights])


# --------------------------------------------------------------------------
# HDF5 writers (h5py 2.x types, see the module docstring)
# --------------------------------------------------------------------------

def attr_bytes(obj, name, value):
    """`obj.attrs[name] = b'...'` under h5py 2.x: variable-length ASCII."""
    obj.attrs.create(name, value, dtype=ASCII_VLEN)


def attr_str(obj, name, value):
    """`obj.attrs[name] = '...'` (Python 3 str) under h5py 2.x:
    variable-length UTF-8."""
    obj.attrs.create(name, value, dtype=UTF8_VLEN)


def attr_list(obj, name, items):
    """`obj.attrs[name] = [b'...', ...]` under h5py 2.x: numpy.asarray(list)
    -> fixed-length 'S<n>' (n = the longest item); [] -> float64 (0,)."""
    if items:
        arr = np.asarray(items)
        assert arr.dtype.kind == "S", arr.dtype
    else:
        arr = np.asarray([], dtype=np.float64)
    obj.attrs.create(name, arr)


def write_dataset(group, name, val):
    """`group.create_dataset(name, val.shape, dtype=val.dtype)` then
    `dset[:] = val` (scalar: `dset[()] = val`), h5py 2.x track_times."""
    ds = group.create_dataset(name, val.shape, dtype=val.dtype,
                              track_times=True)
    if val.shape:
        ds[:] = val
    else:
        ds[()] = val


def write_keras2(path, keras_version, backend, model_config, layers,
                 training_config=None, optimizer_weights=()):
    """save_k224 / save_k222 / save_k21 (the same sequence of h5py calls)."""
    kv = keras_version.encode("utf8")
    be = backend.encode("utf8")
    with h5py.File(path, "w") as f:
        attr_bytes(f, "keras_version", kv)
        attr_bytes(f, "backend", be)
        attr_bytes(f, "model_config", model_config.encode("utf-8"))
        g = f.create_group("model_weights")
        attr_list(g, "layer_names", [l.name.encode("utf8") for l in layers])
        attr_bytes(g, "backend", be)
        attr_bytes(g, "keras_version", kv)
        for layer in layers:
            lg = g.create_group(layer.name)
            attr_list(lg, "weight_names",
                      [n.encode("utf8") for n, _ in layer.weights])
            for n, val in layer.weights:
                write_dataset(lg, n, val)
        if training_config is not None:
            attr_bytes(f, "training_config", training_config.encode("utf8"))
            if optimizer_weights:
                og = f.create_group("optimizer_weights")
                attr_list(og, "weight_names",
                          [n.encode("utf8") for n, _ in optimizer_weights])
                for n, val in optimizer_weights:
                    write_dataset(og, n, val)


def write_tf22(path, model_config, layers):
    """save_tf22."""
    with h5py.File(path, "w") as f:
        # model_metadata = dict(keras_version=str, backend=str,
        # model_config=dict) -> str values as-is, the dict json-encoded.
        attr_str(f, "keras_version", "2.3.0-tf")
        attr_str(f, "backend", "tensorflow")
        attr_bytes(f, "model_config", model_config.encode("utf8"))
        g = f.create_group("model_weights")
        attr_list(g, "layer_names", [l.name.encode("utf8") for l in layers])
        attr_bytes(g, "backend", b"tensorflow")
        attr_bytes(g, "keras_version", b"2.3.0-tf")
        for layer in sorted(layers, key=lambda l: l.name):
            lg = g.create_group(layer.name)
            attr_list(lg, "weight_names",
                      [n.encode("utf8") for n, _ in layer.weights])
            for n, val in layer.weights:
                write_dataset(lg, n, val)


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def floats(*shape, scale=1.0):
    return lambda rng: (scale * rng.uniform(-1, 1, size=shape)).astype(
        np.float32)


def padded_ids(vocab, timesteps, lengths):
    def make(rng):
        x = np.zeros((len(lengths), timesteps), np.int32)
        for b, n in enumerate(lengths):
            x[b, :n] = rng.integers(1, vocab, size=n)
        return x
    return make


def long_input(rng):
    """(2, 8800, 1): a noisy sine per row (values in [-1.2, 1.2])."""
    t = np.arange(8800, dtype=np.float64)
    rows = []
    for period in (97.0, 413.0):
        rows.append(np.sin(2 * np.pi * t / period)
                    + 0.2 * rng.uniform(-1, 1, size=t.shape))
    return np.stack(rows)[:, :, None].astype(np.float32)


class Case:
    def __init__(self, description, version, backend, build, make_x,
                 exercises, cites, notes=(), dialect="keras2",
                 compiled=None, net=None):
        self.description = description
        self.version = version            # keras_version string written
        self.backend = backend
        self.build = build                # fn(Keras2) -> None
        self.make_x = make_x
        self.exercises = exercises
        self.cites = cites
        self.notes = list(notes)
        self.dialect = dialect            # "keras2" | "tf22"
        self.compiled = compiled          # None | "adam_trained" | "sgd"
        # None: build(Keras2) adds layers to a Sequential model; "sequential"
        # or "functional": build(Net) calls layers on tensors
        self.net = net


def vtuple(v):
    return tuple(int(p) for p in v.split("-")[0].split("."))


# -- the graph cases: build(Net), as the Keras code of a user wrote them ------

def net_cnn_lstm_k224(n):
    # Sequential([Conv1D(4, 3, padding='same', activation='relu',
    #                    input_shape=(12, 3)), BatchNormalization(),
    #             MaxPooling1D(2), LSTM(4), Dense(2, activation='softmax')])
    x = n.input((12, 3))
    x = n.conv1d(x, 4, 3, padding="same", activation="relu")
    x = n.batch_norm(x)
    x = n.max_pooling1d(x, 2)
    x = n.rnn(x, "LSTM", 4)
    n.model(None, n.dense(x, 2, "softmax"))


def net_cnn_gru_k216(n):
    # Sequential([Conv1D(4, 3, activation='relu', input_shape=(10, 2)),
    #             MaxPooling1D(pool_size=2), GRU(3), Dense(2, 'softmax')])
    x = n.input((10, 2))
    x = n.conv1d(x, 4, 3, activation="relu")
    x = n.max_pooling1d(x, 2)
    x = n.rnn(x, "GRU", 3)
    n.model(None, n.dense(x, 2, "softmax"))


def net_functional_cnn_lstm_k208(n):
    # inp = Input(shape=(10, 3)); x = Conv1D(4, 3, padding='same',
    # activation='relu')(inp); x = MaxPooling1D(2)(x);
    # x = LSTM(3, return_sequences=True)(x); x = GlobalMaxPooling1D()(x)
    # Model(inp, Dense(1, activation='sigmoid')(x))
    inp = n.input((10, 3))
    x = n.conv1d(inp, 4, 3, padding="same", activation="relu")
    x = n.max_pooling1d(x, 2)
    x = n.rnn(x, "LSTM", 3, return_sequences=True)
    x = n.global_pooling1d(x, "GlobalMaxPooling1D")
    n.model(inp, n.dense(x, 1, "sigmoid"))


def net_batchnorm_rnn_k224(n):
    # Sequential([LSTM(4, return_sequences=True, input_shape=(5, 3)),
    #             BatchNormalization(scale=False, epsilon=0.01), GRU(3),
    #             BatchNormalization(momentum=0.9), Dense(2, 'softmax')])
    x = n.input((5, 3))
    x = n.rnn(x, "LSTM", 4, return_sequences=True)
    x = n.batch_norm(x, scale=False, epsilon=0.01)
    x = n.rnn(x, "GRU", 3)
    x = n.batch_norm(x, momentum=0.9)
    n.model(None, n.dense(x, 2, "softmax"))


def net_reshape_permute_k224(n):
    # Sequential([Reshape((4, 6), input_shape=(24,)), Permute((2, 1)),
    #             SpatialDropout1D(0.2), LSTM(3, return_sequences=True),
    #             GlobalAveragePooling1D(), Dense(2, 'softmax')])
    x = n.input((24,))
    x = n.reshape(x, (4, 6))
    x = n.permute(x, (2, 1))
    x = n.spatial_dropout1d(x, 0.2)
    x = n.rnn(x, "LSTM", 3, return_sequences=True)
    x = n.global_pooling1d(x, "GlobalAveragePooling1D")
    n.model(None, n.dense(x, 2, "softmax"))


def net_functional_merge_k224(n):
    # a = Input((5, 3)); b = Input((4, 2))
    # s = LSTM(4, return_sequences=True)(a)
    # m = GlobalMaxPooling1D()(s); v = GlobalAveragePooling1D()(s)
    # g = GRU(4)(b)
    # x = Concatenate()([Add()([m, g]), Multiply()([v, g])])
    # Model([a, b], Dense(2, activation='softmax')(x))
    a = n.input((5, 3))
    b = n.input((4, 2))
    s = n.rnn(a, "LSTM", 4, return_sequences=True)
    m = n.global_pooling1d(s, "GlobalMaxPooling1D")
    v = n.global_pooling1d(s, "GlobalAveragePooling1D")
    g = n.rnn(b, "GRU", 4)
    x = n.merge("Concatenate", [n.merge("Add", [m, g]),
                                n.merge("Multiply", [v, g])])
    n.model([a, b], n.dense(x, 2, "softmax"))


def net_encoder_decoder_k224(n):
    # The Keras blog's lstm_seq2seq.py (2017), smaller:
    # encoder_inputs = Input(shape=(None, 3))
    # _, state_h, state_c = LSTM(4, return_state=True)(encoder_inputs)
    # decoder_inputs = Input(shape=(None, 2))
    # decoder_outputs, _, _ = LSTM(4, return_sequences=True,
    #     return_state=True)(decoder_inputs, initial_state=[state_h, state_c])
    # Model([encoder_inputs, decoder_inputs],
    #       Dense(3, activation='softmax')(decoder_outputs))
    enc = n.input((None, 3))
    _, h, c = n.rnn(enc, "LSTM", 4, return_state=True)
    dec = n.input((None, 2))
    y, _, _ = n.rnn(dec, "LSTM", 4, initial_state=[h, c],
                    return_sequences=True, return_state=True)
    n.model([enc, dec], n.dense(y, 3, "softmax"))


def net_td_conv2d_k224(n):
    # Sequential([TimeDistributed(Conv2D(2, (3, 3), activation='relu'),
    #                             input_shape=(3, 6, 6, 1)),
    #             TimeDistributed(MaxPooling2D((2, 2))),
    #             TimeDistributed(Flatten()), LSTM(3), Dense(2, 'softmax')])
    x = n.input((3, 6, 6, 1))
    x = n.time_distributed(x, "Conv2D", filters=2, kernel_size=(3, 3),
                           activation="relu")
    x = n.time_distributed(x, "MaxPooling2D", pool_size=(2, 2))
    x = n.time_distributed(x, "Flatten")
    x = n.rnn(x, "LSTM", 3)
    n.model(None, n.dense(x, 2, "softmax"))


def net_functional_cnn_lstm_tf22(n):
    # tf.keras: inp = Input((12, 3)); x = Conv1D(4, 3, padding='same',
    # activation='relu')(inp); x = BatchNormalization()(x);
    # x = MaxPooling1D(2)(x); x = LSTM(4)(x)
    # Model(inp, Dense(2, activation='softmax')(x))
    inp = n.input((12, 3))
    x = n.conv1d(inp, 4, 3, padding="same", activation="relu")
    x = n.batch_norm(x)
    x = n.max_pooling1d(x, 2)
    x = n.rnn(x, "LSTM", 4)
    n.model(inp, n.dense(x, 2, "softmax"))


def net_encoder_decoder_tf22(n):
    # tf.keras, GRU: enc = Input((None, 3))
    # _, h = GRU(4, return_state=True)(enc); dec = Input((None, 2))
    # y = GRU(4, return_sequences=True)(dec, initial_state=[h])
    # Model([enc, dec], Dense(3, 'softmax')(y))
    enc = n.input((None, 3))
    _, h = n.rnn(enc, "GRU", 4, return_state=True)
    dec = n.input((None, 2))
    y = n.rnn(dec, "GRU", 4, initial_state=[h], return_sequences=True)
    n.model([enc, dec], n.dense(y, 3, "softmax"))


def wide(*shape):
    """Inputs of the graph cases: rng.uniform(-2, 2), so that the layers'
    outputs (and the errors of a loader) reach the model's output."""
    return floats(*shape, scale=2.0)


def several(*makers):
    return lambda rng: [m(rng) for m in makers]


CASES = {
    "k224_lstm_dense": Case(
        "Keras 2.2.4 (TensorFlow backend), compiled with Adam and trained: "
        "LSTM(4) on (5, 3) -> Dense(3, softmax). model_config "
        "{'class_name': 'Sequential', 'config': {'name': 'sequential_1', "
        "'layers': [...]}} -- the dict form, which is what 2.2.3+ writes; "
        "training_config and optimizer_weights present",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(5, 3)),
                   k.dense(3, "softmax")),
        floats(3, 5, 3),
        ["Keras 2.2.3+ Sequential config dict with name 'sequential_1'",
         "batch_input_shape and dtype on the first layer only",
         "names counted from 1 (lstm_1, dense_1)",
         "weight names with ':0' (TensorFlow backend)",
         "LSTM default recurrent_activation 'hard_sigmoid', implementation 1",
         "training_config attribute and optimizer_weights group (Adam: "
         "'Adam/iterations:0' int64 scalar, 'training/Adam/Variable_<i>:0')",
         "h5py 2.x string types"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "hard_sigmoid_k2",
         "core_k224", "training_k224"],
        ["Keras 2.2.4 does not write the bare-list config (as is often "
         "assumed): [K223]/[K224] sequential.py `Sequential.get_config` "
         "returns {'name', 'layers'}; the bare list (Keras 2.0.0-2.2.2) is "
         "case k222_bare_list_lstm_dense"],
        compiled="adam_trained"),
    "k222_bare_list_lstm_dense": Case(
        "Keras 2.2.2 (TensorFlow backend), compiled with SGD, not trained: "
        "LSTM(4) on (5, 3) -> Dense(3, softmax); model_config "
        "{'class_name': 'Sequential', 'config': [ {layer}, ... ]} (bare list)",
        "2.2.2", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(5, 3)),
                   k.dense(3, "softmax")),
        floats(3, 5, 3),
        ["bare-list Sequential config (Keras 2.0.0 - 2.2.2)",
         "batch_input_shape and dtype on the first layer only",
         "names counted from 1 (lstm_1, dense_1), weight names with ':0'",
         "training_config without optimizer_weights (SGD before training "
         "has no weights: `if symbolic_weights:`)",
         "h5py 2.x string types"],
        ["save_k222", "h5py2_types", "seq_list", "names_k2", "first_layer_k2",
         "weights_tf_k2", "rnn_k216", "hard_sigmoid_k2", "core_k224"],
        compiled="sgd"),
    "k208_gru_simple_rnn": Case(
        "Keras 2.0.8 (TensorFlow backend): GRU(4, return_sequences=True) on "
        "(5, 3) -> SimpleRNN(3) -> Dense(2, softmax); pre-RNN-cell configs "
        "(implementation 0 after unroll, also on SimpleRNN), GRU without "
        "reset_after",
        "2.0.8", "tensorflow",
        lambda k: (k.rnn("GRU", 4, input_shape=(5, 3), return_sequences=True),
                   k.rnn("SimpleRNN", 3), k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["bare-list config", "'implementation': 0 in every recurrent config, "
         "placed right after 'unroll' (Recurrent base config)",
         "GRU config without 'reset_after' (means False: bias (12,))",
         "GRU recurrent_activation 'hard_sigmoid'"],
        ["save_k21", "h5py2_types", "seq_list", "names_k2", "first_layer_k2",
         "weights_tf_k2", "rnn_k208", "hard_sigmoid_k2"]),
    "k210_gru_simple_rnn": Case(
        "Keras 2.1.0 (TensorFlow backend): GRU(4, return_sequences=True) on "
        "(5, 3) -> SimpleRNN(3) -> Dense(2, softmax); RNN-cell era configs "
        "(GRU implementation 1 at the end, none on SimpleRNN), GRU without "
        "reset_after",
        "2.1.0", "tensorflow",
        lambda k: (k.rnn("GRU", 4, input_shape=(5, 3), return_sequences=True),
                   k.rnn("SimpleRNN", 3), k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["bare-list config", "GRU config without 'reset_after' (means "
         "False) but with 'implementation': 1", "SimpleRNN without "
         "'implementation'"],
        ["save_k21", "h5py2_types", "seq_list", "names_k2", "first_layer_k2",
         "weights_tf_k2", "rnn_k210", "hard_sigmoid_k2"]),
    "k216_gru_simple_rnn": Case(
        "Keras 2.1.6 (TensorFlow backend): GRU(4, return_sequences=True) on "
        "(5, 3) -> SimpleRNN(3) -> Dense(2, softmax); GRU config ends with "
        "'implementation': 1, 'reset_after': false",
        "2.1.6", "tensorflow",
        lambda k: (k.rnn("GRU", 4, input_shape=(5, 3), return_sequences=True),
                   k.rnn("SimpleRNN", 3), k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["bare-list config", "GRU 'reset_after': false written explicitly "
         "(2.1.5+)"],
        ["save_k21", "h5py2_types", "seq_list", "names_k2", "first_layer_k2",
         "weights_tf_k2", "rnn_k216", "hard_sigmoid_k2"]),
    "k216_theano_lstm_gru": Case(
        "Keras 2.1.6 with the Theano backend: LSTM(4, return_sequences=True) "
        "on (5, 3) -> GRU(3) -> Dense(2, softmax); backend 'theano', weight "
        "names without ':0'",
        "2.1.6", "theano",
        lambda k: (k.rnn("LSTM", 4, input_shape=(5, 3),
                         return_sequences=True),
                   k.rnn("GRU", 3), k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["backend attribute 'theano' (root and model_weights)",
         "weight names 'lstm_1/kernel' (no ':0'; dataset paths "
         "model_weights/lstm_1/lstm_1/kernel)",
         "recurrent and Dense weights need no Theano conversion: only "
         "convolution kernels are flipped on load ([K224] saving.py "
         "`preprocess_weights_for_loading` + `_need_convert_kernel`; tf_keras"
         " `preprocess_weights_for_loading` only transposes conv kernels)"],
        ["save_k21", "h5py2_types", "seq_list", "names_k2", "first_layer_k2",
         "weights_theano", "rnn_k216", "hard_sigmoid_k2"]),
    "k224_hard_sigmoid": Case(
        "Keras 2.2.4: LSTM(4, recurrent_activation='hard_sigmoid', "
        "return_sequences=True) on (5, 3) -> GRU(3, recurrent_activation="
        "'hard_sigmoid') -> Dense(2, softmax); input x3 so the gates reach "
        "hard_sigmoid's flat parts (|x| > 2.5)",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(5, 3), return_sequences=True,
                         recurrent_activation="hard_sigmoid"),
                   k.rnn("GRU", 3, recurrent_activation="hard_sigmoid"),
                   k.dense(2, "softmax")),
        floats(3, 5, 3, scale=3.0),
        ["recurrent_activation 'hard_sigmoid' on LSTM and GRU = "
         "clip(0.2*x + 0.5, 0, 1) in Keras 2.x (every backend) and in "
         "tf_keras 2.21; NOT Keras 3's relu6(x + 3) / 6"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "hard_sigmoid_k2"]),
    "k224_cudnn": Case(
        "Keras 2.2.4: CuDNNLSTM(4, return_sequences=True) on (5, 3) -> "
        "CuDNNGRU(3) -> Dense(2, softmax), with cuDNN's own weight layout "
        "(bias 2*gates*units)",
        "2.2.4", "tensorflow",
        lambda k: (k.cudnn("CuDNNLSTM", 4, input_shape=(5, 3),
                           return_sequences=True),
                   k.cudnn("CuDNNGRU", 3), k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["class names CuDNNLSTM / CuDNNGRU, layer names cu_dnnlstm_1 / "
         "cu_dnngru_1", "configs without activation, recurrent_activation, "
         "unroll, dropout, implementation", "kernel (3, 16), recurrent_kernel"
         " (4, 16), bias (32,) for CuDNNLSTM(4); (4, 9), (3, 9), (18,) for "
         "CuDNNGRU(3)", "the weights must be converted (per-gate Fortran-order"
         " reinterpretation of the kernels, transposed recurrent kernels, "
         "LSTM bias halves summed, GRU bias reshaped to (2, 9)) and computed "
         "with sigmoid gates (GRU: reset_after)"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "cudnn_k224", "cudnn_convert"]),
    "k224_options": Case(
        "Keras 2.2.4: LSTM(4, implementation=2, unroll=True, dropout=0.2, "
        "recurrent_dropout=0.1, L1L2 regularizers, max_norm/unit_norm/non_neg"
        " constraints, return_sequences=True) on (4, 3) -> GRU(3, "
        "implementation=2, unroll=True, dropout, recurrent_dropout, "
        "reset_after=True, recurrent_activation='sigmoid', min_max_norm) -> "
        "SimpleRNN(2, unroll=True, dropout, recurrent_dropout) -> Dense(2, "
        "l2, max_norm)",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(4, 3), return_sequences=True,
                         implementation=2, unroll=True, dropout=0.2,
                         recurrent_dropout=0.1,
                         kernel_regularizer=l1l2(l2=0.01),
                         recurrent_regularizer=l1l2(l1=0.001),
                         bias_regularizer=l1l2(0.01, 0.01),
                         activity_regularizer=l1l2(l2=0.001),
                         kernel_constraint=max_norm(2.0),
                         recurrent_constraint=unit_norm(),
                         bias_constraint=non_neg()),
                   k.rnn("GRU", 3, return_sequences=True, implementation=2,
                         unroll=True, dropout=0.3, recurrent_dropout=0.2,
                         reset_after=True, recurrent_activation="sigmoid",
                         kernel_constraint=min_max_norm(0.0, 1.5)),
                   k.rnn("SimpleRNN", 2, unroll=True, dropout=0.1,
                         recurrent_dropout=0.1),
                   k.dense(2, kernel_regularizer=l1l2(l2=0.01),
                           kernel_constraint=max_norm(3.0))),
        floats(3, 4, 3),
        ["options that change nothing at inference: implementation 2, "
         "unroll, dropout, recurrent_dropout, regularizers (L1L2 with "
         "float32-rounded factors), constraints (MaxNorm, UnitNorm, NonNeg, "
         "MinMaxNorm)", "Keras 2.2.4 GRU(reset_after=True): bias (2, 9)",
         "Dense activation 'linear' written explicitly"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "core_k224"]),
    "k224_relu_simple_rnn": Case(
        "Keras 2.2.4: SimpleRNN(4, activation='relu', return_sequences=True) "
        "on (5, 3) -> Dropout(0.5) -> SimpleRNN(3, activation='relu') -> "
        "Dense(2) -> Activation('softmax')",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("SimpleRNN", 4, input_shape=(5, 3),
                         return_sequences=True, activation="relu"),
                   k.dropout(0.5), k.rnn("SimpleRNN", 3, activation="relu"),
                   k.dense(2), k.activation("softmax")),
        floats(3, 5, 3),
        ["relu SimpleRNN", "Dropout and Activation layers: groups with an "
         "empty weight_names (float64 (0,) attribute)"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "core_k224"]),
    "k224_stateful_lstm": Case(
        "Keras 2.2.4: LSTM(3, stateful=True) with batch_input_shape=(1, 6, 2)"
        " -> Dense(2). `expected` is the first predict after loading (zero "
        "state), `second_predict` a second predict on the same input (state "
        "carried over)",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("LSTM", 3, input_shape=(6, 2), batch_size=1,
                         stateful=True),
                   k.dense(2)),
        floats(1, 6, 2),
        ["stateful LSTM", "batch_input_shape [1, 6, 2] (fixed batch)"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216"]),
    "k224_bidirectional": Case(
        "Keras 2.2.4: Bidirectional(LSTM(3, return_sequences=True)) on (5, 3)"
        " (concat) -> Bidirectional(LSTM(2), merge_mode='sum') -> Dense(2, "
        "softmax)",
        "2.2.4", "tensorflow",
        lambda k: (k.bidirectional("LSTM", 3, input_shape=(5, 3),
                                   return_sequences=True),
                   k.bidirectional("LSTM", 2, merge_mode="sum"),
                   k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["Bidirectional as Keras 2.2.4 saved it: weight names "
         "'bidirectional_1/forward_lstm_1/kernel:0', ..., "
         "'bidirectional_1/backward_lstm_1/bias:0' (forward first)",
         "the wrapped layer's config keeps its own name (lstm_1), "
         "batch_input_shape/dtype on the wrapper"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "bidir_k224"]),
    "k224_embedding_mask": Case(
        "Keras 2.2.4: Embedding(10, 4, mask_zero=True, input_length=6) -> "
        "LSTM(3) -> Dense(1, sigmoid) on zero-padded integer ids",
        "2.2.4", "tensorflow",
        lambda k: (k.embedding(10, 4, 6, mask_zero=True), k.rnn("LSTM", 3),
                   k.dense(1, "sigmoid")),
        padded_ids(10, 6, [6, 4, 2, 1]),
        ["Embedding with batch_input_shape [null, 6] and dtype 'float32' "
         "(ids are fed as floats in Keras 2)", "mask_zero: padded steps "
         "skipped by the LSTM"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "embedding_k224", "weights_tf_k2", "rnn_k216", "core_k224"]),
    "k224_time_distributed": Case(
        "Keras 2.2.4: LSTM(4, return_sequences=True) on (5, 3) -> "
        "TimeDistributed(Dense(3, relu)) -> Dropout(0.25) -> "
        "TimeDistributed(Dense(2)) -> Activation('softmax')",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(5, 3), return_sequences=True),
                   k.time_distributed_dense(3, "relu"), k.dropout(0.25),
                   k.time_distributed_dense(2), k.activation("softmax")),
        floats(3, 5, 3),
        ["TimeDistributed(Dense) weights named after the wrapper "
         "('time_distributed_1/kernel:0'); the inner Dense's config is "
         "named dense_1 / dense_2", "Dropout and Activation without weights"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "td_k224",
         "core_k224"]),
    "k224_long_sequence": Case(
        "Keras 2.2.4: LSTM(4) on (8800, 1) -> Dense(1); input (2, 8800, 1) "
        "in k224_long_sequence.input.npy (see `input.file`); `expected` is "
        "the model output (the last LSTM output through Dense), shape (2, 1)",
        "2.2.4", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(8800, 1)), k.dense(1)),
        long_input,
        ["8,800 timesteps", "batch_input_shape [null, 8800, 1]",
         "hard_sigmoid LSTM (the Keras 2 default) over a long run"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "rnn_k216", "hard_sigmoid_k2"]),
    "tf22_lstm_gru": Case(
        "tf.keras of TensorFlow 2.2 (keras_version '2.3.0-tf'): "
        "LSTM(4, return_sequences=True) on (5, 3) -> LSTM(3, "
        "return_sequences=True) -> GRU(2) -> Dense(2, softmax)",
        "2.3.0-tf", "tensorflow",
        lambda k: (k.rnn("LSTM", 4, input_shape=(5, 3), return_sequences=True),
                   k.rnn("LSTM", 3, return_sequences=True), k.rnn("GRU", 2),
                   k.dense(2, "softmax")),
        floats(3, 5, 3),
        ["keras_version '2.3.0-tf' and backend 'tensorflow' as "
         "variable-length UTF-8 strings (Python str), model_config as "
         "variable-length ASCII (bytes)", "layer_names / weight_names "
         "fixed-length 'S' (h5py 2.10), unlike tf_keras 2.21's "
         "variable-length strings", "config {'name': 'sequential', 'layers': "
         "[...], 'build_input_shape': [null, 5, 3]} WITHOUT an InputLayer "
         "entry (tf_keras 2.21 writes one and no build_input_shape)",
         "zero-based names (lstm, lstm_1, gru, dense); weight names with the "
         "auto-numbered cell scope: 'lstm_1/lstm_cell_1/kernel:0' (tf_keras "
         "2.21 writes 'lstm_1/lstm_cell/kernel:0')", "dtype on every layer, "
         "time_major, implementation 2, GRU reset_after true (bias (2, 6)), "
         "recurrent_activation 'sigmoid'", "layer groups created in sorted "
         "name order"],
        ["save_tf22", "h5py2_types", "seq_tf22", "names_tf22", "base_tf22",
         "weights_tf22", "tf22_rnn", "tf22_version"],
        dialect="tf22"),
    # --- the layers around the RNNs, and Functional models --------------------
    "k224_cnn_lstm": Case(
        "Keras 2.2.4: the CNN-LSTM of the tutorials as a Sequential model: "
        "Conv1D(4, 3, padding='same', relu) on (12, 3) -> "
        "BatchNormalization() -> MaxPooling1D(2) -> LSTM(4) -> Dense(2, "
        "softmax)",
        "2.2.4", "tensorflow", net_cnn_lstm_k224, wide(3, 12, 3),
        ["Conv1D config as 2.2.4 wrote it: kernel_size [3], strides [1], "
         "dilation_rate [1] as lists, data_format 'channels_last', no rank",
         "Conv1D kernel (3, 3, 4) 'conv1d_1/kernel:0', bias (4,)",
         "BatchNormalization after a conv: axis -1, weights gamma, beta, "
         "moving_mean, moving_variance ('batch_normalization_1/"
         "moving_variance:0'; the last two non-trainable)",
         "MaxPooling1D config keys strides, pool_size, padding, data_format"
         " (strides first), as lists"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "conv_k2", "bn_k224", "pool_k2",
         "rnn_k216", "hard_sigmoid_k2", "core_k224"],
        net="sequential"),
    "k216_cnn_gru": Case(
        "Keras 2.1.6: Conv1D(4, 3, relu) on (10, 2) -> MaxPooling1D(2) -> "
        "GRU(3) -> Dense(2, softmax), Sequential (bare-list config); Conv1D "
        "and MaxPooling1D configs without data_format",
        "2.1.6", "tensorflow", net_cnn_gru_k216, wide(3, 10, 2),
        ["Keras 2.1.6 Conv1D.get_config pops 'rank' and 'data_format' (2.2.0"
         " keeps data_format)", "MaxPooling1D config without data_format "
         "(strides, pool_size, padding; data_format came in 2.2.3)",
         "'valid' convolution: 10 -> 8 steps, pooled to 4",
         "GRU implementation 1, reset_after false, hard_sigmoid"],
        ["save_k21", "h5py2_types", "seq_list", "names_k2", "first_layer_k2",
         "weights_tf_k2", "conv_k2", "pool_k2", "rnn_k216",
         "hard_sigmoid_k2", "core_k224"],
        net="sequential"),
    "k208_functional_cnn_lstm": Case(
        "Keras 2.0.8 Functional model: Input((10, 3)) -> Conv1D(4, 3, "
        "padding='same', relu) -> MaxPooling1D(2) -> LSTM(3, "
        "return_sequences=True) -> GlobalMaxPooling1D() -> Dense(1, "
        "sigmoid); Model(inp, out)",
        "2.0.8", "tensorflow", net_functional_cnn_lstm_k208,
        wide(3, 10, 3),
        ["class_name 'Model', config {'name': 'model_1', 'layers', "
         "'input_layers': [['input_1', 0, 0]], 'output_layers'}",
         "an InputLayer entry 'input_1' with inbound_nodes [] and its own "
         "(weightless) group in model_weights",
         "inbound_nodes [[['input_1', 0, 0, {}]]]",
         "Keras 2.0.8 layer configs: Conv1D without data_format, "
         "MaxPooling1D without data_format, GlobalMaxPooling1D with name "
         "and trainable only, LSTM with implementation 0 after unroll"],
        ["save_k21", "h5py2_types", "functional_k2", "graph_order_k2",
         "input_layer_k2", "names_k2", "weights_tf_k2", "conv_k2", "pool_k2",
         "global_pool_k2", "rnn_k208", "hard_sigmoid_k2", "core_k224"],
        net="functional"),
    "k224_batchnorm_rnn": Case(
        "Keras 2.2.4: LSTM(4, return_sequences=True) on (5, 3) -> "
        "BatchNormalization(scale=False, epsilon=0.01) -> GRU(3) -> "
        "BatchNormalization(momentum=0.9) -> Dense(2, softmax)",
        "2.2.4", "tensorflow", net_batchnorm_rnn_k224, wide(3, 5, 3),
        ["BatchNormalization between recurrent layers, on (None, 5, 4) and "
         "(None, 3)", "scale=False: no gamma, weight_names beta, "
         "moving_mean, moving_variance", "epsilon 0.01 and momentum 0.9 "
         "written as given (not float32-rounded)"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "bn_k224", "rnn_k216",
         "hard_sigmoid_k2", "core_k224"],
        net="sequential"),
    "k224_reshape_permute": Case(
        "Keras 2.2.4: Reshape((4, 6)) on (24,) -> Permute((2, 1)) -> "
        "SpatialDropout1D(0.2) -> LSTM(3, return_sequences=True) -> "
        "GlobalAveragePooling1D() -> Dense(2, softmax)",
        "2.2.4", "tensorflow", net_reshape_permute_k224, wide(3, 24),
        ["Reshape as the first layer: batch_input_shape [null, 24], "
         "target_shape [4, 6]", "Permute dims [2, 1] (1-based, the batch "
         "axis excluded)", "SpatialDropout1D config rate, noise_shape, seed",
         "GlobalAveragePooling1D with data_format 'channels_last'"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "core_more_k224",
         "global_pool_k2", "rnn_k216", "hard_sigmoid_k2", "core_k224"],
        net="sequential"),
    "k224_functional_merge": Case(
        "Keras 2.2.4 Functional model with two inputs: LSTM(4, "
        "return_sequences=True) on input_1 (5, 3) -> GlobalMaxPooling1D and "
        "GlobalAveragePooling1D; GRU(4) on input_2 (4, 2); Concatenate([Add"
        "([max, gru]), Multiply([avg, gru])]) -> Dense(2, softmax)",
        "2.2.4", "tensorflow", net_functional_merge_k224,
        several(wide(3, 5, 3), wide(3, 4, 2)),
        ["two inputs: input_layers [['input_1', 0, 0], ['input_2', 0, 0]]",
         "merge layers with two inbound tensors: [[['global_max_pooling1d_1',"
         " 0, 0, {}], ['gru_1', 0, 0, {}]]]", "model.layers (and "
         "layer_names) in Keras 2's depth order, not the order of creation:"
         " input_1, input_2, lstm_1, global_max_pooling1d_1, "
         "global_average_pooling1d_1, gru_1, add_1, multiply_1, "
         "concatenate_1, dense_1", "Concatenate axis -1; Add and Multiply "
         "with name and trainable only"],
        ["save_k224", "h5py2_types", "functional_k2", "graph_order_k2",
         "input_layer_k2", "names_k2", "weights_tf_k2", "global_pool_k2",
         "merge_k224", "rnn_k216", "hard_sigmoid_k2", "core_k224"],
        net="functional"),
    "k224_encoder_decoder": Case(
        "Keras 2.2.4 encoder-decoder (the Keras blog's lstm_seq2seq, "
        "smaller): LSTM(4, return_state=True) on input_1 (None, 3); its "
        "states h, c are the initial_state of LSTM(4, return_sequences=True,"
        " return_state=True) on input_2 (None, 2) -> Dense(3, softmax) on "
        "every step",
        "2.2.4", "tensorflow", net_encoder_decoder_k224,
        several(wide(3, 5, 3), wide(3, 4, 2)),
        ["return_state true in both LSTM configs", "the decoder's inbound "
         "node lists the initial states as extra inbound tensors: "
         "[[['input_2', 0, 0, {}], ['lstm_1', 0, 1, {}], ['lstm_1', 0, 2, "
         "{}]]] (no initial_state kwarg)", "the encoder's first output "
         "(index 0) is unused; the decoder's states are unused",
         "variable-length inputs: batch_input_shape [null, null, 3]",
         "Dense on a 3-D tensor (every step)"],
        ["save_k224", "h5py2_types", "functional_k2", "graph_order_k2",
         "input_layer_k2", "names_k2", "weights_tf_k2", "return_state_k224",
         "rnn_k216", "hard_sigmoid_k2", "core_k224"],
        net="functional"),
    "k224_td_conv2d": Case(
        "Keras 2.2.4: TimeDistributed(Conv2D(2, (3, 3), relu)) on (3, 6, 6,"
        " 1) -> TimeDistributed(MaxPooling2D((2, 2))) -> TimeDistributed("
        "Flatten()) -> LSTM(3) -> Dense(2, softmax): a CNN per frame, then "
        "an LSTM",
        "2.2.4", "tensorflow", net_td_conv2d_k224, wide(2, 3, 6, 6, 1),
        ["TimeDistributed(Conv2D) weights named after the wrapper: "
         "'time_distributed_1/kernel:0' (3, 3, 1, 2); inner configs named "
         "conv2d_1, max_pooling2d_1, flatten_1", "Conv2D config keeps "
         "data_format and lists kernel_size [3, 3], strides [1, 1], "
         "dilation_rate [1, 1]", "MaxPooling2D keys pool_size, padding, "
         "strides, data_format", "5-D input (batch, time, rows, cols, "
         "channels)"],
        ["save_k224", "h5py2_types", "seq_dict_k224", "names_k2",
         "first_layer_k2", "weights_tf_k2", "td_conv_k224", "conv_k2",
         "pool_k2", "core_more_k224", "rnn_k216", "hard_sigmoid_k2",
         "core_k224"],
        net="sequential"),
    "tf22_functional_cnn_lstm": Case(
        "tf.keras of TensorFlow 2.2 (keras_version '2.3.0-tf'), Functional: "
        "Input((12, 3)) -> Conv1D(4, 3, padding='same', relu) -> "
        "BatchNormalization() -> MaxPooling1D(2) -> LSTM(4) -> Dense(2, "
        "softmax)",
        "2.3.0-tf", "tensorflow", net_functional_cnn_lstm_tf22,
        wide(3, 12, 3),
        ["class_name 'Model' (tf.keras 2.2 has no 'Functional'), config "
         "{'name': 'model', 'layers', 'input_layers', 'output_layers'}",
         "layer entries in the order class_name, config, name, "
         "inbound_nodes", "InputLayer 'input_1' (one-based, unlike the "
         "layers) with ragged false", "BatchNormalization axis [2] (a "
         "list, made non-negative by build)", "zero-based names conv1d, "
         "batch_normalization, max_pooling1d, lstm, dense; "
         "'lstm/lstm_cell/kernel:0'", "layer groups in sorted name order"],
        ["save_tf22", "h5py2_types", "functional_tf22", "graph_order_k2",
         "input_layer_tf22", "names_tf22", "base_tf22", "weights_tf22",
         "conv_tf22", "bn_tf22", "pool_tf22", "tf22_rnn", "tf22_version"],
        dialect="tf22", net="functional"),
    "tf22_encoder_decoder": Case(
        "tf.keras of TensorFlow 2.2, Functional encoder-decoder with GRUs: "
        "GRU(4, return_state=True) on input_1 (None, 3); its state is the "
        "initial_state of GRU(4, return_sequences=True) on input_2 (None, "
        "2) -> Dense(3, softmax) on every step",
        "2.3.0-tf", "tensorflow", net_encoder_decoder_tf22,
        several(wide(3, 5, 3), wide(3, 4, 2)),
        ["the decoder's inbound node [[['input_2', 0, 0, {}], ['gru', 0, 1, "
         "{}]]]", "GRU reset_after true (bias (2, 12)), sigmoid, "
         "implementation 2; cells gru_cell, gru_cell_1",
         "return_state true on the encoder"],
        ["save_tf22", "h5py2_types", "functional_tf22", "graph_order_k2",
         "input_layer_tf22", "names_tf22", "base_tf22", "weights_tf22",
         "return_state_tf22", "tf22_rnn", "tf22_version"],
        dialect="tf22", net="functional"),
}


# One line per case for the README table and the JSON's "model".
SHORT = {
    "k224_lstm_dense": "LSTM(4) -> Dense(3, softmax); compiled (Adam) and "
                       "trained: training_config + optimizer_weights",
    "k222_bare_list_lstm_dense": "LSTM(4) -> Dense(3, softmax); compiled "
                                 "(SGD): training_config only",
    "k208_gru_simple_rnn": "GRU(4, seq) -> SimpleRNN(3) -> Dense(2, softmax)",
    "k210_gru_simple_rnn": "GRU(4, seq) -> SimpleRNN(3) -> Dense(2, softmax)",
    "k216_gru_simple_rnn": "GRU(4, seq) -> SimpleRNN(3) -> Dense(2, softmax)",
    "k216_theano_lstm_gru": "LSTM(4, seq) -> GRU(3) -> Dense(2, softmax)",
    "k224_hard_sigmoid": "LSTM(4, hard_sigmoid, seq) -> GRU(3, hard_sigmoid)"
                         " -> Dense(2, softmax); input x3",
    "k224_cudnn": "CuDNNLSTM(4, seq) -> CuDNNGRU(3) -> Dense(2, softmax)",
    "k224_options": "LSTM(4, impl 2, unroll, dropout, regularizers, "
                    "constraints, seq) -> GRU(3, impl 2, unroll, reset_after, "
                    "sigmoid, seq) -> SimpleRNN(2, unroll) -> Dense(2)",
    "k224_relu_simple_rnn": "SimpleRNN(4, relu, seq) -> Dropout(0.5) -> "
                            "SimpleRNN(3, relu) -> Dense(2) -> "
                            "Activation(softmax)",
    "k224_stateful_lstm": "LSTM(3, stateful), batch_input_shape (1, 6, 2) -> "
                          "Dense(2)",
    "k224_bidirectional": "Bidirectional(LSTM(3, seq)) -> Bidirectional("
                          "LSTM(2), sum) -> Dense(2, softmax)",
    "k224_embedding_mask": "Embedding(10, 4, mask_zero, input_length 6) -> "
                           "LSTM(3) -> Dense(1, sigmoid)",
    "k224_time_distributed": "LSTM(4, seq) -> TimeDistributed(Dense(3, relu))"
                             " -> Dropout(0.25) -> TimeDistributed(Dense(2)) -> "
                             "Activation(softmax)",
    "k224_long_sequence": "LSTM(4) on 8,800 timesteps x 1 -> Dense(1)",
    "tf22_lstm_gru": "LSTM(4, seq) -> LSTM(3, seq) -> GRU(2) -> Dense(2, "
                     "softmax)",
    "k224_cnn_lstm": "Conv1D(4, 3, same, relu) -> BatchNormalization -> "
                     "MaxPooling1D(2) -> LSTM(4) -> Dense(2, softmax)",
    "k216_cnn_gru": "Conv1D(4, 3, relu) -> MaxPooling1D(2) -> GRU(3) -> "
                    "Dense(2, softmax)",
    "k208_functional_cnn_lstm": "Functional: Input -> Conv1D(4, 3, same, "
                                "relu) -> MaxPooling1D(2) -> LSTM(3, seq) ->"
                                " GlobalMaxPooling1D -> Dense(1, sigmoid)",
    "k224_batchnorm_rnn": "LSTM(4, seq) -> BatchNormalization(scale=False) "
                          "-> GRU(3) -> BatchNormalization -> Dense(2, "
                          "softmax)",
    "k224_reshape_permute": "Reshape((4, 6)) -> Permute((2, 1)) -> "
                            "SpatialDropout1D(0.2) -> LSTM(3, seq) -> "
                            "GlobalAveragePooling1D -> Dense(2, softmax)",
    "k224_functional_merge": "Functional, 2 inputs: LSTM(4, seq) -> "
                             "GlobalMax/AveragePooling1D; GRU(4); Add, "
                             "Multiply, Concatenate -> Dense(2, softmax)",
    "k224_encoder_decoder": "Functional, 2 inputs: LSTM(4, return_state) -> "
                            "[h, c] -> initial_state of LSTM(4, seq, "
                            "return_state) -> Dense(3, softmax)",
    "k224_td_conv2d": "TimeDistributed(Conv2D(2, 3x3, relu)) -> "
                      "TimeDistributed(MaxPooling2D) -> TimeDistributed("
                      "Flatten) -> LSTM(3) -> Dense(2, softmax)",
    "tf22_functional_cnn_lstm": "Functional: Input -> Conv1D(4, 3, same, "
                                "relu) -> BatchNormalization -> "
                                "MaxPooling1D(2) -> LSTM(4) -> Dense(2, "
                                "softmax)",
    "tf22_encoder_decoder": "Functional, 2 inputs: GRU(4, return_state) -> "
                            "h -> initial_state of GRU(4, seq) -> Dense(3, "
                            "softmax)",
}
assert set(SHORT) == set(CASES)


# --------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------

def case_rng(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def fresh():
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)


def f32_list(arr):
    return np.asarray(arr).astype(np.float32).astype(np.float64).ravel(
    ).tolist()


def tensor(arr):
    arr = np.asarray(arr)
    return {"shape": list(arr.shape), "data": f32_list(arr)}


def capture_summary(model):
    chunks = []
    model.summary(print_fn=lambda line, *a, **k: chunks.append(str(line)))
    return "\n".join(c.rstrip("\n") for c in chunks)


def predict(model, x):
    batch = len(x[0]) if isinstance(x, list) else len(x)
    return np.asarray(model.predict(x, verbose=0, batch_size=batch))


def reset_states(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()


def short_error(exc):
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
             for line in str(exc).strip().split("\n")]
    lines = [line for line in lines if line]
    text = lines[0] if lines else ""
    text = text.replace(str(ROOT) + "/", "")
    # TensorFlow lists op attrs in a random order: keep the message stable.
    text = re.sub(r" with these attrs: \[.*?\]", " (attrs omitted)", text)
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


def h5_types(path):
    """{object path: {attr: type description}} -- what was written."""
    out = {}

    def desc(obj, name):
        aid = obj.attrs.get_id(name)
        t = aid.get_type()
        shape = aid.shape
        if isinstance(t, h5py.h5t.TypeStringID):
            cset = "UTF-8" if t.get_cset() == h5py.h5t.CSET_UTF8 else "ASCII"
            if t.is_variable_str():
                kind = f"variable-length {cset} string"
            else:
                kind = f"fixed-length {cset} string S{t.get_size()}"
        else:
            kind = aid.dtype.str
        return kind + (f", shape {list(shape)}" if shape else ", scalar")

    with h5py.File(path, "r") as f:
        out["/"] = {k: desc(f, k) for k in f.attrs}

        def visit(n, o):
            if o.attrs:
                out[n] = {k: desc(o, k) for k in o.attrs}
        f.visititems(visit)
    return out


def h5_datasets(path):
    rows = []
    with h5py.File(path, "r") as f:
        def visit(n, o):
            if isinstance(o, h5py.Dataset):
                rows.append({"path": n, "shape": list(o.shape),
                             "dtype": o.dtype.str,
                             "layout": "contiguous" if o.chunks is None
                             else "chunked"})
        f.visititems(visit)
    return rows


def optimizer_state(layers, rng):
    """Adam after training, as [K224] optimizers.py `Adam.get_updates` made
    it: iterations, then m and v per trainable weight, then vhats (shape
    (1,) each when amsgrad=False), named in the order the variables were
    created. Values: iterations 120, moments rng.uniform(-0.01, 0.01)."""
    params = [w for l in layers for _, w in l.weights]
    out = [("Adam/iterations:0", np.asarray(120, dtype=np.int64))]
    shapes = ([p.shape for p in params] * 2) + [(1,)] * len(params)
    for i, s in enumerate(shapes):
        suffix = "" if i == 0 else f"_{i}"
        out.append((f"training/Adam/Variable{suffix}:0",
                    rng.uniform(-0.01, 0.01, size=s).astype(np.float32)))
    return out


def training_config(kind):
    """training_k224 (values as Keras 2.2.x wrote them for these optimizers:
    float() of float32 K.variables; 'epsilon': K.epsilon())."""
    if kind == "adam_trained":
        opt = {"class_name": "Adam",
               "config": {"lr": f32(0.001), "beta_1": f32(0.9),
                          "beta_2": f32(0.999), "decay": 0.0,
                          "epsilon": 1e-07, "amsgrad": False}}
        metrics = ["accuracy"]
    else:
        opt = {"class_name": "SGD",
               "config": {"lr": f32(0.01), "momentum": 0.0, "decay": 0.0,
                          "nesterov": False}}
        metrics = []
    return json.dumps({"optimizer_config": opt,
                       "loss": "categorical_crossentropy",
                       "metrics": metrics, "sample_weight_mode": None,
                       "loss_weights": None})


def expected_candidate(loaded_out, eq_out):
    return loaded_out if loaded_out is not None else eq_out


def lstm_dense_numpy_reference(layers, x):
    """float64 Keras-2 LSTM (hard_sigmoid, gates i, f, c, o) then Dense."""
    (_, kernel), (_, rec), (_, bias) = layers[0].weights
    (_, dk), (_, db) = layers[1].weights
    kernel, rec, bias = (np.asarray(a, np.float64) for a in (kernel, rec,
                                                             bias))
    u = rec.shape[0]
    hs = lambda v: np.clip(0.2 * v + 0.5, 0.0, 1.0)  # noqa: E731
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    xs = x.astype(np.float64)
    for t in range(xs.shape[1]):
        z = xs[:, t, :] @ kernel + h @ rec + bias
        i, f = hs(z[:, :u]), hs(z[:, u:2 * u])
        cc, o = np.tanh(z[:, 2 * u:3 * u]), hs(z[:, 3 * u:])
        c = f * c + i * cc
        h = o * np.tanh(c)
    return h @ np.asarray(dk, np.float64) + np.asarray(db, np.float64)


def load_patched(path, x):
    """Load a temporary copy of `path` whose GRU configs get
    'reset_after': false, predict x."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cp = Path(tmp) / path.name
        shutil.copy(path, cp)
        with h5py.File(cp, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            layers = cfg["config"]
            if isinstance(layers, dict):
                layers = layers["layers"]
            for entry in layers:
                if entry["class_name"] == "GRU":
                    entry["config"]["reset_after"] = False
            attr_bytes(f, "model_config", json.dumps(cfg).encode("utf8"))
        fresh()
        model = tf_keras.models.load_model(str(cp), compile=False)
        return predict(model, x)


def cudnn_numpy_reference(layers, x):
    """Independent float64 forward pass of a CuDNNLSTM/CuDNNGRU/Dense stack
    from the RAW file weights, with cuDNN's conventions ([K224]
    cudnn_recurrent.py: `_canonical_to_params` reshapes each gate slice
    kernel[:, g*u:(g+1)*u] to 1-D (C order); cuDNN reads a gate's input
    weights as a row-major (units, input) matrix W, gate = W x + b_w + R h +
    b_r; GRU: h~ = tanh(W_h x + b_wh + r * (R_h h + b_rh)), h' = z*h +
    (1-z)*h~; LSTM gates i, f, c, o; GRU gates z, r, h in the Keras
    layout)."""
    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    h_seq = x.astype(np.float64)
    for layer in layers:
        w = [np.asarray(v, np.float64) for _, v in layer.weights]
        if layer.class_name == "Dense":
            kernel, bias = w
            z = h_seq @ kernel + bias
            act = layer.config["activation"]
            if act == "softmax":
                e = np.exp(z - z.max(axis=-1, keepdims=True))
                h_seq = e / e.sum(axis=-1, keepdims=True)
            else:
                assert act == "linear", act
                h_seq = z
            continue
        kernel, rec, bias = w
        units = rec.shape[0]
        feat = kernel.shape[0]
        gates = kernel.shape[1] // units
        W = [kernel[:, g * units:(g + 1) * units].reshape(-1).reshape(
            units, feat) for g in range(gates)]
        R = [rec[:, g * units:(g + 1) * units].reshape(-1).reshape(
            units, units) for g in range(gates)]
        bw = [bias[g * units:(g + 1) * units] for g in range(gates)]
        br = [bias[(gates + g) * units:(gates + g + 1) * units]
              for g in range(gates)]
        batch, steps = h_seq.shape[0], h_seq.shape[1]
        h = np.zeros((batch, units))
        c = np.zeros((batch, units))
        outs = []
        for t in range(steps):
            xt = h_seq[:, t, :]
            a = [xt @ W[g].T + bw[g] for g in range(gates)]
            r_ = [h @ R[g].T + br[g] for g in range(gates)]
            if layer.class_name == "CuDNNLSTM":
                i, f = sig(a[0] + r_[0]), sig(a[1] + r_[1])
                cc, o = np.tanh(a[2] + r_[2]), sig(a[3] + r_[3])
                c = f * c + i * cc
                h = o * np.tanh(c)
            else:
                z, r = sig(a[0] + r_[0]), sig(a[1] + r_[1])
                hh = np.tanh(a[2] + r * r_[2])
                h = z * h + (1 - z) * hh
            outs.append(h)
        if layer.config["return_sequences"]:
            h_seq = np.stack(outs, axis=1)
        else:
            h_seq = h
    return h_seq


def build_equivalent(layers, first_kwargs, use_cudnn_convert=False):
    fresh()
    L = tf_keras.layers
    tl = []
    for i, layer in enumerate(layers):
        tl.append(layer.equiv(L, first_kwargs if i == 0 else {}))
    model = tf_keras.Sequential(tl)
    return model


def make_case(name, case):
    rng = case_rng(name)
    if case.dialect == "tf22":
        k = TfKeras22(rng)
    else:
        k = Keras2(vtuple(case.version), case.backend, rng)
    if case.net:
        k = Net(k, functional=case.net == "functional")
        case.build(k)
        k.finish()
    else:
        case.build(k)
    layers = k.layers
    x = case.make_x(rng)
    if isinstance(x, list):
        # several inputs (float32 each), in the order of the model's inputs
        dtype = "float32"
        x = [a.astype(dtype) for a in x]
    else:
        dtype = "int32" if np.issubdtype(x.dtype, np.integer) else "float32"
        x = x.astype(dtype)
    model_config = k.model_config()
    path = OUT_DIR / f"{name}.h5"

    tconf, opt_w = None, ()
    if case.compiled:
        tconf = training_config(case.compiled)
        if case.compiled == "adam_trained":
            opt_w = optimizer_state(layers, rng)
    if case.dialect == "tf22":
        write_tf22(path, model_config, layers)
    else:
        write_keras2(path, case.version, case.backend, model_config, layers,
                     tconf, opt_w)

    stateful = any(l.config.get("stateful") for l in layers)
    notes = list(case.notes)

    # 1. Real Keras: tf_keras 2.21 reads the file we wrote.
    load = {}
    loaded_out = second = summary = params = loaded_weight_names = None
    try:
        fresh()
        model = tf_keras.models.load_model(str(path), compile=False)
        load["load_model(compile=False)"] = "ok"
        summary = capture_summary(model)
        params = int(model.count_params())
        loaded_weight_names = [w.name for w in model.weights]
        try:
            if stateful:
                reset_states(model)
            loaded_out = predict(model, x)
            if stateful:
                second = predict(model, x)
            load["predict"] = "ok"
        except Exception as exc:  # noqa: BLE001 - recorded in the JSON
            load["predict"] = "fails: " + short_error(exc)
    except Exception as exc:  # noqa: BLE001 - recorded in the JSON
        load["load_model(compile=False)"] = "fails: " + short_error(exc)
    if tconf is not None:
        try:
            fresh()
            tf_keras.models.load_model(str(path), compile=True)
            load["load_model(compile=True)"] = "ok"
        except Exception as exc:  # noqa: BLE001
            load["load_model(compile=True)"] = "fails: " + short_error(exc)

    # 2. The equivalent tf_keras model, given the same weights.
    if case.net:
        eq = k.equivalent()
    else:
        eq = build_equivalent(layers, k.first_kwargs)
    eq_summary = capture_summary(eq)
    converted = None
    is_cudnn = any(l.class_name.startswith("CuDNN") for l in layers)
    if is_cudnn:
        # tf_keras's own conversion: legacy load_weights of the full-model
        # file (hdf5_format.load_weights_from_hdf5_group -> topological,
        # preprocess_weights_for_loading -> _convert_rnn_weights).
        eq.load_weights(str(path))
        mine = [w for l in layers for w in (l.equiv_weights or
                                            [v for _, v in l.weights])]
        got = eq.get_weights()
        conv_diff = max(float(np.max(np.abs(a - b))) for a, b in
                        zip(got, mine))
        assert conv_diff == 0.0, conv_diff
        load["equivalent.load_weights(file)"] = (
            "ok (tf_keras converted the CuDNN weights; identical to this "
            "script's own cudnn_to_plain)")
        converted = [tensor(w) for w in got]
    elif case.net:
        k.set_equivalent_weights(eq)
    else:
        eq.set_weights([w for l in layers for _, w in l.weights])
    if stateful:
        reset_states(eq)
    eq_out = predict(eq, x)
    eq_second = predict(eq, x) if stateful else None

    gru_without_reset_after = [
        l for l in layers if l.class_name == "GRU"
        and "reset_after" not in l.config]
    if loaded_out is None and gru_without_reset_after:
        # Why tf_keras fails, and proof that it is the only obstacle: the
        # same file with 'reset_after': false added to each GRU config loads
        # and predicts exactly the equivalent model's output.
        y = load_patched(path, x)
        d = float(np.max(np.abs(y - eq_out)))
        assert d == 0.0, (name, d)
        load["load_model of a copy with 'reset_after': false added"] = (
            f"ok, predict == expected (max abs diff {d:g})")
        notes.append(
            "tf_keras 2.21 cannot load this file: the GRU config has no "
            "'reset_after', so tf_keras uses its own default reset_after=True "
            "(tf_keras/src/layers/rnn/gru.py `GRU.__init__`), builds a (2, "
            "3*units) bias, and hdf5_format.py `_convert_rnn_weights` refuses "
            "the file's (3*units,) bias ('GRU(reset_after=False) is not "
            "compatible with GRU(reset_after=True)'). In Keras <= 2.1.4 GRU "
            "had no reset_after and always computed the reset-before variant,"
            " so a missing reset_after means False. Expected = the "
            "equivalent tf_keras model with GRU(reset_after=False, "
            "recurrent_activation='hard_sigmoid') given the file's weights; "
            "a copy of the file with 'reset_after': false added loads in "
            "tf_keras and predicts exactly the same")
    if name == "k224_long_sequence":
        ref = lstm_dense_numpy_reference(layers, x)
        d = float(np.max(np.abs(ref - expected_candidate(loaded_out, eq_out))))
        assert d < 1e-5, (name, d)
        notes.append(
            "tolerance hint: a float64 numpy LSTM (hard_sigmoid gates = "
            "clip(0.2*x + 0.5, 0, 1)) + Dense over the same weights agrees "
            f"with tf_keras's float32 result to {d:.2g} after 8,800 steps")
    if is_cudnn:
        ref = cudnn_numpy_reference(layers, x)
        d = float(np.max(np.abs(ref - eq_out)))
        assert d < 1e-5, (name, d)
        notes.append(
            "tf_keras 2.21 deserializes CuDNNLSTM/CuDNNGRU (tf_keras.layers "
            "still has them) but cannot predict without a GPU (CudnnRNNV3 has"
            " no CPU kernel). Expected = equivalent tf_keras model "
            "(LSTM(recurrent_activation='sigmoid'), GRU(reset_after=True, "
            "recurrent_activation='sigmoid')) + model.load_weights(<case>.h5)"
            ": tf_keras's own _convert_rnn_weights on load (identical to this "
            "script's cudnn_to_plain). Cross-check: a numpy forward pass "
            "that reads the RAW CuDNN weights the way Keras 2.2.4 "
            "cudnn_recurrent.py `_process_batch`/`_canonical_to_params` hands"
            " them to cuDNN (each gate's (input, units) slice flattened in C "
            "order and read by cuDNN as a row-major (units, input) matrix) "
            f"agrees to {d:.2g}")

    if loaded_out is not None:
        d = float(np.max(np.abs(loaded_out - eq_out)))
        assert d == 0.0, (name, d)
        expected, source = loaded_out, (
            "tf_keras.models.load_model(<case>.h5, compile=False).predict(x)")
        notes.append("the equivalent tf_keras model (see "
                     "`equivalent_model`) given the same weights predicts "
                     "exactly the same (max abs diff 0)")
    else:
        expected, second = eq_out, eq_second
        if is_cudnn:
            source = ("equivalent tf_keras model (`equivalent_model`) + "
                      "model.load_weights(<case>.h5): tf_keras's own "
                      "_convert_rnn_weights on load, then predict(x)")
        else:
            source = ("equivalent tf_keras model (`equivalent_model`) given "
                      "the file's weights with set_weights, then predict(x)")

    payload = {
        "case": name,
        "description": case.description,
        "model": SHORT[name],
        "emulates": {
            "keras_version": case.version,
            "backend": case.backend,
            "writer": ("tf.keras (TensorFlow 2.2) hdf5_format."
                       "save_model_to_hdf5" if case.dialect == "tf22" else
                       f"Keras {case.version} "
                       + ("keras/engine/saving.py _serialize_model"
                          if vtuple(case.version) >= (2, 2, 3) else
                          "keras/engine/saving.py save_model"
                          if vtuple(case.version) >= (2, 2, 0) else
                          "keras/models.py save_model")),
            "h5py": "2.x (string types as h5py 2.10 writes them)",
        },
        "exercises": case.exercises,
        "generated_by": GENERATED_BY,
        "versions": VERSIONS,
    }
    if name == "k224_long_sequence":
        np.save(OUT_DIR / f"{name}.input.npy", x)
        payload["input"] = {"shape": list(x.shape), "dtype": dtype,
                            "file": f"{name}.input.npy",
                            "note": "np.save float32 ('<f4'); row b is "
                                    "sin(2*pi*t/P_b) + 0.2*uniform(-1, 1) "
                                    "with P = (97, 413)"}
    elif isinstance(x, list):
        payload["inputs"] = [
            {"name": s.layer.name, "shape": list(a.shape), "dtype": dtype,
             "data": f32_list(a)} for s, a in zip(k.inputs, x)]
    else:
        payload["input"] = {"shape": list(x.shape), "dtype": dtype,
                            "data": x.ravel().tolist() if dtype == "int32"
                            else f32_list(x)}
    payload["expected"] = {"tf_keras": tensor(expected)}
    payload["expected_source"] = source
    if second is not None:
        payload["second_predict"] = {"tf_keras": tensor(second)}
        notes.append("stateful: predict() does not reset states; "
                     "reset_states() was called before the recorded first "
                     "predict")
    payload.update({
        "params": params if params is not None else int(eq.count_params()),
        "summary": {"tf_keras": summary},
        "tf_keras_load": load,
        "equivalent_model": {
            "layers": [type(l).__name__ + (
                f"({type(l.layer).__name__})" if hasattr(l, "layer") else "")
                for l in eq.layers],
            "config": [l.get_config() for l in eq.layers],
            "summary": eq_summary if summary is None else None,
        },
        "model_config": json.loads(model_config),
        "training_config": json.loads(tconf) if tconf else None,
        "layer_names": [l.name for l in layers],
        "weight_names": {l.name: [n for n, _ in l.weights] for l in layers},
        "tf_keras_weight_names": loaded_weight_names,
        "weights": [tensor(w) | {"name": n} for l in layers
                    for n, w in l.weights],
        "h5_attribute_types": h5_types(path),
        "h5_datasets": h5_datasets(path),
        "files": [f"{name}.h5", f"{name}.json"] + (
            [f"{name}.input.npy"] if name == "k224_long_sequence" else []),
        "sources": {key: CITES[key] for key in case.cites},
        "source_files": {key: SOURCES[key] for key in sorted(SOURCES)
                         if any(f"[{key}]" in CITES[c] for c in case.cites)},
        "notes": notes,
    })
    if payload["equivalent_model"]["summary"] is None:
        del payload["equivalent_model"]["summary"]
    if converted is not None:
        # What tf_keras's conversion made of the CuDNN weights (get_weights
        # order of the equivalent model): for checking a loader's own.
        payload["equivalent_model"]["weights"] = [
            t | {"name": w.name} for t, w in zip(converted, eq.weights)]
    if opt_w:
        payload["optimizer_weight_names"] = [n for n, _ in opt_w]
    with open(OUT_DIR / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")
    return payload


# --------------------------------------------------------------------------
# manifest.json, README.md, --dump
# --------------------------------------------------------------------------

def write_manifest(payloads):
    cases = []
    for p in payloads:
        tl = p["tf_keras_load"]
        load = tl["load_model(compile=False)"]
        cases.append({
            "case": p["case"],
            "file": f"{p['case']}.h5",
            "json": f"{p['case']}.json",
            "keras_version": p["emulates"]["keras_version"],
            "backend": p["emulates"]["backend"],
            "description": p["description"],
            "tf_keras_loads_and_predicts": load == "ok"
            and tl.get("predict") == "ok",
            "tf_keras_load": tl,
            "expected_source": p["expected_source"],
            "expected_shape": p["expected"]["tf_keras"]["shape"],
            "files": p["files"],
        })
    with open(OUT_DIR / "manifest.json", "w", encoding="utf-8") as fh:
        json.dump({"generated_by": GENERATED_BY, "versions": VERSIONS,
                   "regenerate": ".venv-ref/bin/python "
                                 "tools/keras_reference/generate_old_files.py",
                   "sources": SOURCES, "cases": cases}, fh, indent=1)
        fh.write("\n")


def dump_h5(path):
    lines = [f"== {Path(path).name}"]
    types = h5_types(path)
    with h5py.File(path, "r") as f:
        def fmt_attrs(n, o):
            out = []
            for key in o.attrs:
                v = o.attrs[key]
                if isinstance(v, bytes):
                    v = v.decode()
                if isinstance(v, np.ndarray):
                    v = [e.decode() if isinstance(e, bytes) else e
                         for e in v.tolist()]
                s = repr(v)
                if len(s) > 70:
                    s = s[:67] + "...'"
                out.append(f"      @{key} = {s}  [{types[n][key]}]")
            return out
        lines.append("/")
        lines += fmt_attrs("/", f)

        def visit(n, o):
            if isinstance(o, h5py.Dataset):
                lines.append(f"{n}  dataset {list(o.shape)} {o.dtype.str}")
            else:
                lines.append(f"{n}/")
            lines.extend(fmt_attrs(n, o))
        f.visititems(visit)
    return "\n".join(lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--dump":
        for p in sys.argv[2:]:
            print(dump_h5(p))
        return
    only = sys.argv[1:]
    unknown = [c for c in only if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s): {unknown}; known: {list(CASES)}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not only:
        for p in OUT_DIR.iterdir():
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    payloads = []
    for name, case in CASES.items():
        if only and name not in only:
            jpath = OUT_DIR / f"{name}.json"
            if jpath.exists():
                with open(jpath, encoding="utf-8") as fh:
                    payloads.append(json.load(fh))
            continue
        p = make_case(name, case)
        payloads.append(p)
        print(f"{name:28s} {p['emulates']['keras_version']:9s} "
              f"{p['emulates']['backend']:10s} load: "
              f"{p['tf_keras_load']['load_model(compile=False)'][:70]}")
    write_manifest(payloads)
    write_readme(payloads)
    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"total size of {OUT_DIR.relative_to(ROOT)}: {total / 1e3:.1f} kB")


README_HEAD = """\
# Keras 2.0-2.2 and tf.keras 2.2 model files (2017-2020): reference fixtures

Full-model legacy HDF5 files (`model.save("x.h5")`) of Sequential and
Functional models **as Keras 2.0.8, 2.1.0, 2.1.6, 2.2.2, 2.2.4 and tf.keras
of TensorFlow 2.2 wrote them**, with the outputs **real Keras** (tf_keras
2.21) computes from them. They exist because
users' old models did not load in seqnn, and no installable Keras writes
these files any more (those versions need TensorFlow 1.x / Theano and
Python <= 3.7, and h5py >= 3 stores strings differently).

All files here are generated, this README included, by
[`tools/keras_reference/generate_old_files.py`](../../../tools/keras_reference/generate_old_files.py);
do not edit them by hand.

## Regenerating

```sh
.venv-ref/bin/python tools/keras_reference/generate_old_files.py              # everything (~25 s)
.venv-ref/bin/python tools/keras_reference/generate_old_files.py k224_cudnn   # some cases (manifest/README redone)
.venv-ref/bin/python tools/keras_reference/generate_old_files.py --dump F.h5  # HDF5 tree with the exact attribute types
```

Versions used: {versions}. The JSON, `.npy`, manifest and README are
byte-identical from run to run. The `.h5` files differ only in the
modification times HDF5 stores in each dataset's object header (h5py 2.x
recorded them, see "HDF5 types"), i.e. in dates.

## How the files are made, and how they were checked

The script writes each file with h5py call by call as the emulated Keras
did (sources below, cited per detail in the script's comments and in each
JSON's `sources`): same attributes, groups, dataset paths, shapes, weight
names, and the model/training config JSON strings built in the key order of
each `get_config` (what `json.dumps` wrote under Python >= 3.6; Python 2.7
and 3.5 files have the same keys in another order).

Checked against the real code with
[`tools/keras_reference/check_old_files.py`](../../../tools/keras_reference/check_old_files.py):
it runs the Keras 2.0.8, 2.1.0, 2.1.6, 2.2.2 and 2.2.4 sources (their PyPI
archives) on top of TensorFlow 2.21's `tf.compat.v1`, with stubs for their
TF 1.x-only imports, builds each case's model with the real `Sequential` and
layers, saves it with the real `save_model`, and compares. For the 14 Keras
2 Sequential cases other than `k224_cudnn`, the `model_config` and
`training_config` strings are **byte-identical** to the ones written here
and the HDF5 trees (paths, attribute values, dataset shapes and dtypes,
optimizer weights) are identical (only the string types differ, since that
run uses h5py 3). CuDNN layers cannot be called without a GPU, so for
`k224_cudnn` it compares the layer configs (byte-identical) and the names
and shapes of the weights the real layers build (identical). The 8 Keras 2
cases of the second group (convolutions, BatchNormalization, Reshape,
Permute, pooling, merges, Functional models, encoder-decoder) were compared
in the same way, with the same result (byte-identical `model_config`,
identical HDF5 trees), by running in Keras 2.0.8 / 2.1.6 / 2.2.4 the Keras
code quoted above each `net_*` build function of the generator (with that
script's machinery, plus the TF 1.x `tf.nn` functions that take `filter=`
for the convolutions); `check_old_files.py` itself lists only the first 14.
The tf.keras 2.2 cases are written from the TF 2.2.0 sources alone.

Expected outputs come from tf_keras 2.21: `tf_keras.models.load_model(h5,
compile=False).predict(x)`. Each case also builds the equivalent tf_keras
model by hand and gives it the file's weights; when tf_keras loads the file
both outputs must agree exactly (they do, max abs diff 0). When tf_keras
cannot load or run the file (3 cases), `expected` is the equivalent model's
output and the JSON's `notes` say why, from tf_keras's source.

## Cases

| case | emulates | model (seq = return_sequences) | input | tf_keras 2.21 | `expected` from | .h5 bytes |
|------|----------|-------------------------------|-------|---------------|-----------------|-----------|
{case_rows}

`k224_long_sequence` also has `k224_long_sequence.input.npy` ((2, 8800, 1)
float32, 70 kB); its JSON has the input's `file` instead of `data`, and the
expected output is the model's (2, 1) output. The models with two inputs
(`+` in the input column) have `inputs` (a list, in the order of the model's
`input_layers`, each with the InputLayer's `name`) instead of `input`.

The cases from `k224_cnn_lstm` on are built by calling layers on tensors
(`Net` in the generator, the Keras code each stands for quoted above its
`net_*` function); their weights are drawn in the same order as the others
(model.layers, then weight_names), `rng.uniform(-0.6, 0.6)`, except
BatchNormalization's `gamma` and `moving_variance`: `rng.uniform(0.5, 1.5)`;
their inputs are `rng.uniform(-2, 2)`.

## `<case>.json`

```
{{
  "case", "description", "model", "generated_by", "versions",
  "emulates": {{"keras_version", "backend", "writer", "h5py"}},
  "exercises": [...],                       // what the case is for
  "input": {{"shape", "dtype", "data" | "file"}},
  "inputs": [{{"name", "shape", "dtype", "data"}}],  // instead of "input": two-input models
  "expected": {{"tf_keras": {{"shape", "data"}}}},
  "expected_source": "tf_keras.models.load_model(...)..." | "equivalent tf_keras model ...",
  "second_predict": {{...}},                  // k224_stateful_lstm: a 2nd predict (state carried over)
  "params", "summary": {{"tf_keras": text | null}},   // null when tf_keras cannot load the file
  "tf_keras_load": {{"load_model(compile=False)": "ok" | "fails: ...", "predict": ..., ...}},
  "equivalent_model": {{"layers", "config", "summary"?}},   // the hand-built tf_keras model
  "model_config", "training_config",        // the JSON written into the file, parsed
  "layer_names", "weight_names": {{layer: [...]}}, "tf_keras_weight_names",
  "weights": [{{"name", "shape", "data"}}],    // file order (layer_names, then weight_names)
  "optimizer_weight_names",                 // k224_lstm_dense
  "h5_attribute_types": {{"/": {{"keras_version": "variable-length ASCII string, scalar", ...}}, ...}},
  "h5_datasets": [{{"path", "shape", "dtype", "layout"}}],
  "sources": {{key: "file and function the layout comes from"}}, "source_files": {{...}},
  "notes": [...]
}}
```

Float data are float32 values written exactly as float64. `manifest.json`
lists every case with what tf_keras does with its file.
"""

README_FORMATS = """
## The file layout (all cases)

```
/                                   @keras_version  @backend  @model_config  [@training_config]
/model_weights/                     @layer_names  @backend  @keras_version
/model_weights/<layer>/             @weight_names            (one group per layer, weights or not)
/model_weights/<layer>/<weight name as a path>               e.g. lstm_1/lstm_1/kernel:0
[/optimizer_weights/                @weight_names  + datasets named like the weights]
```

* Keras 2.2.3-2.2.4: `keras/engine/saving.py` `save_model` ->
  `_serialize_model(model, H5Dict(path))` ([K223], [K224], [KGIT] 0246317e);
  `H5Dict.__setitem__` (`keras/utils/io_utils.py`) stores bytes and lists as
  attributes and numpy arrays as datasets (`create_dataset(name, shape,
  dtype)`). Keras 2.2.0-2.2.2: `saving.py` `save_model` +
  `save_weights_to_hdf5_group` ([K222], [KGIT] 376db3cd); Keras 2.0-2.1:
  `keras/models.py` `save_model` + `keras/engine/topology.py`
  `save_weights_to_hdf5_group`. All three make the same calls in the same
  order: root `keras_version`, `backend`, `model_config`; group
  `model_weights` with `layer_names`, `backend`, `keras_version`; per layer
  (model order) a group with `weight_names` and its datasets; then
  `training_config` and `optimizer_weights` if the model was compiled (and,
  for the optimizer group, trained: `if symbolic_weights:`).
* tf.keras 2.2: `tensorflow/python/keras/saving/hdf5_format.py`
  `save_model_to_hdf5` + `save_weights_to_hdf5_group` ([TF22]): the same
  tree; the layer groups are created in sorted name order.
* A weight name holds '/', so h5py makes intermediate groups: the dataset of
  `lstm_1/kernel:0` in layer `lstm_1` is `model_weights/lstm_1/lstm_1/kernel:0`;
  `bidirectional_1/forward_lstm_1/kernel:0` is
  `model_weights/bidirectional_1/bidirectional_1/forward_lstm_1/kernel:0`;
  tf.keras 2.2: `model_weights/lstm_1/lstm_1/lstm_cell_1/kernel:0`.
  Read datasets through `weight_names`, never by listing groups.
* Superblock version 0, v1 object headers, old-style (symbol table) groups,
  contiguous little-endian float32 datasets (the Adam `iterations` is an
  int64 scalar), no filters.

## HDF5 types (h5py 2.x)

What no current library writes by itself, and where it comes from: h5py
2.10.0 `h5py/_hl/attrs.py` `AttributeManager.create` calls
`base.guess_dtype(data)`, which returns `string_dtype('ascii')` for a
`bytes` object and `string_dtype()` (UTF-8) for a `str`; anything else goes
through `numpy.asarray(data)` ([H5PY2]).

| attribute | Keras writes | h5py 2.x stores |
|-----------|--------------|-----------------|
| `/` `keras_version`, `backend` (Keras 2.x) | `str(...).encode('utf8')` (bytes) | **variable-length ASCII** string, scalar |
| `/` `keras_version`, `backend` (tf.keras 2.2) | `str` (saving_utils.py `model_metadata`) | **variable-length UTF-8** string, scalar |
| `/` `model_config`, `training_config` | `json.dumps(...).encode('utf8')` | **variable-length ASCII** string, scalar |
| `/model_weights` `backend`, `keras_version` | bytes | **variable-length ASCII** string, scalar |
| `layer_names`, `weight_names` (non-empty) | list of bytes | **fixed-length ASCII 'S<n>'** array (n = longest name, null-padded), shape (count,) |
| `weight_names` of a layer without weights | `[]` | **float64 array of shape (0,)** |

So fixed-length strings appear only in the name lists; every scalar is a
variable-length string (h5py 2.x never stored a `bytes` scalar as
fixed-length; only `numpy.bytes_` values would be). Today's
tf_keras 2.21 + h5py 3.14 files (`../files/*.tf.h5`) store the name lists as
variable-length strings instead. h5py 2.10 `dataset.py` `make_new_dset`
leaves `track_times` at the HDF5 default, so every dataset header holds a
modification time (h5py 3 turns it off); the files here keep them.

## Configs: what differs between the versions

| | Keras 2.0.8 | Keras 2.1.0 (to 2.1.4) | Keras 2.1.6, 2.2.0, 2.2.2 (2.1.5-2.2.2) | Keras 2.2.3, 2.2.4 | tf.keras 2.2 (`2.3.0-tf`) | tf_keras 2.21 (today) |
|---|---|---|---|---|---|---|
| Sequential `config` | bare list | bare list | bare list | `{"name": "sequential_1", "layers"}` | `{"name": "sequential", "layers", "build_input_shape"}` | `{"name", "layers"}` with an `InputLayer` first |
| names | `lstm_1`, `dense_1` (from 1) | same | same | same | `lstm`, `lstm_1` (from 0) | same as tf.keras |
| `batch_input_shape` | first layer | first layer | first layer | first layer | first layer | InputLayer and first layer |
| `dtype` | first layer only | first layer only | first layer only | first layer only | every layer | every layer |
| RNN base keys | `return_sequences, return_state, go_backwards, stateful, unroll, implementation` | no `implementation` | same | same | + `time_major` | + `time_major` |
| `implementation` | 0 (in the base, on SimpleRNN too) | 1 (GRU/LSTM, last key) | 1 | 1 | 2 | 2 |
| LSTM/GRU `recurrent_activation` default | `hard_sigmoid` | `hard_sigmoid` | `hard_sigmoid` | `hard_sigmoid` | `sigmoid` | `sigmoid` |
| GRU `reset_after` | absent (= False) | absent (= False) | `false` by default | `false` by default | `true` by default | `true` by default |
| initializers | `VarianceScaling` (glorot_uniform) | same | same | same | `GlorotUniform {"seed": null}` | same |
| RNN weight names | `lstm_1/kernel:0` | same | same | same | `lstm_1/lstm_cell_1/kernel:0` | `lstm_1/lstm_cell/kernel:0` |

Column heads name the releases read; the ranges in parentheses are
inferred from the release history (`reset_after`: PR #9112, released in
2.1.5). Sources: [K208] `keras/layers/recurrent.py` `Recurrent.get_config`; [K210]
`RNN.get_config`, `GRU.get_config`; `reset_after` came with keras-team/keras
PR #9112 (CuDNN-compatible GRU), released in 2.1.5 (present in [K216], absent
in [K210]); [K222]/[K220] `keras/engine/sequential.py` and [K216]/[K208]
`keras/models.py` `Sequential.get_config` (bare list); [K224]
and [K223] `keras/engine/sequential.py` `Sequential.get_config` (dict; 2.2.3
changed it together with the new `_serialize_model`/`H5Dict` writer, 2.2.2
still has the list); [K224] `keras/engine/base_layer.py`
`Layer.__init__`/`get_config` and `_to_snake_case`; [TF22]
`engine/sequential.py`, `engine/network.py` `_init_graph_network`
(`build_input_shape`), `engine/base_layer.py` `get_config`,
`layers/recurrent.py`, `layers/recurrent_v2.py`, `keras/__init__.py`
(`__version__ = '2.3.0-tf'` with TF2 behaviour, `'2.2.4-tf'` without).

**A GRU config without `reset_after` means `reset_after=False`** (Keras <=
2.1.4 only had the reset-before GRU). tf_keras 2.21 assumes its own default
`True` and then refuses the weights (`GRU(reset_after=False) is not
compatible with GRU(reset_after=True)`), so it cannot load `k208_*` and
`k210_*`; a copy with `"reset_after": false` added loads and predicts the
recorded output exactly (see their `tf_keras_load`).

## Functional models ("Model")

Keras 2.0.8-2.2.4 ([K208]/[K216] `engine/topology.py` `Container.get_config`,
[K224] `engine/network.py` `Network.get_config`) and tf.keras 2.2 ([TF22]
`engine/network.py` `get_network_config`) write the same structure; the
class name is `"Model"` in all of them (`"Functional"` came with TF 2.3/2.4):

```
{"class_name": "Model", "config": {
  "name": "model_1",                       // tf.keras 2.2: "model"
  "layers": [
    {"name": "input_1", "class_name": "InputLayer",
     "config": {"batch_input_shape": [null, 5, 3], "dtype": "float32",
                "sparse": false, "name": "input_1"},   // tf.keras 2.2: + "ragged": false before "name"
     "inbound_nodes": []},
    {"name": "lstm_1", "class_name": "LSTM", "config": {...},
     "inbound_nodes": [[["input_1", 0, 0, {}]]]},      // one list per call: [layer, node, tensor, kwargs]
    ...],
  "input_layers": [["input_1", 0, 0], ["input_2", 0, 0]],
  "output_layers": [["dense_1", 0, 0]]}}
```

* Keras 2 layer entries are `name, class_name, config, inbound_nodes`;
  tf.keras 2.2 entries `class_name, config, name, inbound_nodes`.
* InputLayers are named `input_1`, `input_2`, ... (one-based) in every
  version, tf.keras 2.2 included, where the other layers are zero-based
  (`conv1d`, `lstm`, `gru_1`).
* `model.layers` -- the order of `layers`, of `layer_names` and of the
  weights -- is by decreasing depth from the outputs, ties in the order a
  depth-first walk from the outputs meets the layers (`_map_graph_network`),
  not the order of creation: `k224_functional_merge` has `input_1, input_2,
  lstm_1, global_max_pooling1d_1, global_average_pooling1d_1, gru_1, add_1,
  multiply_1, concatenate_1, dense_1`. The InputLayers have groups (with an
  empty `weight_names`) in `model_weights` like any weightless layer.
* kwargs are `{}` for these calls: Keras 2 writes the call's kwargs only if
  `json.dumps` accepts them, tf.keras 2.2 drops the `training`/`mask` it
  passed itself.
* **Initial states are inbound tensors.** `RNN.__call__` ([K224], [TF22]
  `layers/recurrent.py`) calls a layer given Keras-tensor `initial_state`
  on `[inputs] + initial_state`, so the decoder of `k224_encoder_decoder`
  has `"inbound_nodes": [[["input_2", 0, 0, {}], ["lstm_1", 0, 1, {}],
  ["lstm_1", 0, 2, {}]]]`: the input, then the encoder's `h` (output 1) and
  `c` (output 2) of its `return_state=True` outputs `[output, h, c]`. In
  Keras 2.2.4 the `initial_state` kwarg (tensors) fails `json.dumps` and is
  written as `{}`; tf.keras 2.2 does not keep it at all. A loader must split
  such a node into the input and the initial states (Keras's
  `_standardize_args` does).

## The layers around the RNNs

| | Keras 2.0.8, 2.1.x | Keras 2.2.0-2.2.2 | Keras 2.2.3, 2.2.4 | tf.keras 2.2 |
|---|---|---|---|---|
| `Conv1D` config | no `data_format` (popped), no `rank` | `data_format` | `data_format` | `data_format` |
| `Conv2D` config | `data_format` | `data_format` | `data_format` | `data_format` |
| `kernel_size`, `strides`, `dilation_rate`, `pool_size` | lists (`[3]`, `[3, 3]`) | lists | lists | lists |
| `MaxPooling1D` keys | `strides, pool_size, padding` | same | `strides, pool_size, padding, data_format` | same as 2.2.4 |
| `MaxPooling2D` keys | `pool_size, padding, strides, data_format` | same | same | -- |
| `GlobalMax/AveragePooling1D` | `name, trainable` only | same | `data_format` | -- |
| `BatchNormalization` `axis` | `-1` as given | same | same | `[2]` (a list of non-negative axes, set by `build`) |
| `BatchNormalization` weights | `gamma, beta, moving_mean, moving_variance` (gamma without `scale`, beta without `center`) | same | same | same |

Sources: [K208]/[K216]/[K220]/[K222]/[K223]/[K224] `keras/layers/convolutional.py`
`_Conv.get_config`, `Conv1D.get_config`, `Conv2D.get_config`;
`keras/layers/pooling.py` `_Pooling1D`, `_Pooling2D`, `_GlobalPooling1D`;
[K224] `keras/layers/normalization.py` `BatchNormalization.build`/`get_config`,
`keras/layers/core.py` `Reshape`, `Permute`, `SpatialDropout1D`, `Flatten`,
`keras/layers/merge.py`; [TF22] `layers/convolutional.py` `Conv.get_config`,
`layers/pooling.py` `Pooling1D.get_config`, `layers/normalization.py`
`BatchNormalizationBase.build`/`get_config`.

## Weight names

| writer | pattern | example |
|--------|---------|---------|
| Keras 2, TensorFlow backend | `<layer>/<weight>:0` | `lstm_1/kernel:0`, `cu_dnnlstm_1/bias:0` |
| Keras 2, Theano backend | `<layer>/<weight>` | `lstm_1/kernel` (`theano_backend.py` `variable`/`_prepare_name`) |
| Keras 2 Bidirectional | `<wrapper>/forward_<inner>/<w>:0`, then `.../backward_<inner>/...` | `bidirectional_1/forward_lstm_1/kernel:0` |
| Keras 2 TimeDistributed | `<wrapper>/<w>:0` (the inner Dense's own name is unused) | `time_distributed_1/kernel:0` |
| Keras 2 Conv1D, Conv2D | `<layer>/kernel:0` (kernel_size + (input channels, filters)), `<layer>/bias:0` | `conv1d_1/kernel:0` (3, 3, 4) |
| Keras 2 TimeDistributed(Conv2D) | `<wrapper>/<w>:0` | `time_distributed_1/kernel:0` (3, 3, 1, 2) |
| Keras 2 BatchNormalization | `<layer>/gamma:0`, `beta:0`, `moving_mean:0`, `moving_variance:0` | `batch_normalization_1/moving_variance:0` |
| tf.keras 2.2 Conv1D, BatchNormalization | `<layer>/<w>:0` | `conv1d/kernel:0`, `batch_normalization/gamma:0` |
| tf.keras 2.2 RNN | `<layer>/<cell>/<w>:0`, cells numbered per class | `lstm_1/lstm_cell_1/kernel:0`, `gru/gru_cell/bias:0` |

Keras 2 RNN cells (2.1+) are built by `RNN.build` without a name scope of
their own, hence no cell in the names. The Theano backend stores recurrent
and Dense weights exactly like TensorFlow; only convolution kernels would be
flipped on load (`saving.py` `_need_convert_kernel`).

## CuDNNLSTM / CuDNNGRU (Keras 2.1.0-2.2.x; not in 2.0.8)

[K224] `keras/layers/cudnn_recurrent.py`: configs have `return_sequences,
return_state, go_backwards, stateful` and then `units`, initializers,
(`unit_forget_bias` for LSTM), regularizers, constraints: no activations, no
`unroll`, `dropout` or `implementation`. Weights (units `u`, input `f`):
`kernel (f, G*u)`, `recurrent_kernel (u, G*u)`, `bias (2*G*u,)` with G = 4
(gates i, f, c, o) or 3 (z, r, h): input biases, then recurrent biases.

They are **not** the plain layers' weights: `_process_batch` slices each
gate (`kernel[:, g*u:(g+1)*u]`), `_canonical_to_params` flattens it in C
order, and cuDNN reads that buffer as a row-major `(u, f)` matrix. To run
them as LSTM / GRU, Keras's (and tf_keras's) `_convert_rnn_weights` does,
per gate: input kernel `k.T.reshape(k.shape, order='F')`, recurrent kernel
`k.T`; LSTM bias = input half + recurrent half `(4u,)`; GRU bias reshaped to
`(2, 3u)` for `GRU(reset_after=True)`. cuDNN computes with `sigmoid` gates
(not Keras 2's default `hard_sigmoid`) and a reset-after GRU.

tf_keras 2.21 still deserializes `CuDNNLSTM`/`CuDNNGRU` and prints their
summary, but cannot predict without a GPU (`CudnnRNNV3` has no CPU kernel).
`k224_cudnn`'s expected output is tf_keras's LSTM(recurrent_activation=
'sigmoid') -> GRU(reset_after=True, recurrent_activation='sigmoid') ->
Dense after `model.load_weights(k224_cudnn.h5)` (tf_keras's own conversion,
checked equal to the script's copy of it), and a float64 numpy pass that
reads the raw CuDNN weights the way cuDNN does agrees with it to ~3e-8.

## hard_sigmoid

| library | `hard_sigmoid(x)` |
|---------|-------------------|
| Keras 2.0-2.2, every backend (`tensorflow_backend.py`, `cntk_backend.py`: `clip(0.2*x + 0.5, 0, 1)`; `theano_backend.py`: `T.nnet.hard_sigmoid`, the same formula) | `clip(0.2*x + 0.5, 0, 1)` |
| tf.keras 2.2 (`backend.py`), tf_keras 2.21 | `clip(0.2*x + 0.5, 0, 1)` |
| Keras 3 | `relu6(x + 3) / 6` = `clip(x/6 + 0.5, 0, 1)` |

It is the **default** `recurrent_activation` of LSTM and GRU in Keras 2.x,
so every Keras 2 LSTM/GRU file here (except the explicit `sigmoid` GRU of
`k224_options`) uses it even when the config was not set by the user.

## Sources

{sources}

Also read: tf_keras 2.21 (`.venv-ref`), `tf_keras/src/saving/legacy/hdf5_format.py`
(`load_model_from_hdf5`, `preprocess_weights_for_loading`,
`_convert_rnn_weights`) and `tf_keras/src/layers/rnn/gru.py`, to explain
what it loads and what it refuses.
"""


def write_readme(payloads):
    rows = []
    for p in payloads:
        tl = p["tf_keras_load"]
        if tl["load_model(compile=False)"] != "ok":
            status = "does not load"
        elif tl.get("predict") != "ok":
            status = "loads, cannot predict (no GPU)"
        else:
            status = "loads"
        src = ("load_model" if p["expected_source"].startswith(
            "tf_keras.models.load_model") else "equivalent model")
        size = (OUT_DIR / f"{p['case']}.h5").stat().st_size
        em = p["emulates"]
        emu = f"Keras {em['keras_version']}" if em["keras_version"][0] == "2" \
            and not em["keras_version"].endswith("-tf") else \
            f"tf.keras `{em['keras_version']}`"
        if em["backend"] != "tensorflow":
            emu += f", {em['backend']}"
        ins = p["inputs"] if "inputs" in p else [p["input"]]
        shape = " + ".join("×".join(str(d) for d in i["shape"]) for i in ins)
        rows.append(f"| `{p['case']}` | {emu} | {p['model']} | {shape} "
                    f"{ins[0]['dtype']} | {status} | {src} | {size} |")
    versions = ", ".join(f"{k} {v}" for k, v in VERSIONS.items())
    sources = "\n".join(f"* [{k}] {v}" for k, v in SOURCES.items())
    text = (README_HEAD.format(versions=versions, case_rows="\n".join(rows))
            + README_FORMATS.replace("{sources}", sources))
    (OUT_DIR / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
