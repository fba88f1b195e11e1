//! The layers, one file each, and the recurrence driver the recurrent ones share.

pub mod activation;
pub mod bidirectional;
pub mod conv;
pub mod cropping1d;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod global_pooling;
pub mod gru;
pub mod lstm;
pub mod masking;
pub mod pooling;
pub mod recurrent;
pub mod repeat_vector;
pub mod simple_rnn;
pub mod time_distributed;
pub mod up_sampling1d;
pub mod zero_padding1d;
