//! The layers, one file each, and the recurrence driver the recurrent ones share.

pub mod activation;
pub mod additive_attention;
pub mod attention;
pub mod batch_normalization;
pub mod bidirectional;
pub mod concatenate;
pub mod dense;
pub mod dot;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod gru;
pub mod input_layer;
pub mod layer_normalization;
pub mod lstm;
pub mod masking;
pub mod merge;
pub mod multi_head_attention;
pub mod op;
pub mod permute;
pub mod recurrent;
pub mod regularization;
pub mod repeat_vector;
pub mod reshape;
pub mod simple_rnn;
pub mod time_distributed;
