//! When the saving callbacks save: Keras's `save_freq`, and its count of batches.

/// When a [`ModelCheckpoint`](crate::ModelCheckpoint) or a
/// [`BackupAndRestore`](crate::BackupAndRestore) saves: Keras's `save_freq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFreq {
    /// `"epoch"` (the default): at the end of each epoch.
    #[default]
    Epoch,
    /// An integer: after every that many batches, counted across epochs.
    Batches(usize),
}

/// The batches seen since the last save, as Keras 3's `_should_save_on_batch` counts them: a
/// batch index that does not grow starts a new epoch, whose batches count from its first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchCount {
    since_save: usize,
    last: Option<usize>,
}

impl BatchCount {
    /// Counts batch `batch` (its index in its epoch), and says whether `freq` asks for a save
    /// now; the count then starts over.
    pub(crate) fn save_after(&mut self, batch: usize, freq: SaveFreq) -> bool {
        let SaveFreq::Batches(every) = freq else {
            return false;
        };
        let added = match self.last {
            Some(last) if batch > last => batch - last,
            _ => batch + 1,
        };
        self.since_save += added;
        self.last = Some(batch);
        if self.since_save >= every {
            self.since_save = 0;
            return true;
        }
        false
    }

    /// The index of the last batch counted in this epoch (0 before any, as Keras's
    /// `_last_batch_seen`).
    pub(crate) fn last_batch(&self) -> usize {
        self.last.unwrap_or(0)
    }

    /// An epoch ended: the next batch starts the count of a new one (Keras 3's
    /// `_last_batch_seen = 0`); the batches since the last save still count.
    pub(crate) fn end_epoch(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_count_across_epochs() {
        // save_freq=2 over epochs of 5 batches saves after batches 1, 3; 0, 2, 4; 1, 3 (the
        // saves Keras 3's backup_and_restore fixture `batches_every_2` records).
        let mut count = BatchCount::default();
        let mut saves = Vec::new();
        for epoch in 0..3 {
            for b in 0..5 {
                if count.save_after(b, SaveFreq::Batches(2)) {
                    saves.push((epoch, b));
                }
            }
            count.end_epoch();
        }
        assert_eq!(
            saves,
            [(0, 1), (0, 3), (1, 0), (1, 2), (1, 4), (2, 1), (2, 3)]
        );
        assert!(!count.save_after(0, SaveFreq::Epoch));
    }
}
