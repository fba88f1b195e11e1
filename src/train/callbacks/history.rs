//! Keras's `History` as a callback: `fit` runs one after the others and returns it.

use crate::error::Result;
use crate::train::callbacks::{Callback, FitContext, Logs};
use crate::History;

/// Keras's `keras.callbacks.History`: records each epoch's logs, after every other callback
/// has seen (and perhaps added to) them. `fit` makes one and returns it; one given among the
/// callbacks records the same.
impl Callback for History {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _fit: &mut FitContext<'_>,
    ) -> Result<()> {
        self.push(epoch, logs.as_slice());
        Ok(())
    }
}
