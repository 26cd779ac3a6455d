"""One job: train on its batch stream, validate (and checkpoint) every `eval_every` steps keeping the
best weights, test them, and return the job's results row.

  <job>/last.pt   model, optimizer, step, best metric, RNG state: torch.save of tensors and plain
                  values, loaded with weights_only=True (no pickled code)
  <job>/best.pt   the best-validation weights

A resumed job restarts from last.pt at the step it was saved: its batches are those of that step
on (lrbench.torch_data), so on CPU a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import io
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

from lrbench.errors import RUNTIME, LrbenchError
from lrbench.evaluate import data
from lrbench.evaluate.model import ModelIO, build_model
from lrbench.evaluate.plan import Dist, Job
from lrbench.evaluate.results import RunLog
from lrbench.registry import config_dict
from lrbench.storage import atomic_write_bytes

CHECKPOINT_FORMAT = 1
CHECKPOINT_SECONDS = 120.0  # last.pt also when this long has passed since the last one (a slow CPU run
# whose first evaluation is hours away still keeps its progress when stopped)


def lr_factor(train, step: int) -> float:
    """LR multiplier for the 0-based step `step`: constant, or linear warmup then cosine to 0."""
    if train.schedule == "constant":
        return 1.0
    if step < train.warmup:
        return (step + 1) / train.warmup
    progress = (step - train.warmup) / max(1, train.steps - train.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def save(torch, path: Path, obj: dict) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(torch, path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise LrbenchError(f"cannot load checkpoint {path}: {exc}", RUNTIME) from None
    if not isinstance(ckpt, dict):
        raise LrbenchError(f"{path}: not a checkpoint of this job (it holds a {type(ckpt).__name__}); "
                           "delete it to restart the job", RUNTIME)
    return ckpt


@contextmanager
def restoring(path: Path):
    """A checkpoint that loads but does not fit this job (missing keys, other shapes): one line."""
    try:
        yield
    except KeyError as exc:
        raise LrbenchError(f"{path}: not a checkpoint of this job (it lacks {exc.args[0]!r}); "
                           "delete it to restart the job", RUNTIME) from None
    except (RuntimeError, ValueError, TypeError) as exc:
        raise LrbenchError(f"{path}: not a checkpoint of this job ({' '.join(str(exc).split())}); "
                           "delete it to restart the job", RUNTIME) from None


@dataclass
class RunState:
    """What a checkpoint records besides the weights (its keys are these field names)."""

    step: int = 0
    best: float | None = None
    best_step: int = 0
    elapsed: float = 0.0  # seconds of the job, evaluation included
    train_seconds: float = 0.0  # seconds of training steps only
    trained: int = 0  # steps timed in train_seconds


class Segment:
    """The steps since the last evaluation: their count and training time."""

    def __init__(self):
        self.start, self.steps, self.seconds = time.perf_counter(), 0, 0.0

    def close_into(self, state: RunState) -> None:
        state.train_seconds += self.seconds
        state.trained += self.steps
        state.elapsed += time.perf_counter() - self.start
        self.__init__()


class LossMean:
    """The mean training loss since the last log line, summed on the device (no wait per step)."""

    def __init__(self):
        self.total, self.count = None, 0

    def add(self, loss) -> None:
        loss = loss.detach()
        self.total = loss if self.total is None else self.total + loss
        self.count += 1

    def take(self):
        """The mean of the losses added since the last take (a device tensor)."""
        mean = self.total / self.count
        self.total, self.count = None, 0
        return mean


class Runner:
    """Trains, validates and tests one job; `run()` returns its results row."""

    def __init__(self, torch, job: Job, ctx: Dist, jobdir: Path, log: RunLog, preset: str, seed: int,
                 workers: int, emit: Callable[[dict], None]):
        self.torch, self.job, self.ctx, self.dir, self.log = torch, job, ctx, jobdir, log
        self.preset, self.seed, self.workers, self.emit = preset, seed, workers, emit
        self.train = job.setting.train
        self.pin = ctx.device.type == "cuda"
        if self.train.batch_size % ctx.world:
            raise LrbenchError(f"batch size {self.train.batch_size} does not split over {ctx.world} processes")
        self.eval_batch = self.train.eval_batch or self.train.batch_size
        self.io = ModelIO(torch, job, ctx, self.eval_batch)
        self.last, self.best_path = jobdir / "last.pt", jobdir / "best.pt"

    def run(self) -> dict:
        net = build_model(self.torch, self.job, self.seed).to(self.ctx.device)
        opt = self._optimizer(net)
        model = net
        if self.ctx.world > 1:
            model = self.torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None)
        state, best, resumed = self._restore(net, opt)
        self._emit_start(resumed)
        best, segment = self._train(model, net, opt, state, best)
        if best is None:
            raise LrbenchError(f"{self.dir}: no best checkpoint to test", RUNTIME)
        net.load_state_dict(best)
        test = self.io.measure(net, self._eval_loader("test", self.train.test_samples))
        state.elapsed += time.perf_counter() - segment.start
        return self._row(net, state, test)

    def _optimizer(self, net):
        from lrbench.baselines import param_groups

        train = self.train
        groups = param_groups(net, lr=train.lr, kernel_lr=train.kernel_lr, weight_decay=train.weight_decay)
        return self.torch.optim.AdamW(groups, lr=train.lr)

    def _eval_loader(self, split: str, wanted: int):
        batches = data.eval_batches(self.job, self.ctx, split, wanted, self.eval_batch)
        return data.loader(batches, self.workers, self.pin)

    def _restore(self, net, opt) -> tuple[RunState, dict | None, int | None]:
        """The state and best weights of last.pt and best.pt when a previous run left them."""
        torch, state, best, resumed = self.torch, RunState(), None, None
        if self.last.exists():
            ckpt = load(torch, self.last)
            if ckpt.get("format") != CHECKPOINT_FORMAT:
                raise LrbenchError(f"{self.last}: unknown checkpoint format {ckpt.get('format')!r}", RUNTIME)
            with restoring(self.last):
                net.load_state_dict(ckpt["model"])
                opt.load_state_dict(ckpt["optimizer"])
                torch.set_rng_state(ckpt["rng"]["torch"])
                if self.ctx.device.type == "cuda" and "cuda" in ckpt["rng"]:
                    torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.ctx.device)
                state = RunState(**{f.name: ckpt[f.name] for f in fields(RunState)})
            if self.best_path.exists():
                with restoring(self.best_path):
                    best = load(torch, self.best_path)["model"]
            resumed = state.step
            self.log.trim(self.job.key, resumed)
        return state, best, resumed

    def _emit_start(self, resumed: int | None) -> None:
        job, paths = self.job, self.job.paths
        self.emit({"event": "start", "job": job.key, "task": job.task.name, "model": job.model.name,
                   "steps": self.train.steps, "resume_step": resumed,
                   "checkpoint": str(self.last) if resumed is not None else None,
                   "data": {"train": paths["train"] or "stream", "val": paths["val"] or "generated",
                            "test": paths["test"] or "generated"}})

    def _train(self, model, net, opt, state: RunState, best: dict | None) -> tuple[dict | None, Segment]:
        """Steps state.step ... steps - 1; returns the best weights and the segment since the last
        evaluation (whose time the test adds to)."""
        train, metric = self.train, self.job.task.metric
        val_set = list(self._eval_loader("val", train.val_samples))
        start, latest = state.step, state.best
        base_lrs = [g["lr"] for g in opt.param_groups]
        segment, losses = Segment(), LossMean()
        tick = saved = time.perf_counter()
        for batch in data.loader(data.train_batches(self.job, self.ctx, start), self.workers, self.pin):
            step = batch["step"]
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * lr_factor(train, step)
            losses.add(self._step(model, opt, batch, check=step == start))
            done = step + 1
            is_eval = done % train.eval_every == 0 or done == train.steps
            logged = done % train.log_every == 0 or is_eval
            value = self._loss_value(losses.take(), done) if logged else None  # also waits for the device
            segment.seconds += time.perf_counter() - tick
            segment.steps += 1
            rate = segment.steps / max(segment.seconds, 1e-9)
            record = {"job": self.job.key, "task": self.job.task.name, "model": self.job.model.name, "step": done,
                      "loss": value, "lr": opt.param_groups[0]["lr"], "steps_per_s": round(rate, 3),
                      "metric": metric, "val": None} if logged else None
            if is_eval:
                latest = record["val"] = self.io.measure(net, val_set)[metric]
                best = self._keep_best(net, state, latest, done, best)
            if is_eval or time.perf_counter() - saved >= CHECKPOINT_SECONDS:
                state.step = done
                segment.close_into(state)
                self._save_last(net, opt, state)
                saved = time.perf_counter()
            if record is not None:
                self.log.append(record)
            self.emit({"event": "step", "job": self.job.key, "step": done, "steps": train.steps, "steps_per_s": rate,
                       "metric": metric, "val": latest, "loss": value})
            tick = time.perf_counter()
        return best, segment

    def _step(self, model, opt, batch: dict, check: bool):
        x, y = data.to_model(self.torch, self.job.task, batch, self.ctx.device)
        out = self.io.forward(model, x)
        if check:
            self.io.check_output(out, y)
        loss = self.io.loss(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def _loss_value(self, loss, done: int) -> float:
        value = self.io.mean_over_ranks(loss)
        if not math.isfinite(value):
            raise LrbenchError(f"{self.job.task.name}/{self.job.model.name}: training diverged "
                               f"(loss {value} at step {done})", RUNTIME)
        return value

    def _keep_best(self, net, state: RunState, val: float, done: int, best: dict | None) -> dict | None:
        """The new best weights when `val` beats the best so far (saved as best.pt), else `best`."""
        if state.best is not None and not val > state.best and math.isfinite(state.best):
            return best
        state.best, state.best_step = val, done
        best = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        if self.ctx.main:
            save(self.torch, self.best_path, {"format": CHECKPOINT_FORMAT, "step": done, "metric": val,
                                              "model": best})
        return best

    def _save_last(self, net, opt, state: RunState) -> None:
        if not self.ctx.main:
            return
        torch = self.torch
        rng = {"torch": torch.get_rng_state()}
        if self.ctx.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.ctx.device)
        save(torch, self.last, {"format": CHECKPOINT_FORMAT, **asdict(state), "model": net.state_dict(),
                                "optimizer": opt.state_dict(), "rng": rng,
                                "schedule": {"name": self.train.schedule, "warmup": self.train.warmup,
                                             "steps": self.train.steps}})

    def _row(self, net, state: RunState, test: dict[str, float]) -> dict:
        job, train, ctx, metric = self.job, self.train, self.ctx, self.job.task.metric
        return {
            "task": job.task.name, "model": job.model.name, "preset": self.preset, "metric": metric,
            "val": state.best, "test": test[metric], "paper": job.setting.paper, "steps": train.steps,
            "seconds": round(state.elapsed, 2),
            # beyond the required columns
            "test_metrics": test, "best_step": state.best_step, "paper_source": job.setting.paper_source,
            "task_config": config_dict(job.task.config), "params": sum(p.numel() for p in net.parameters()),
            "ms_per_step": round(1000 * state.train_seconds / max(1, state.trained), 3),
            "batch_size": train.batch_size, "per_batch": self.eval_batch if train.per_batch else None,
            "device": str(ctx.device), "world_size": ctx.world, "seed": self.seed, "job": job.key,
        }
