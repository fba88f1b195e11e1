//! The layers, one file each, and the recurrence driver the recurrent ones share.

pub mod bidirectional;
pub mod recurrent;
pub mod simple_rnn;
