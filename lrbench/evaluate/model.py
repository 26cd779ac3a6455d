"""The model of a job: built (a baseline, or your own factory), called, checked, its loss, and its
metrics over a set of batches, merged over ranks.

A custom model (`package.module:factory`) is built as ``factory(d_input, d_output, task, **keys)``
(keys: the model keys given with `--set`, none by default) and
returns [B, T, d_output] for all T positions; the harness keeps the last t_out of them for a
regression task, and for a classification task averages them over the sample's positions (padding
left out: a ragged input's pad value marks it), which for a linear decoder is the same as the mean
pooling of features before it that the S4 and LRA models use. Every failure says which model on which task, in one line (exit code 1).
"""

from __future__ import annotations

from typing import Any

from lrbench import metrics as M
from lrbench.errors import RUNTIME, LrbenchError
from lrbench.evaluate.data import to_model
from lrbench.evaluate.plan import Dist, Job


def build_model(torch, job: Job, seed: int):
    """The job's module, initialised from `seed`: a baseline with the preset's config (and the
    task's vocabulary for token inputs), or the custom factory's module, checked."""
    task = job.task
    torch.manual_seed(seed)
    if job.model.factory is not None:
        return _custom(torch, job)
    from lrbench.baselines import build

    cfg = dict(job.setting.model)
    if task.view == "tokens":
        cfg["vocab_size"] = job.d_input
    try:
        return build(job.model.name, job.d_input, task.d_output, **cfg)
    except ValueError as exc:
        raise LrbenchError(f"{job.model.name} on {task.name}: {exc}") from None


def _custom(torch, job: Job):
    keys = job.setting.model  # the model keys given with --set, as keyword arguments
    call = f"{job.model.name}({job.d_input}, {job.task.d_output}, task" + "".join(
        f", {k}={v!r}" for k, v in keys.items()) + ")"
    try:
        net = job.model.factory(job.d_input, job.task.d_output, job.task, **keys)
    except Exception as exc:
        raise LrbenchError(f"{call} failed: {type(exc).__name__}: {exc}", RUNTIME) from None
    except SystemExit as exc:
        raise LrbenchError(f"{call} called sys.exit({exc.code!r})", RUNTIME) from None
    if not isinstance(net, torch.nn.Module):
        raise LrbenchError(f"{job.model.name} returned {type(net).__name__}, not a torch.nn.Module", RUNTIME)
    if not any(p.requires_grad for p in net.parameters()):
        raise LrbenchError(f"{call} has no trainable parameters: there is nothing to train", RUNTIME)
    return net


class ModelIO:
    """Calls the job's model and judges what it returns: the forward pass (the last t_out positions
    of a regression task), output checks, the loss, and the task's metrics over batches."""

    def __init__(self, torch, job: Job, ctx: Dist, eval_batch: int):
        self.torch, self.job, self.ctx, self.eval_batch = torch, job, ctx, eval_batch
        self.task, self.custom = job.task, job.model.factory is not None
        self.where = f"{job.model.name} on {job.task.name}"
        self.inputs = self.task.features["inputs"]  # pool's padding rule, read once, not per batch

    def forward(self, net, x):
        t_out = self.task.t_out
        if self.custom:
            y = net(x)
            self.check_tensor(y)
            y = y if t_out is None else y[:, y.shape[1] - t_out:]
        else:
            y = net(x, t_out=t_out)
        return self.pool(y, x) if self.task.kind == "classification" else y

    def pool(self, y, x):
        """[B, T, C] -> [B, C]: the mean over each sample's positions (its padding left out)."""
        if y.dim() != 3:
            return y  # check_output says what is wrong
        if not self.inputs.ragged:
            return y.mean(dim=1)
        keep = (x != self.inputs.pad).to(y.dtype).unsqueeze(-1)  # token ids [B, T]
        return (y * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)

    def check_tensor(self, y) -> None:
        if not isinstance(y, self.torch.Tensor):
            raise LrbenchError(f"{self.where}: the model returned a {type(y).__name__}, not a tensor "
                               "[B, T, d_output]", RUNTIME)
        if not y.is_floating_point():
            raise LrbenchError(f"{self.where}: the model returned a {y.dtype} tensor; it must return floating-point "
                               "values (regression values or logits)", RUNTIME)

    def check_output(self, y, target) -> None:
        self.check_tensor(y)
        if self.torch.is_grad_enabled() and not y.requires_grad:
            raise LrbenchError(f"{self.where}: the output does not depend on the model's parameters (no gradient "
                               "to train with)", RUNTIME)
        want = tuple(target.shape) + (() if self.task.kind == "regression" else (self.task.d_output,))
        if tuple(y.shape) != want:
            raise LrbenchError(f"{self.where}: output shape {tuple(y.shape)}, expected {want} (the model returns "
                               "[B, T, d_output]: targets on the last positions, or averaged for a class per sample)",
                               RUNTIME)

    def loss(self, y, target):
        """MSE for regression; cross-entropy over the scored positions (tagging) or samples
        (classification) of the global batch."""
        F = self.torch.nn.functional
        if self.task.kind == "regression":
            return F.mse_loss(y.float(), target)
        logits = y.float().reshape(-1, y.shape[-1])
        flat = target.reshape(-1)
        total = F.cross_entropy(logits, flat, ignore_index=M.IGNORE_INDEX, reduction="sum")
        count = (flat != M.IGNORE_INDEX).sum().float()
        if self.ctx.world > 1:  # mean over the global batch's tokens, whatever each rank holds
            import torch.distributed as dist

            dist.all_reduce(count)
        return total * self.ctx.world / count.clamp_min(1.0)

    def mean_over_ranks(self, value) -> float:
        value = value.detach()
        if self.ctx.world > 1:
            import torch.distributed as dist

            value = value.clone()
            dist.all_reduce(value)
            value /= self.ctx.world
        return float(value)

    def measure(self, net, batches) -> dict[str, float]:
        """The task's metrics over `batches` (exact, or per batch as the preset says), all ranks."""
        torch, task = self.torch, self.task
        per_batch = self.eval_batch if self.job.setting.train.per_batch else None
        kw = {} if task.kind == "regression" else {"num_classes": task.num_classes}
        accs = {m: M.make_accumulator(m, per_batch, **kw) for m in task.metrics}
        net.eval()
        with torch.no_grad():
            for batch in batches:
                x, y = to_model(torch, task, batch, self.ctx.device)
                out = self.forward(net, x)
                self.check_output(out, y)
                pred = out.float() if task.kind == "regression" else out.argmax(-1)
                self._update(accs, pred.cpu().numpy(), y.cpu().numpy())
        net.train()
        merge_ranks(torch, self.ctx, accs)
        try:
            return {name: float(acc.result()) for name, acc in accs.items()}
        except ValueError as exc:
            raise LrbenchError(f"{task.name}/{self.job.model.name}: {exc}", RUNTIME) from None

    def _update(self, accs: dict, pred, target) -> None:
        for acc in accs.values():
            try:
                acc.update(pred, target)
            except ValueError as exc:  # NaN/inf predictions
                raise LrbenchError(f"{self.task.name}/{self.job.model.name}: {exc}", RUNTIME) from None


def merge_ranks(torch, ctx: Dist, accs: dict[str, Any]) -> None:
    """Every rank's accumulators become the merge of all of them (lrbench.metrics pack/merge)."""
    if ctx.world == 1:
        return
    import torch.distributed as dist

    for acc in accs.values():
        local = torch.from_numpy(acc.pack()).to(ctx.device)
        parts = [torch.empty_like(local) for _ in range(ctx.world)]
        dist.all_gather(parts, local)
        acc.merge_packed([p.cpu().numpy() for p in parts])
