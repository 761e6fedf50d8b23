"""Where a run is (step, epoch, batch within the epoch), and fitting a saved position to the
training set that a --resume finds.

The position is saved in every checkpoint with the size of the training set it refers to.
A set that changed size between the checkpoint and --resume (images deleted or added,
--data pointing to another folder) changes the epoch's length and order: a position still
inside the epoch continues there, in the new order, with a note; a position at or past the
end of the new epoch (the set shrank) would leave nothing to iterate, so that epoch counts as
complete and the next one starts, with a note. Never an empty epoch, never a loop waiting for
batches that do not come.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Progress:
    """Where the run is; the learning-rate schedule reads `epoch`."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch, 0-based
    batch: int = 0  # batches of the current epoch done (by this process)
    samples: int = 0  # training-set size the position refers to (0: not recorded)

    def advance(self, steps_per_epoch: int) -> None:
        self.step += 1
        self.batch += 1
        if self.batch >= steps_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0


def fit_position(progress: Progress, samples: int, steps_per_epoch: int) -> str:
    """Fit a restored position to the training set found now; returns a note, or "".

    The saved batch can be past the end of the epoch when the set shrank (images deleted,
    --data pointing to a smaller folder): that epoch counts as complete and the next one
    starts. Otherwise the epoch continues at the same batch, in the new set's order.
    """
    saved, progress.samples = progress.samples, samples
    was = f"{saved} when saved" if saved else "another size when saved"
    if progress.batch >= steps_per_epoch:
        note = (
            f"note: the training set has {samples} samples ({was}): the saved position, "
            f"batch {progress.batch} of epoch {progress.epoch}, is past the end of its "
            f"{steps_per_epoch} steps per epoch; epoch {progress.epoch} counts as complete "
            f"and epoch {progress.epoch + 1} starts"
        )
        progress.epoch, progress.batch = progress.epoch + 1, 0
        return note
    if saved and saved != samples:
        return (
            f"note: the training set has {samples} samples ({was}): epoch {progress.epoch} "
            f"continues at batch {progress.batch}, in the order of the new set"
        )
    return ""
