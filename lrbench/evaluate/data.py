"""A job's batches, all from lrbench.torch_data (the public path, so a user's own loop sees the same
batch at the same step), and how a batch meets the model on the device.

  train   the step-addressed stream: step s holds samples s·B ... s·B + B - 1 (rank r of W its B/W
          slice); a finite train split is read epoch after epoch, each in a new order
  val     samples 0 ... n-1 of the val split, whole batches spread over the ranks
  test    the same on the test split
"""

from __future__ import annotations

from lrbench.evaluate.plan import Dist, Job
from lrbench.torch_data import Source, StepBatches, StreamDataset, evaluation_batches, loader

__all__ = ["source", "train_batches", "eval_batches", "loader", "to_model"]


def source(job: Job, split: str) -> Source:
    """Sample i of a split of the job's task: read from its dataset, or generated (the same arrays)."""
    task = job.task
    view = job.dataset[split] if split in job.from_disk else None
    epoch = None
    if split == "train" and "train" in task.finite_splits:  # a finite train split, as in the paper
        epoch = len(view) if view is not None else task.default_splits["train"]
    return Source(task, split, job.data_seed, view, epoch)


def train_batches(job: Job, ctx: Dist, start: int) -> StreamDataset:
    """The training batches of steps start ... steps - 1, this rank's part of each."""
    train = job.setting.train
    return StreamDataset(source=source(job, "train"), batch_size=train.batch_size, start=start, stop=train.steps,
                         rank=ctx.rank, world_size=ctx.world)


def eval_batches(job: Job, ctx: Dist, split: str, wanted: int, batch_size: int) -> StepBatches:
    """The first `wanted` samples of a split (fewer when its dataset holds fewer)."""
    src = source(job, split)
    n = wanted if src.view is None else min(wanted, len(src.view))
    return evaluation_batches(src, batch_size, n, ctx.rank, ctx.world)


def to_model(torch, task, batch: dict, device):
    """Model inputs and targets on `device`, from a batch in its stored dtypes (cast there)."""
    x, y = batch["inputs"].to(device, non_blocking=True), batch["targets"].to(device, non_blocking=True)
    if task.view == "tokens":
        return x.long(), y.long()
    if task.view == "image":  # row-major [B, M², 1]; a label image likewise [B, M²], a class stays [B]
        y = y.reshape(y.shape[0], -1) if task.kind == "tagging" else y
        return x.reshape(x.shape[0], -1, 1).float() / 255.0, y.long()
    return x.float(), y.float()
