"""The data cards of the 11 atomic tasks say what the code does.

Each card has a fixed layout, and its machine-checkable parts are checked against the registry:
the front matter, the Fields table (shapes as formulas of L and the task's parameters), the
Parameters table (defaults and valid ranges), the Splits table, the worked example (regenerated
and compared value by value) and the paper's Table 1 row. Cards of the other tasks (ListOps,
Pathfinder) are theirs to check.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrbench
from lrbench.generators import atomic
from lrbench.registry import config_fields, spec_of

CARDS = Path(__file__).resolve().parents[1] / "data_cards"

ATOMIC = ["shift", "cumsum", "cummax", "reverse", "sort", "select", "select-fixed", "mips",
          "context-shift", "solve", "solve-fixed"]

SECTIONS = ["Summary", "Definition", "Fields", "Splits and sizes", "Parameters", "How it is generated",
            "Differences from the paper's code", "Intended use", "Limitations", "Citation"]
DIFFERENCES = "Differences from the paper's code"

# Paper Table 1, average validation R²: DLR, DSS_EXP, attention (1 layer, L = 2^12), DLR (6 layers,
# L = 2^12), DLR (6 layers, L = 2^9), attention (2 layers, L = 2^9).
TABLE1 = {
    "shift": "1 | .99 | .72 | 1 | 1 | 1",
    "cumsum": "1 | 1 | 1 | 1 | 1 | 1",
    "cummax": ".52 | .51 | 1 | 1 | 1 | 1",
    "select-fixed": ".97 | 0 | .72 | 1 | 1 | .94",
    "solve-fixed": "1 | .01 | 0 | 1 | 1 | .95",
    "reverse": ".01 | 0 | .03 | .99 | .95 | .28",
    "solve": "0 | 0 | 0 | 0 | .95 | 0",
    "select": "0 | 0 | .17 | 0 | .86 | .97",
    "sort": "0 | 0 | 0 | .49 | .50 | .51",
    "context-shift": "0 | 0 | 0 | .02 | .11 | .04",
    "mips": "0 | 0 | .90 | 0 | .01 | .97",
}

# configs whose feature shapes the Fields formulas must reproduce (defaults first)
VARIANTS = {
    "shift": [{"num_shifts": 3}, {"length": 100, "num_shifts": 100}],
    "select": [{"num_selected": 5}, {"length": 16}],
    "select-fixed": [{"num_selected": 1, "length": 33}],
    "mips": [{"dim": 3}, {"length": 17, "dim": 1}],
}


def card(name: str) -> str:
    path = CARDS / f"{name}.md"
    assert path.is_file(), f"missing data card {path}"
    return path.read_text(encoding="utf-8")


def front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter between '---' lines, read as `key: value` lines and `  - item` lists."""
    lines = text.split("\n")
    assert lines[0] == "---", "a card starts with a '---' line"
    end = lines.index("---", 1)
    meta: dict = {}
    key = None
    for line in lines[1:end]:
        if not line.strip():
            continue
        if line.lstrip().startswith("- "):
            assert isinstance(meta.get(key), list), f"list item outside a list: {line!r}"
            meta[key].append(line.strip()[2:].strip().strip('"'))
            continue
        key, sep, value = line.partition(":")
        assert sep and not line.startswith(" "), f"not a `key: value` line: {line!r}"
        key = key.strip()
        meta[key] = value.strip().strip('"') if value.strip() else []
    return meta, "\n".join(lines[end + 1:])


def sections(body: str) -> dict[str, str]:
    """'## Heading' -> the text up to the next '## ' heading, in order."""
    parts = re.split(r"^## (.+)$", body, flags=re.M)
    return {head.strip(): text for head, text in zip(parts[1::2], parts[2::2])}


def table_rows(text: str, pattern: str) -> list[tuple[str, ...]]:
    return [m.groups() for m in re.finditer(pattern, text, flags=re.M)]


def evaluate(expr: str, symbols: dict[str, int]) -> int:
    """An integer formula such as '2L', 'L + 2M', '3D + 2' with the given symbols."""
    tree = ast.parse(re.sub(r"(\d)\s*([A-Za-z])", r"\1*\2", expr.strip()), mode="eval")

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            assert node.id in symbols, f"unknown symbol {node.id!r} in {expr!r}; known: {sorted(symbols)}"
            return symbols[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            a, b = ev(node.left), ev(node.right)
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        raise AssertionError(f"unsupported shape formula {expr!r}")

    return ev(tree)


def symbols_of(cfg) -> dict[str, int]:
    sym = {"L": cfg.length, "N": atomic.solve_size(cfg.length)}
    for letter, field in (("C", "num_shifts"), ("M", "num_selected"), ("D", "dim")):
        if hasattr(cfg, field):
            sym[letter] = getattr(cfg, field)
    return sym


@pytest.fixture(scope="module", params=ATOMIC)
def parsed(request):
    name = request.param
    text = card(name)
    meta, body = front_matter(text)
    return name, text, meta, sections(body)


def test_front_matter(parsed):
    name, _, meta, _ = parsed
    for key in ("pretty_name", "license", "task_categories", "size_categories", "tags", "paper",
                "lrbench_task", "lrbench_task_id"):
        assert key in meta, f"{name}: front matter lacks {key}"
    assert meta["license"] == "mit"
    assert meta["lrbench_task"] == name
    assert int(meta["lrbench_task_id"]) == spec_of(name).id
    assert {"synthetic", "long-range", "lrbench", name} <= set(meta["tags"])
    assert "2212.00768" in meta["paper"]
    # all three default splits together: 112,800 samples
    total = sum(spec_of(name).default_splits.values())
    assert meta["size_categories"] == ["100K<n<1M"] and 100_000 < total < 1_000_000


def test_sections_in_order(parsed):
    name, _, _, secs = parsed
    assert list(secs) == SECTIONS, f"{name}: sections are {list(secs)}"
    assert "### Worked example" in secs["Definition"]


def test_fields_match_features(parsed):
    name, _, _, secs = parsed
    rows = table_rows(secs["Fields"], r"^\| `(\w+)` \| (\w+) \| \[([^\]]+)\] \|")
    assert rows, f"{name}: no '| `field` | dtype | [shape] |' rows in Fields"
    assert "cos(2πi/T)" in secs["Fields"] and "sin(2πi/T)" in secs["Fields"]
    for params in [{}] + VARIANTS.get(name, []) + [{"length": 16}, {"length": 257}]:
        task = lrbench.get_task(name, **params)
        features = task.features
        assert sorted(r[0] for r in rows) == sorted(features), f"{name}: card fields differ from the features"
        sym = symbols_of(task.config)
        sample = task.sample(0, split="val")
        for field, dtype, shape in rows:
            stated = tuple(evaluate(part, sym) for part in shape.split(","))
            assert dtype == features[field].dtype, f"{name}.{field}: card says {dtype}"
            assert stated == features[field].shape, f"{name}.{field} at {params}: card [{shape}] = {stated}"
            assert sample[field].shape == stated


def _range_bounds(text: str, default_length: int) -> tuple[int, int | None]:
    m = re.fullmatch(r"integer ≥ (\d+)", text) or re.fullmatch(r"integer in \[(\d+), (\w+)\]", text)
    assert m, f"valid values must read 'integer ≥ a' or 'integer in [a, b]' (got {text!r})"
    lo = int(m.group(1))
    hi = m.group(2) if m.re.groups == 2 else None
    return lo, (default_length if hi == "L" else None if hi is None else int(hi))


def test_parameters_match_config(parsed):
    name, _, _, secs = parsed
    rows = table_rows(secs["Parameters"], r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|")
    defaults = config_fields(spec_of(name))
    assert [r[0] for r in rows] == list(defaults), f"{name}: parameters {[r[0] for r in rows]}"
    for param, default, valid in rows:
        assert default == str(defaults[param]), f"{name}.{param}: card default {default}"
        lo, hi = _range_bounds(valid, defaults["length"])
        lrbench.get_task(name, **{param: lo})
        with pytest.raises(ValueError):
            lrbench.get_task(name, **{param: lo - 1})
        if hi is not None:
            lrbench.get_task(name, **{param: hi})
            with pytest.raises(ValueError):
                lrbench.get_task(name, **{param: hi + 1})


def test_splits_match_registry(parsed):
    name, _, _, secs = parsed
    spec = spec_of(name)
    rows = table_rows(secs["Splits and sizes"], r"^\| (train|val|test) \| ([\d,]+) \| (yes|no)\b")
    assert {s: int(n.replace(",", "")) for s, n, _ in rows} == spec.default_splits
    assert {s for s, _, written in rows if written == "yes"} == set(spec.finite_splits)


def _fmt(value) -> str:
    s = f"{float(value):.3f}"
    return "0.000" if s == "-0.000" else s


def test_worked_example_is_real(parsed):
    """The example block holds rows `inputs[i, c]` / `targets[k, c]` under an index header row;
    every value must be what the stated call generates, rounded to 3 decimals."""
    name, _, _, secs = parsed
    example = secs["Definition"].split("### Worked example", 1)[1]
    call = re.search(r'`lrbench\.get_task\("([\w-]+)"((?:, \w+=\d+)*)\)'
                     r'\.sample\((\d+), split="(\w+)", seed=(\d+)\)`', example)
    assert call, f"{name}: the worked example does not name the call that generated it"
    assert call.group(1) == name
    params = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", call.group(2))}
    sample = lrbench.get_task(name, **params).sample(int(call.group(3)), split=call.group(4),
                                                    seed=int(call.group(5)))
    block = example.split("```", 2)[1]
    checked, header = 0, None
    for line in block.strip("\n").split("\n"):
        label = re.match(r"^(\w)\s", line) or re.match(r"^(inputs|targets)\[\w, (\d+)\]\s", line)
        if label and label.re.groups == 1:
            header = line.split()[1:]
            continue
        if not label:
            continue
        values = line[label.end():].split()
        assert header and len(values) == len(header), f"{name}: row {line!r} does not fit its header"
        array, channel = sample[label.group(1)], int(label.group(2))
        for index, value in zip(header, values):
            if index == "…":
                assert value == "…"
                continue
            assert value == _fmt(array[int(index), channel]), f"{name}: {label.group(0).strip()} at {index}"
            checked += 1
    assert checked >= 8, f"{name}: the worked example shows only {checked} values"


def test_paper_table1_row(parsed):
    name, _, _, secs = parsed
    assert f"| R² | {TABLE1[name]} |" in secs["Intended use"], f"{name}: Table 1 row differs from the paper"


def test_differences_from_the_paper_code(parsed):
    """The section names the script that measured it, and its lrbench column is the library's: the
    shapes at L = 512, and the task's own facts where the card states them (Shift's delays, Solve's N,
    the fixed instances of seed 0)."""
    name, _, _, secs = parsed
    text = secs[DIFFERENCES]
    assert "benchmarks/atomic_fidelity.py" in text and "KS p" in text
    shapes = re.search(r"^\| inputs, targets \| \[([^\]]+)\], \[([^\]]+)\] float32 \|", text, flags=re.M)
    assert shapes, f"{name}: no '| inputs, targets | [..], [..] float32 |' row"
    features = lrbench.get_task(name, length=512).features
    for part, field in zip(shapes.groups(), ("inputs", "targets")):
        assert tuple(int(v) for v in part.split(",")) == features[field].shape, (name, field)
    if name == "shift":
        rows = table_rows(text, r"^\| (\d+) \| ([\d ]+) \| ([\d ]+) \|")
        assert len(rows) >= 2, "shift: the table of delays at lengths C does not divide"
        for L, ours, text_formula in rows:
            L = int(L)
            y = lrbench.get_task("shift", length=L).sample(0)["targets"]
            assert ours.split() == [str(int(np.flatnonzero(y[:, j])[0])) for j in range(8)], L
            assert text_formula.split() == [str(j * L // 8) for j in range(8)], L
    if name in ("solve", "solve-fixed"):
        rows = table_rows(text, r"^\| (\d+) \| (\d+) \| (\d+) \|")
        assert any(a != b for _, a, b in rows), f"{name}: the table of N shows where the two differ"
        for L, ours, _ in rows:
            assert lrbench.get_task(name, length=int(L)).features["targets"].shape == (int(ours), 1), L
    if name == "select-fixed":
        found = re.findall(r"lrbench, seed 0, L = (\d+): ([\d, ]+), …", text)
        assert found, "select-fixed: the card shows the first positions of seed 0"
        for L, first in found:
            stated = [int(v) for v in first.split(",")]
            assert stated == lrbench.get_task(name, length=int(L)).fixed(0)[: len(stated)].tolist(), L
    if name == "solve-fixed":
        found = re.findall(r"lrbench, seed 0, L = (\d+): A\[0, :3\] = (-?[\d.]+), (-?[\d.]+), (-?[\d.]+)", text)
        assert found, "solve-fixed: the card shows the start of seed 0's matrix"
        for L, *row in found:
            A = lrbench.get_task(name, length=int(L)).fixed(0)
            assert row == [_fmt(v) for v in A[0, :3]], L


def test_citation(parsed):
    name, _, _, secs = parsed
    bib = secs["Citation"]
    assert "@article{" in bib and "arXiv:2212.00768" in bib
    assert "Gupta, Ankit and Mehta, Harsh and Berant, Jonathan" in bib
    assert "Simplifying and Understanding State Space Models with Diagonal Linear RNNs" in bib


def test_parsers_reject_bad_cards():
    """The helpers above fail on what they should: unknown symbols, no front matter, vague ranges."""
    assert evaluate("L + 2M", {"L": 16, "M": 32}) == 80
    assert evaluate(" 3D + 2", {"D": 4}) == 14
    with pytest.raises(AssertionError):
        evaluate("L + 2K", {"L": 16, "M": 32})
    with pytest.raises(AssertionError):
        evaluate("L / 2", {"L": 16})
    with pytest.raises(AssertionError):
        front_matter("# no front matter\n")
    with pytest.raises(AssertionError):
        _range_bounds("any positive integer", 4096)


def test_cli_prints_the_card():
    result = subprocess.run([sys.executable, "-m", "lrbench", "card", "shift"], capture_output=True,
                            text=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == card("shift").rstrip("\n") + "\n"
