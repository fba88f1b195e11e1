//! The layers, one file each, and the recurrence driver the recurrent ones share.

pub mod activation;
pub mod additive_attention;
pub mod attention;
pub mod bidirectional;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod gru;
pub mod lstm;
pub mod masking;
pub mod multi_head_attention;
pub mod recurrent;
pub mod repeat_vector;
pub mod simple_rnn;
pub mod time_distributed;
