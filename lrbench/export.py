"""Export a dataset directory to the Hugging Face Hub's layout: parquet, README configs, Croissant.

    export("data/pathfinder-seg-128")          # -> data/pathfinder-seg-128-parquet/
        data/train-00000-of-00002.parquet ...   # <split>-<i:05d>-of-<n:05d>.parquet
        README.md                               # YAML front matter: configs, dataset_info; the card
        croissant.json                          # Croissant 1.1 core + RAI fields from the card

Lossless: every dataset of the HDF5 shards becomes a column of the same name and dtype. A fixed
per-sample shape is kept as nested lists with the shape recorded (README, parquet schema metadata,
Croissant ``arrayShape``); a ragged field is stored unpadded, cut at its ``lengths`` entry (kept too).
The source is verified first (sizes, sha256, shard attributes) and the export is written into a
temporary directory beside its destination, then renamed into place: it exists complete or not at
all. pyarrow is imported here only, on use (the ``[hf]`` extra).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lrbench import cards
from lrbench.dataset import open_dataset, verify
from lrbench.errors import RUNTIME, VERIFY, LrbenchError
from lrbench.manifest import MANIFEST
from lrbench.storage import fsync_dir, sha256_file, temporary_name

FORMATS = ("parquet",)
FILE_BYTES = 500 * 10**6  # raw bytes per parquet file at most: the Hub's push_to_hub default, 500 MB
ROW_GROUP_BYTES = 32 << 20  # raw bytes per row group: a reader seeking one sample decodes at most this
ZSTD_LEVEL = 3  # zstd's own default (Arrow's is 1): pathfinder-seg-128 7% smaller, written as fast
CROISSANT = "croissant.json"
PYARROW_HINT = "lrbench export needs pyarrow: pip install 'lrbench-synth[hf]'"


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the export, e.g. "data/test-00000-of-00001.parquet"
    split: str
    num_samples: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    path: Path
    files: tuple[ExportedFile, ...]
    raw_bytes: dict[str, int]  # per split: bytes of the arrays as Arrow holds them (dataset_info num_bytes)


def default_out(directory: str | Path) -> Path:
    """Where an export goes unless told: beside the dataset, its name plus ``-parquet``."""
    directory = Path(directory)
    if directory.name in ("", ".", ".."):  # `lrbench export .`: name it after the real directory
        directory = directory.resolve()
    return directory.with_name(directory.name + "-parquet")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise LrbenchError(PYARROW_HINT, RUNTIME) from None
    return pa, pq


# --- columns ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One stored dataset as a column: ``shape`` per sample, None first for a ragged field."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def hf_feature(self) -> dict:
        """This column in the `datasets` library's JSON form (``Sequence`` rather than ``List`` so
        that datasets 3.x reads it as well as 4.x and later)."""
        value = {"dtype": self.dtype, "_type": "Value"}
        if not self.shape:
            return value
        if len(self.shape) == 1:
            length = {} if self.shape[0] is None else {"length": self.shape[0]}
            return {"feature": value, **length, "_type": "Sequence"}
        return {"shape": list(self.shape), "dtype": self.dtype, "_type": f"Array{len(self.shape)}D"}

    def yaml(self) -> list[str]:
        """The column as a README ``dataset_info.features`` entry (the Hub's YAML form)."""
        lines = [f"  - name: {self.name}"]
        if not self.shape:
            return lines + [f"    dtype: {self.dtype}"]
        if len(self.shape) == 1:
            return lines + [f"    sequence: {self.dtype}"] + ([f"    length: {self.shape[0]}"] if self.shape[0] else [])
        shape = ", ".join("null" if d is None else str(d) for d in self.shape)
        return lines + ["    dtype:", f"      array{len(self.shape)}_d:", f"        shape: [{shape}]",
                        f"        dtype: {self.dtype}"]

    def arrow_type(self, pa):
        t = pa.from_numpy_dtype(np.dtype(self.dtype))
        if len(self.shape) == 1 and self.shape[0] is not None:
            return pa.list_(t, self.shape[0])  # fixed_size_list, as `datasets` makes List(length=n)
        for _ in self.shape:  # ArrayND's storage is plain nested lists
            t = pa.list_(t)
        return t

    def arrow(self, pa, a: np.ndarray, lengths: np.ndarray | None):
        """Rows ``a`` [n, *stored shape] as an Arrow array; ragged rows cut at ``lengths``."""
        n = len(a)
        if not self.shape:
            return pa.array(a)
        if self.shape[0] is None:
            keep = np.arange(a.shape[1]) < lengths[:, None]  # (n, max_length)
            values, sizes = a[keep], lengths.astype(np.int64)
        else:
            values, sizes = a.reshape(-1), np.full(n, self.shape[0], dtype=np.int64)
        if len(self.shape) == 1 and self.shape[0] is not None:
            return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), self.shape[0])
        inner = pa.array(np.ascontiguousarray(values).reshape(-1))
        # innermost dimension first: all but the first are fixed, so their offsets are a range
        count = len(inner)
        for d in reversed(self.shape[1:]):
            count //= d
            inner = pa.ListArray.from_arrays(pa.array(np.arange(0, count * d + 1, d, dtype=np.int32)), inner)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), inner)


def columns(ds) -> list[Column]:
    """The stored datasets of ``ds`` in order: its features, then ``lengths`` and ``digest``."""
    out = [Column(name, f.dtype, (None, *f.shape[1:]) if f.ragged else tuple(f.shape))
           for name, f in ds.task.features.items()]
    if any(f.ragged for f in ds.task.features.values()):
        out.append(Column("lengths", "int32", ()))
    if ds.task.spec.digest:
        out.append(Column("digest", "uint8", (16,)))
    return out


def _row_bytes(ds, cols: list[Column]) -> int:
    """Raw bytes of one sample as stored (ragged fields at their maximum)."""
    shapes = {name: f.shape for name, f in ds.task.features.items()}
    return max(1, sum(np.dtype(c.dtype).itemsize * int(np.prod(shapes.get(c.name, c.shape))) for c in cols))


# --- export -----------------------------------------------------------------------------------

def export(directory: str | Path, out: str | Path | None = None, fmt: str = "parquet", force: bool = False,
           file_bytes: int = FILE_BYTES, progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Export the dataset at ``directory`` as parquet shards with README and croissant.json.

    ``out`` defaults to ``default_out(directory)``. It may not exist unless ``force``, and then only
    as an earlier export or an empty directory, never as (or around, or inside) the dataset itself.
    Raises LrbenchError: code 2 for bad input, 3 when the dataset fails verification, 1 when
    pyarrow is missing.
    """
    if fmt not in FORMATS:
        raise LrbenchError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    directory = Path(directory)
    out = Path(out) if out is not None else default_out(directory)
    if not directory.is_dir():
        raise LrbenchError(f"{directory} is not a directory")
    ds = open_dataset(directory)
    _check_out(directory, out, force)
    pa, pq = _pyarrow()
    problems = verify(directory)
    if problems:
        raise LrbenchError(f"{directory} fails verification ({len(problems)} problem(s)); first: {problems[0]}", VERIFY)

    _remove_stale_temporaries(out.absolute())
    tmp = temporary_name(out.absolute())
    os.mkdir(tmp)
    try:
        (tmp / "data").mkdir()
        cols = columns(ds)
        schema = _schema(pa, ds, cols)
        # dictionary pages pay for tokens and images (few distinct values, long runs of 0), never for
        # float noise; they name a column by its leaf's path
        dictionary = [c.name + ".list.element" * len(c.shape) for c in cols if np.dtype(c.dtype).kind in "iub"]
        total = sum(len(ds[s]) for s in ds.splits)
        done, files, raw = 0, [], {}
        for split in ds.splits:
            view = ds[split]
            rows_per_file, n_files, rows_per_group = _plan(len(view), _row_bytes(ds, cols), file_bytes)
            raw[split] = 0
            for i in range(n_files):
                rel = f"data/{split}-{i:05d}-of-{n_files:05d}.parquet"
                first, stop = i * rows_per_file, min(len(view), (i + 1) * rows_per_file)
                with pq.ParquetWriter(tmp / rel, schema, compression="zstd", compression_level=ZSTD_LEVEL,
                                      use_dictionary=dictionary) as w:
                    for start in range(first, stop, rows_per_group):
                        rows = view.read(start, min(stop, start + rows_per_group), stored=True)
                        table = pa.Table.from_arrays([c.arrow(pa, rows[c.name], rows.get("lengths")) for c in cols],
                                                     schema=schema)
                        raw[split] += table.nbytes
                        w.write_table(table, row_group_size=len(table))
                        done += table.num_rows
                        if progress:
                            progress(done, total)
                _fsync(tmp / rel)
                files.append(ExportedFile(rel, split, stop - first, (tmp / rel).stat().st_size, sha256_file(tmp / rel)))
            view.close()
        result = ExportResult(out, tuple(files), raw)
        text = readme(ds, cols, result)
        (tmp / "README.md").write_text(text, encoding="utf-8")
        cards.copy_pictures(text, tmp)
        (tmp / CROISSANT).write_text(json.dumps(croissant(ds, cols, result), indent=2) + "\n", encoding="utf-8")
        for name in ("README.md", CROISSANT, "data", "."):
            _fsync(tmp / name)
        _replace(tmp, out)
    finally:
        ds.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _plan(n: int, row_bytes: int, file_bytes: int) -> tuple[int, int, int]:
    """(rows per file, files, rows per row group) for n samples of row_bytes each."""
    n_files = min(n, max(1, -(-n * row_bytes // file_bytes)))
    rows_per_file = -(-n // n_files)
    n_files = -(-n // rows_per_file)
    return rows_per_file, n_files, max(1, min(rows_per_file, ROW_GROUP_BYTES // row_bytes))


def _check_out(directory: Path, out: Path, force: bool) -> None:
    src, dst = directory.resolve(), out.resolve()
    if dst == src or dst in src.parents or src in dst.parents:
        raise LrbenchError(f"--out {out} overlaps the dataset {directory}; export beside it")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise LrbenchError(f"--out {out} exists and is not a directory")
    if not out.exists():
        if not out.parent.is_dir():
            raise LrbenchError(f"--out {out}: its parent directory does not exist")
        return
    if not force:
        raise LrbenchError(f"--out {out} exists; use --force to replace it")
    if (out / MANIFEST).exists() or not ((out / CROISSANT).is_file() or not any(out.iterdir())):
        raise LrbenchError(f"--out {out} is not an earlier export (no {CROISSANT}); --force only replaces those")


def _remove_stale_temporaries(out: Path) -> None:
    """Remove the temporary directories that killed exports to ``out`` left (their process is gone)."""
    for path in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(path.name[len(out.name) + 6:].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
        except (ValueError, OSError):  # not a name we make, or a live process of another user
            pass


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished export ``tmp`` to ``out``, replacing an earlier one there."""
    old = None
    if out.exists():
        old = temporary_name(out.absolute())
        os.rename(out, old)
    os.rename(tmp, out)
    fsync_dir(out.absolute().parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _schema(pa, ds, cols: list[Column]):
    """Arrow schema with the features in `datasets`' form and lrbench's own facts as metadata."""
    from lrbench import __version__

    hf = {"info": {"features": {c.name: c.hf_feature() for c in cols}}}
    own = {"lrbench": __version__, "task": ds.task.name, "config": ds.manifest.config, "seed": ds.seed,
           "features": ds.manifest.to_json()["features"]}
    return pa.schema([pa.field(c.name, c.arrow_type(pa)) for c in cols],  # nullable, as `datasets` declares
                     metadata={"huggingface": json.dumps(hf), "lrbench": json.dumps(own)})


# --- README.md --------------------------------------------------------------------------------

def readme(ds, cols: list[Column], result: ExportResult) -> str:
    """The card, its YAML front matter extended with the Hub's ``configs`` and ``dataset_info``,
    followed by a section on this export."""
    card = cards.render(ds.task.name, ds.manifest)  # a task without a card file gets its registry facts
    front, body = cards.split_front_matter(card)
    body = body.split("\n## This dataset\n")[0].rstrip("\n") + "\n"  # the HDF5 facts; ours follow
    sizes = {s: sum(f.bytes for f in result.files if f.split == s) for s in ds.splits}
    yaml = [front.rstrip("\n"), "configs:", "- config_name: default", "  data_files:"]
    yaml += [line for s in ds.splits for line in (f"  - split: {s}", f"    path: data/{s}-*")]
    yaml += ["dataset_info:", "  features:"] + [line for c in cols for line in c.yaml()]
    yaml += ["  splits:"] + [line for s in ds.splits for line in (
        f"  - name: {s}", f"    num_bytes: {result.raw_bytes[s]}", f"    num_examples: {len(ds[s])}")]
    yaml += [f"  download_size: {sum(sizes.values())}", f"  dataset_size: {sum(result.raw_bytes.values())}"]
    m = ds.manifest
    lines = ["", "## This export", "",
             f"Exported from the lrbench dataset `{ds.path.resolve().name}` (lrbench {m.versions['lrbench']}, "
             f"seed {m.seed}) by `lrbench export`, losslessly: every array of the HDF5 shards is a column "
             "here, with its dtype.",
             "", f"Config: `{json.dumps(m.config, sort_keys=True)}`", "",
             "| column | dtype | shape per sample |", "|---|---|---|"]
    for c in cols:
        shape = ", ".join(f"≤{ds.task.features[c.name].shape[0]}" if d is None else str(d) for d in c.shape)
        lines.append(f"| `{c.name}` | {c.dtype} | [{shape}] |")
    ragged = [c.name for c in cols if c.shape and c.shape[0] is None]
    if ragged:
        lines += ["", f"{', '.join(f'`{r}`' for r in ragged)} are stored unpadded (`lengths` gives each sample's "
                  "length); the HDF5 shards pad them to the maximum."]
    lines += ["", "| split | samples | files | bytes |", "|---|---|---|---|"]
    for s in ds.splits:
        n_files = sum(1 for f in result.files if f.split == s)
        lines.append(f"| {s} | {len(ds[s]):,} | {n_files} | {sizes[s]:,} |")
    lines += ["", f"Every file's sha256 is in `{CROISSANT}` (Croissant 1.1, with the Responsible-AI fields).",
              "", "```python", "from datasets import load_dataset",
              "ds = load_dataset(\"path/to/this/directory\")  # or the Hub repository's id",
              f"x = ds[\"{ds.splits[-1]}\"].with_format(\"numpy\", dtype=None)[0][\"inputs\"]  "
              "# dtype=None keeps stored dtypes (else integers become int64)", "```", ""]
    return "---\n" + "\n".join(yaml) + "\n---\n" + body + "\n".join(lines)


# --- croissant.json ---------------------------------------------------------------------------

CROISSANT_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "arrayShape": "cr:arrayShape", "citeAs": "cr:citeAs",
    "column": "cr:column", "conformsTo": "dct:conformsTo", "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5",
    "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "samplingRate": "cr:samplingRate", "equivalentProperty": "cr:equivalentProperty", "separator": "cr:separator",
    "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
CROISSANT_TYPES = {"float16": "cr:Float16", "float32": "cr:Float32", "float64": "cr:Float64", "int8": "cr:Int8",
                   "int16": "cr:Int16", "int32": "cr:Int32", "int64": "cr:Int64", "uint8": "cr:UInt8",
                   "uint16": "cr:UInt16", "uint32": "cr:UInt32", "uint64": "cr:UInt64", "bool": "sc:Boolean"}
PARQUET = "application/x-parquet"
SYNTHETIC = ("None. Every sample is computed by a program from (task, config, seed, split, index); no person, "
             "place or record of the world is in the data.")


def croissant(ds, cols: list[Column], result: ExportResult) -> dict:
    """Croissant 1.1 metadata of an export: every file with its sha256, one record set whose fields
    are the parquet columns (with the split read from each file's name), and the RAI fields taken
    from the task's card."""
    from lrbench import __version__

    text = cards.render(ds.task.name)
    sec = cards.sections(text)
    front = cards.split_front_matter(text)[0]
    tags = [t.strip() for t in _yaml_list(front, "tags")]
    splits = "|".join(ds.splits)
    files = [{"@type": "cr:FileObject", "@id": f.path, "name": f.path, "contentUrl": f.path,
              "encodingFormat": PARQUET, "contentSize": f"{f.bytes} B", "sha256": f.sha256} for f in result.files]
    fileset = {"@type": "cr:FileSet", "@id": "parquet-files", "name": "parquet-files", "encodingFormat": PARQUET,
               "includes": "data/*.parquet",
               "description": "The parquet files above, all splits (each file's name starts with its split)."}
    fields = [{"@type": "cr:Field", "@id": "default/split", "name": "split", "dataType": "sc:Text",
               "description": f"The split the sample belongs to: {', '.join(ds.splits)}.",
               "source": {"fileSet": {"@id": "parquet-files"}, "extract": {"fileProperty": "filename"},
                          # this simple form lets mlcroissant's split filter turn it into a glob
                          "transform": {"regex": f"^({splits})-.*\\.parquet$"}}}]
    for c in cols:
        field = {"@type": "cr:Field", "@id": f"default/{c.name}", "name": c.name,
                 "dataType": CROISSANT_TYPES[c.dtype],
                 "source": {"fileSet": {"@id": "parquet-files"}, "extract": {"column": c.name}}}
        if c.shape:
            field["isArray"] = True
            field["arrayShape"] = ",".join("-1" if d is None else str(d) for d in c.shape)
        fields.append(field)
    how = sec.get("How it is generated", "")
    meta = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": ["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"],
        "name": ds.path.resolve().name,
        "description": sec.get("Summary") or f"The lrbench task {ds.task.name}.",
        "license": "https://spdx.org/licenses/MIT.html",
        "url": "https://arxiv.org/abs/2212.00768",
        "version": __version__,
        "keywords": tags,
        "citeAs": _strip_fence(sec.get("Citation", "")),
        "isLiveDataset": False,
        "distribution": files + [fileset],
        "recordSet": [{"@type": "cr:RecordSet", "@id": "default", "name": "default",
                       "description": "One record per sample; array fields keep their per-sample shape.",
                       "field": fields}],
        "rai:dataCollection": how or "Generated by lrbench's task generator.",
        "rai:dataCollectionType": ["Software Collection"],
        "rai:dataCollectionRawData": "None: the generator is the source; there is no raw data behind it.",
        "rai:dataCollectionMissingData": "None: every sample has every field.",
        "rai:dataPreprocessingProtocol": (
            "Exported losslessly from lrbench's HDF5 shards (verified against their sha256 first): every "
            "stored array is a column of the same dtype; ragged fields are cut at their `lengths` entry."),
        "rai:dataAnnotationProtocol": ("Labels are computed exactly by the task's definition, no person "
                                       "annotates anything.\n\n" + sec.get("Definition", "")).strip(),
        "rai:machineAnnotationTools": [f"lrbench {ds.manifest.versions['lrbench']}"],
        "rai:dataBiases": ("Synthetic: no social or demographic bias. How the data departs from the "
                           "reference generator it reproduces:\n\n" + sec.get("Differences from the paper's code", "")
                           ).strip(),
        "rai:dataLimitations": sec.get("Limitations", ""),
        "rai:dataUseCases": sec.get("Intended use", ""),
        "rai:dataSocialImpact": ("A benchmark of sequence models' long-range abilities; no people are "
                                 "represented, so none are affected through the data."),
        "rai:personalSensitiveInformation": SYNTHETIC,
        "rai:dataReleaseMaintenancePlan": (
            f"Regenerable: lrbench {ds.manifest.versions['lrbench']} with task {ds.task.name}, config "
            f"{json.dumps(ds.manifest.config, sort_keys=True)} and seed {ds.seed} writes the same samples "
            "(`lrbench generate`, then `lrbench verify --deep` compares them byte for byte)."),
    }
    return meta


def _yaml_list(front: str, key: str) -> list[str]:
    """The items of a block list ``key:`` in simple YAML front matter."""
    out, inside = [], False
    for line in front.splitlines():
        if line.startswith(f"{key}:"):
            inside = True
        elif inside and line.lstrip().startswith("- "):
            out.append(line.strip()[2:].strip('"'))
        elif inside:
            break
    return out


def _strip_fence(text: str) -> str:
    lines = [line for line in text.splitlines() if not line.startswith("```")]
    return "\n".join(lines).strip()
