"""The ``lrbench`` command line. The library never prints; this module owns the terminal.

Errors are one line on stderr, no traceback. Exit codes: 2 bad usage or input, 1 runtime failure,
3 verification failure.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import click

from lrbench.errors import RUNTIME, USAGE, VERIFY, LrbenchError
from lrbench.presets import PRESETS
from lrbench.registry import REGISTRY, config_fields, get_task, parse_value, spec_of


class Progress:
    """Samples done / total, rate and ETA on stderr: redrawn in place on a terminal, a line every
    few seconds otherwise (CI logs). Not click.progressbar: when stderr is not a terminal (a SLURM
    or CI log, where long generations and trainings run) it prints its label once and nothing
    until the end; this one leaves a line there every 5 s, with the label (evaluate's: loss and
    validation metric) current."""

    def __init__(self, label: str, unit: str = "samples"):
        self.label, self.unit = label, unit
        self.start = time.monotonic()
        self.last = 0.0
        self.finished = False
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        final = done >= total
        if (final and self.finished) or (not final and now - self.last < (0.2 if self.tty else 5.0)):
            return
        self.finished = final
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        eta_text = "--:--" if eta == float("inf") else time.strftime("%H:%M:%S", time.gmtime(eta))
        line = f"{self.label} {done}/{total} {self.unit}  {rate:,.1f} {self.unit}/s  ETA {eta_text}"
        if self.tty:
            click.echo(f"\r\033[K{line}", err=True, nl=final)
        else:
            click.echo(line, err=True)


class TaskCommand(click.Command):
    """A command whose size options are the registry's: one option per distinct flag that a registered
    task declares for its identifying parameter (``--length``, ``--size``), computed when the command
    runs, so a task registered at run time brings its own. The callback receives them as keywords."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return [*size_options(), *super().get_params(ctx)]


def size_options() -> list[click.Option]:
    """The size options, in registry order; a flag's help is that of the first task declaring it."""
    found: dict[str, click.Option] = {}
    for spec in REGISTRY.values():
        if spec.size is not None and spec.size.flag not in found:
            found[spec.size.flag] = click.Option([spec.size.flag], type=int, default=None, help=spec.size.help)
    return list(found.values())


def _task_from_options(name: str, sizes: dict, settings, seed) -> tuple:
    """The task named on the command line with its parameters: the size options (only the task's own),
    then each --set key=value."""
    try:
        spec = spec_of(name)
    except ValueError as exc:
        raise LrbenchError(str(exc)) from None
    params = {}
    for option in size_options():
        value = sizes.get(option.name)
        if value is None:
            continue
        flag = option.opts[0]
        if spec.size is None or spec.size.flag != flag:
            allowed = spec.size.flag if spec.size else "no size option (use --set)"
            raise LrbenchError(f"{spec.name} takes {allowed}, not {flag}")
        params[spec.size.name] = value
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep:
            raise LrbenchError(f"--set expects key=value (got {item!r})")
        try:
            params[key.strip()] = parse_value(spec, key.strip(), text)
        except ValueError as exc:
            raise LrbenchError(str(exc)) from None
    try:
        task = get_task(spec.name, **params)
    except ValueError as exc:
        raise LrbenchError(str(exc)) from None
    if seed < 0:
        raise LrbenchError(f"--seed must be a non-negative integer (got {seed})")
    return spec, task


def _task_options(f):
    """--set and --seed; the size options come from the registry (TaskCommand)."""
    f = click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed.")(f)
    f = click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Override a task parameter (repeatable); `lrbench tasks` lists them.")(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="lrbench-synth", prog_name="lrbench")
def cli():
    """lrbench: the synthetic long-range tasks of the DLR paper, generated, stored, scored."""


@cli.command()
def tasks():
    """List the tasks, their parameters and defaults."""
    for name, spec in REGISTRY.items():
        params = ", ".join(f"{k}={v}" for k, v in config_fields(spec).items())
        click.echo(f"{name:<18} id={spec.id:<3} {spec.kind:<10} {params}")
        if spec.summary:
            click.echo(f"{'':<18} {spec.summary}")


def _parse_sizes(spec, splits_text: str | None, counts: tuple[str, ...]) -> dict[str, int]:
    splits = [s.strip() for s in splits_text.split(",") if s.strip()] if splits_text else list(spec.finite_splits)
    bad = [s for s in splits if s not in spec.default_splits]
    if bad or not splits:
        raise LrbenchError(f"--splits must name some of {', '.join(spec.default_splits)} (got {splits_text!r})")
    sizes = {s: spec.default_splits[s] for s in splits}
    for item in counts:
        split, sep, text = item.partition("=")
        split = split.strip()
        if not sep or split not in spec.default_splits:
            raise LrbenchError(f"--num-samples expects SPLIT=N with SPLIT one of {', '.join(spec.default_splits)} (got {item!r})")
        try:
            n = int(text)
        except ValueError:
            raise LrbenchError(f"--num-samples {split} must be an integer (got {text!r})") from None
        if n < 1:
            raise LrbenchError(f"--num-samples {split} must be a positive integer (got {n})")
        sizes[split] = n  # naming a split's count also selects that split
    return sizes


@cli.command(cls=TaskCommand)
@click.argument("task")
@_task_options
@click.option("--out", type=click.Path(path_type=Path), default=lambda: os.environ.get("LRBENCH_DATA_DIR", "data"),
              show_default="./data or $LRBENCH_DATA_DIR", help="Root directory; the dataset goes in a subdirectory.")
@click.option("--splits", default=None, help="Comma-separated splits to write [default: val,test for the atomic "
              "tasks, whose training data is the endless stream; train,val,test otherwise].")
@click.option("--num-samples", "counts", multiple=True, metavar="SPLIT=N",
              help="Samples in a split (repeatable), e.g. --num-samples test=1000.")
@click.option("--shard-size", type=int, default=None,
              help="Samples per shard [default: ~128 MiB of raw data, at least one sample; at most 2 GiB].")
@click.option("--workers", type=int, default=os.cpu_count() or 1, help="Worker processes (1 to 1024).")
@click.option("--shards", default=None, metavar="SPEC",
              help="Only these shards: K/N (every N-th from K, for job arrays) or ranges like 0-9,12.")
@click.option("--force", is_flag=True, help="Delete what the dataset directory holds and start again.")
def generate(task, settings, seed, out, splits, counts, shard_size, workers, shards, force, **sizes):
    """Write a task's dataset as sharded HDF5 with a manifest and data card (resumable)."""
    from lrbench.generate import generate as run

    spec, t = _task_from_options(task, sizes, settings, seed)
    sizes = _parse_sizes(spec, splits, counts)
    if out.exists() and not out.is_dir():
        raise LrbenchError(f"--out {out} is a file, not a directory")
    directory = out / t.dir_name(seed)
    result = run(t, directory, seed=seed, sizes=sizes, shard_size=shard_size, workers=workers,
                 shards=shards, force=force, progress=Progress(f"{t.name}"))
    click.echo(f"{directory}: wrote {len(result.written)} shard(s), kept {len(result.skipped)} complete one(s)")
    if result.manifest:
        click.echo(f"{directory}: complete, {result.manifest.num_samples} samples in "
                   f"{', '.join(result.manifest.splits)}; manifest written")
    else:
        click.echo(f"{directory}: {len(result.missing)} shard(s) still missing; rerun without --shards "
                   "(or finish the other jobs) to write the manifest")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--deep", is_flag=True, help="Also regenerate samples and compare them byte for byte.")
@click.option("--per-shard", type=int, default=None, help="With --deep: samples per shard to regenerate [default: all].")
def verify(directory, deep, per_shard):
    """Check sizes, sha256, fields and shapes of a dataset (exit 3 on any problem)."""
    from lrbench.dataset import verify as run

    if not directory.is_dir():
        raise LrbenchError(f"{directory} is not a directory")
    if per_shard is not None and per_shard < 1:
        raise LrbenchError(f"--per-shard must be positive (got {per_shard})")
    problems = run(directory, deep=deep, per_shard=per_shard, progress=Progress("verify") if deep else None)
    if problems:
        for p in problems:
            click.echo(f"FAIL {p}")
        raise LrbenchError(f"{directory}: {len(problems)} problem(s); first: {problems[0]}", VERIFY)
    click.echo(f"OK {directory}" + (" (deep)" if deep else ""))


def _load_sample(target: str, split, index, sizes, settings, seed):
    """A sample from a dataset directory, or freshly generated from a task name."""
    path = Path(target)
    if path.is_dir():
        from lrbench.dataset import open_dataset

        try:
            ds = open_dataset(path)
            view = ds[split or ds.splits[-1]]
            return ds.task, view[index]
        except KeyError as exc:  # an unknown split; its message is the only argument
            raise LrbenchError(str(exc.args[0])) from None
        except IndexError as exc:
            raise LrbenchError(str(exc)) from None
    from lrbench.generate import check_sample_size

    _, task = _task_from_options(target, sizes, settings, seed)
    check_sample_size(task)
    try:
        return task, task.sample(index, split or "test", seed)
    except LrbenchError:
        raise
    except ValueError as exc:
        raise LrbenchError(str(exc)) from None


@cli.command(cls=TaskCommand)
@click.argument("target", metavar="TASK|DIR")
@_task_options
@click.option("--split", default=None, help="Split [default: test, or a dataset's last split].")
@click.option("--index", type=int, default=0, help="Sample index.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write a PNG picture here.")
def show(target, settings, seed, split, index, output, **sizes):
    """Show one sample: readable text on stdout, or a PNG picture with -o."""
    from lrbench import show as views

    task, sample = _load_sample(target, split, index, sizes, settings, seed)
    if output is None:
        click.echo(views.describe(task, sample))
        return
    if output.suffix.lower() != ".png":
        raise LrbenchError(f"-o must name a .png file (got {output})")
    views.save_png(task, sample, output)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("target", metavar="TASK|DIR")
def card(target):
    """Print a task's data card (or a dataset directory's README.md)."""
    from lrbench import cards

    path = Path(target)
    if path.is_dir():
        readme = path / "README.md"
        if not readme.exists():
            raise LrbenchError(f"{path} has no README.md (not a generated dataset?)")
        click.echo(readme.read_text(encoding="utf-8"), nl=False)
        return
    try:
        click.echo(cards.render(target), nl=False)
    except ValueError as exc:  # an unknown task
        raise LrbenchError(str(exc)) from None


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--predictions", required=True, type=click.Path(path_type=Path), metavar="FILE",
              help="One array [num_samples, ...] in sample order: .npy, .npz (single array or key "
                   "'predictions') or .h5 (dataset 'predictions' or the only one).")
@click.option("--split", default="test", help="Split to score.")
@click.option("--per-batch", type=int, default=None, metavar="B",
              help="The paper's protocol: the metric per batch of B samples, averaged "
                   "[default: exact over the split].")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, metavar="OUT",
              help="Also write the result as JSON to OUT.")
def score(directory, predictions, split, per_batch, json_out):
    """Score predictions against a dataset split with the task's metrics (R², accuracy, macro-F1)."""
    import json

    from lrbench.scoring import format_result, score_dataset
    from lrbench.storage import atomic_write_bytes

    if not directory.is_dir():
        raise LrbenchError(f"{directory} is not a directory")
    if per_batch is not None and per_batch < 1:
        raise LrbenchError(f"--per-batch must be a positive number of samples (got {per_batch})")
    if json_out is not None:
        _check_json_out(json_out, directory)
    try:
        result = score_dataset(directory, predictions, split=split, per_batch=per_batch)
    except LrbenchError:
        raise
    except ValueError as exc:  # NaN/inf predictions, bad class ids (lrbench.metrics)
        raise LrbenchError(str(exc)) from None
    if json_out is not None:
        atomic_write_bytes(json_out, (json.dumps(result, indent=2) + "\n").encode())
    click.echo(format_result(result))


def _check_json_out(path: Path, directory: Path) -> None:
    """--json may not write into a dataset directory (it could replace the manifest or a shard)."""
    from lrbench.manifest import MANIFEST

    if path.is_dir():
        raise LrbenchError(f"--json {path} is a directory; name a file")
    target, dataset = path.resolve(), directory.resolve()
    inside = dataset if dataset in target.parents else target.parent if (target.parent / MANIFEST).exists() else None
    if inside is not None:
        raise LrbenchError(f"--json {path} is inside the dataset directory {inside}; write the result elsewhere")


class ModelOption(click.Option):
    """--model, whose help lists lrbench.baselines.MODELS, read when the help is shown: importing the
    baselines imports torch, which no other command needs."""

    def get_help_record(self, ctx: click.Context):
        try:
            from lrbench.baselines import MODELS

            names = ", ".join(MODELS)
        except ImportError:
            names = "a model of lrbench.baselines (with torch installed)"
        self.help = (f"{names}, or package.module:factory (your own torch module, built as "
                     "factory(d_input, d_output, task)).")
        return super().get_help_record(ctx)


@cli.command()
@click.option("--model", cls=ModelOption, required=True, metavar="NAME")
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Task to run, or one run of the preset by its label, e.g. pathfinder-32 "
                   "(repeatable) [default: the preset's suite of registered tasks].")
@click.option("--preset", default=None, metavar="NAME",
              help=f"{', '.join(list(PRESETS)[:-1])} or {list(PRESETS)[-1]} [default: paper on CUDA, quick otherwise].")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda when present].")
@click.option("--data", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="A dataset from `lrbench generate`, or a root holding them; what is missing is generated on the fly.")
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="RUNDIR",
              help="Run directory: logs, checkpoints, results.json/.md [default: runs/MODEL-PRESET].")
@click.option("--steps", type=int, default=None, help="Training steps of every run [default: the preset's].")
@click.option("--seed", type=int, default=0, help="Seed of the model initialisation and of generated data.")
@click.option("--seeds", type=int, default=1, show_default=True,
              help="Run seeds SEED .. SEED+N-1 (RUNDIR/seed-<k>) and report mean ± std and failed seeds.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training setting (lr, batch_size, steps, ...), a task parameter or a model key "
                   "(repeatable; prefix train., task. or model. when a name is ambiguous). A custom model "
                   "receives its keys as keyword arguments.")
@click.option("--log", "sinks", multiple=True, type=click.Choice(["tensorboard"]),
              help="Also log to TensorBoard (RUNDIR/tensorboard/<job>; pip install 'lrbench-synth[tensorboard]').")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads [default: torch's]. On a shared or small CPU, 1 is often fastest.")
@click.option("--workers", type=int, default=None,
              help="Data-loader processes per GPU/process [default: up to 8 on CUDA, 0 on CPU].")
@click.option("--resume", is_flag=True, help="Require RUNDIR to hold this run (it resumes automatically anyway).")
def evaluate(model, tasks, preset, device, data, out, steps, seed, seeds, overrides, sinks, threads, workers, resume):
    """Train a baseline on the tasks, select on validation, report test metrics next to the paper's."""
    from lrbench import evaluate as harness

    main_rank = os.environ.get("RANK", "0") == "0"
    bars: dict[str, Progress] = {}
    losses: dict[str, str] = {}  # the latest logged training loss of each job, for its bar
    run_dir: list[str] = []

    def on_event(e: dict) -> None:
        if not main_rank:
            return
        kind = e["event"]
        where = f"[{e['index'] + 1}/{e['total']}] {e.get('job', '')}" if "index" in e else ""
        if kind == "plan":
            run_dir.append(e["out"])
            how = "resuming the run it holds (automatic)" if e["resuming"] and not resume else (
                "resuming (--resume)" if e["resuming"] else "new run")
            seeds = e["seeds"]
            which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
            click.echo(f"lrbench evaluate: preset {e['preset']} ({e['preset_reason']}: {e['description']}); "
                       f"device {e['device']} x{e['world_size']}, {e['threads']} thread(s); {len(e['jobs'])} run(s), "
                       f"{which} -> {e['out']}, {how}", err=True)
            for note in e["notes"]:
                click.echo(f"  note: {note}", err=True)
        elif kind == "skip":
            click.echo(f"{where}: already done (test {e['row']['metric']} {e['row']['test']:.4f})", err=True)
        elif kind == "start":
            if e["resume_step"] is not None:
                click.echo(f"{where}: resuming at step {e['resume_step']}/{e['steps']} from {e['checkpoint']}", err=True)
            else:
                data_from = ", ".join(f"{k} {v}" for k, v in e["data"].items())
                click.echo(f"{where}: {e['model']} for {e['steps']} steps ({data_from})", err=True)
            bars[e["job"]] = Progress(where, unit="steps")
        elif kind == "step":
            bar = bars[e["job"]]
            if e["loss"] is not None:
                losses[e["job"]] = f" loss {e['loss']:.4g}"
            val = "" if e["val"] is None else f" val {e['metric']}={e['val']:.4f}"
            bar.label = f"{where}{losses.get(e['job'], '')}{val}"
            bar(e["step"], e["steps"])
        elif kind == "done":
            r = e["row"]
            paper = "" if r["paper"] is None else f" (paper {r['paper']:.3f})"
            click.echo(f"{where}: test {r['metric']} {r['test']:.4f}{paper}, best val {r['val']:.4f} at step "
                       f"{r['best_step']}, {r['ms_per_step']:.1f} ms/step", err=True)

    rows = harness.evaluate(model, list(tasks) or None, preset, device=device, data=data, out=out, steps=steps,
                            seed=seed, seeds=seeds, overrides=_overrides(overrides), threads=threads, log=sinks, resume=resume,
                            workers=workers, on_event=on_event)
    if main_rank and rows:
        if seeds > 1:
            from lrbench.evaluate.summary import summarize, summary_markdown

            click.echo(summary_markdown(summarize(rows)))
        click.echo(harness.results_markdown(rows), nl=False)
        click.echo(f"\nresults: {Path(run_dir[0]) / 'results.json'}, {Path(run_dir[0]) / 'results.md'}")


def _overrides(items: tuple[str, ...]) -> dict[str, str]:
    """--set KEY=VALUE pairs as a dict (a key given twice: the last wins, as on most CLIs)."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise LrbenchError(f"--set expects KEY=VALUE (got {item!r})")
        out[key.strip()] = value.strip()
    return out


@cli.command()
@click.argument("runs", metavar="RUN...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="FILE.md",
              help="Write the table here, the figure beside it (FILE.png) and each run's learning curves "
                   "in FILE-curves/ (figures need matplotlib: the plot extra).")
@click.option("--no-plots", is_flag=True, help="With --out, write the table only.")
def report(runs, out, no_plots):
    """Merge runs into one table (models x tasks, mean ± std over seeds, the paper's numbers beside)."""
    from lrbench import report as reporting

    result = reporting.build(list(runs), out, plots=not no_plots)
    click.echo(result.table, nl=False)
    for path in reporting.write(result):
        click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="parquet",
              help="parquet: the Hugging Face Hub's layout, with README configs and croissant.json.")
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="DIR2",
              show_default="DIR-parquet beside DIR", help="Directory to create.")
@click.option("--force", is_flag=True, help="Replace DIR2 when it holds an earlier export.")
def export(directory, fmt, out, force):
    """Export a dataset for the Hugging Face Hub and Croissant readers (lossless; DIR is verified first)."""
    from lrbench.export import export as run

    result = run(directory, out, fmt=fmt, force=force, progress=Progress("export"))
    size = sum(f.bytes for f in result.files)
    click.echo(f"{result.path}: {len(result.files)} parquet file(s), {size:,} bytes, "
               f"{', '.join(result.raw_bytes)}; README.md and croissant.json written")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error(exc: OSError) -> str:
    """An OSError as one line: "reason: file". HDF5's own errors arrive as a long message with the
    reason and file inside (and a time stamp with a line break): take those out when present."""
    text = str(exc.strerror or exc)
    reason, name = re.search(r"error message = '([^']*)'", text), re.search(r"filename = '([^']*)'", text)
    if reason:
        text, filename = reason.group(1), name.group(1) if name else exc.filename
    else:
        filename = exc.filename
    return _one_line(f"{text}{f': {filename}' if filename else ''}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that the command stops the way Ctrl-C stops it: workers
    killed, temporary files removed, locks released."""


def _terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click group and turn every failure into one line and an exit code."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        code = cli.main(args=argv, prog_name="lrbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except LrbenchError as exc:
        click.echo(f"lrbench: error: {_one_line(str(exc))}", err=True)
        code = exc.code
    except click.ClickException as exc:  # click's own usage errors
        click.echo(f"lrbench: error: {_one_line(exc.format_message())}", err=True)
        code = exc.exit_code if not isinstance(exc, click.UsageError) else USAGE
    except (click.Abort, KeyboardInterrupt) as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        click.echo(f"lrbench: {how}; finished work (shards, checkpoints) is kept: rerun the same command to resume",
                   err=True)
        code = 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130
    except OSError as exc:  # full disk, permissions, vanished files
        click.echo(f"lrbench: error: {_os_error(exc)}", err=True)
        code = RUNTIME
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(code or 0)
