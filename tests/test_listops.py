"""ListOps-Subtrees: the definition checked by an independent parser and evaluator, the distribution
checked against a literal recursive rejection sampler of the same tree process."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import lrbench
from lrbench.generators import listops
from lrbench.generators.listops import ListOpsConfig, listops_subtrees

TOKEN = {"[MIN": 11, "[MAX": 12, "[MED": 13, "[SM": 14, "]": 15, **{str(v): 1 + v for v in range(10)}}
OPS = ("MIN", "MAX", "MED", "SM")
SMALL = ListOpsConfig(max_depth=8, max_args=9, min_length=300, max_length=500)  # for the distribution
ALPHA = 1e-3  # per histogram; nine histograms per comparison -> family-wise error below 1 %


def encode(text: str) -> list[int]:
    return [TOKEN[word] for word in text.split()]


def evaluate(op: str, args: list[int]) -> int:
    if op == "MIN":
        return min(args)
    if op == "MAX":
        return max(args)
    if op == "SM":
        return sum(args) % 10
    s, n = sorted(args), len(args)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2  # even count: floor of the mean


def parse(tokens: list[int]) -> dict:
    """Recursive descent over token ids. Returns closes {pos of ']': (value, height, op code)},
    arities (children per operator), depths (of every node, root = 1), the root's value and height,
    and the heights of the root's children."""
    closes, arities, depths, root_children = {}, [], [], []

    def node(pos: int, depth: int) -> tuple[int, int, int]:  # -> value, height, next position
        depths.append(depth)
        t = tokens[pos]
        if 1 <= t <= 10:
            return t - 1, 0, pos + 1
        assert 11 <= t <= 14, f"token {t} at {pos} cannot start an expression"
        args, heights, pos = [], [], pos + 1
        while tokens[pos] != 15:
            value, height, pos = node(pos, depth + 1)
            args.append(value)
            heights.append(height)
        op = t - 11
        closes[pos] = (evaluate(OPS[op], args), 1 + max(heights), op)
        arities.append(len(args))
        if depth == 1:
            root_children.extend(heights)
        return closes[pos][0], closes[pos][1], pos + 1

    value, height, end = node(0, 1)
    assert end == len(tokens), f"one expression must use every token ({end} of {len(tokens)} used)"
    return {"closes": closes, "arities": arities, "depths": depths, "value": value, "height": height,
            "root children": root_children}


def check_definition(sample: dict, cfg: ListOpsConfig) -> dict:
    tokens = sample["inputs"].tolist()
    n = len(tokens)
    assert cfg.min_length <= n <= cfg.max_length
    assert sample["inputs"].dtype == np.uint8
    assert all(sample[k].dtype == np.int8 and sample[k].shape == (n,) for k in ("targets", "node_height", "node_op"))
    assert set(tokens) <= set(range(1, 16))  # no PAD inside a sample
    tree = parse(tokens)
    targets, heights, ops = np.full(n, -100), np.full(n, -1), np.full(n, -1)
    for pos, (value, height, op) in tree["closes"].items():
        targets[pos], heights[pos], ops[pos] = value, height, op
    np.testing.assert_array_equal(sample["targets"], targets)
    np.testing.assert_array_equal(sample["node_height"], heights)
    np.testing.assert_array_equal(sample["node_op"], ops)
    assert max(tree["depths"]) <= cfg.max_depth
    assert all(2 <= a <= cfg.max_args for a in tree["arities"])
    return tree


# ---------------------------------------------------------------------------------------------
# The definition


def test_worked_example_of_the_paper():
    tree = parse(encode("[MAX 2 6 [MED [SM 3 1 6 ] 8 3 ] 4 5 ]"))
    assert [tree["closes"][p] for p in sorted(tree["closes"])] == [(0, 1, 3), (3, 2, 2), (6, 3, 1)]
    assert evaluate("MED", [7, 2, 4, 9]) == 5 and evaluate("MED", [1, 2]) == 1 and evaluate("MED", [3, 1, 2]) == 2


@pytest.mark.parametrize("cfg", [SMALL, ListOpsConfig(max_depth=4, max_args=3, min_length=1, max_length=30),
                                 ListOpsConfig(max_depth=15, max_args=2, min_length=40, max_length=60),
                                 ListOpsConfig(max_depth=3, max_args=20, min_length=100, max_length=400)])
def test_every_target_height_and_operator(cfg):
    for i in range(30):
        check_definition(listops_subtrees(np.random.default_rng(i), cfg), cfg)


def test_default_window_samples(default_samples):
    for s in default_samples[:8]:
        check_definition(s, ListOpsConfig())


def test_default_window_is_the_paper_generators():
    """The paper's generator (--min_length 7000 --max_length 8180, max_depth 15, max_args 9) keeps a
    tree when min_length < tokens < max_length, strictly; the inclusive window is what remains."""
    cfg = ListOpsConfig()
    kept = [n for n in range(6990, 8200) if 7000 < n < 8180]
    assert list(range(cfg.min_length, cfg.max_length + 1)) == kept
    assert (cfg.max_depth, cfg.max_args) == (15, 9)
    # the bounds are inclusive in the sampler: a one-length window gives exactly that length
    for n in (41, 42):
        one = ListOpsConfig(max_depth=8, min_length=n, max_length=n)
        assert {len(listops_subtrees(np.random.default_rng(i), one)["inputs"]) for i in range(20)} == {n}


def test_a_single_digit_is_a_sample_when_the_window_allows_it():
    cfg = ListOpsConfig(max_depth=3, min_length=1, max_length=1)
    s = listops_subtrees(np.random.default_rng(0), cfg)
    assert len(s["inputs"]) == 1 and 1 <= s["inputs"][0] <= 10
    assert s["targets"].tolist() == [-100] and s["node_height"].tolist() == [-1] and s["node_op"].tolist() == [-1]


def test_determinism_and_only_the_given_rng():
    cfg = ListOpsConfig(min_length=500, max_length=900)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = listops_subtrees(np.random.default_rng(7), cfg)
    b = listops_subtrees(np.random.default_rng(7), cfg)
    c = listops_subtrees(np.random.default_rng(8), cfg)
    assert np.array_equal(np.random.get_state()[1], before)
    assert all(a[k].tobytes() == b[k].tobytes() and a[k].dtype == b[k].dtype for k in a)
    assert a["inputs"].tobytes() != c["inputs"].tobytes()
    task = lrbench.get_task("listops_subtrees", min_length=500, max_length=900)
    assert task.sample(3, "val", 1)["inputs"].tobytes() == task.sample(3, "val", 1)["inputs"].tobytes()
    assert task.sample(3, "val", 1)["inputs"].tobytes() != task.sample(3, "test", 1)["inputs"].tobytes()


GOLDEN = {  # sha256 of inputs | targets | node_height | node_op bytes of get_task(...).sample(i, "test", seed=0)
    (20, 40, 0): "060b48ef32105e4910b595759cfeb785070d84d80f181752cdaec65ba40f36c9",
    (200, 260, 5): "fb37ce9ef05176aa438719ca6da58dc1d0df8aa9e5066677444e4b042b87804a",
}


@pytest.mark.parametrize("key", list(GOLDEN))
def test_golden_samples(key):
    lo, hi, index = key
    s = lrbench.get_task("listops-subtrees", min_length=lo, max_length=hi).sample(index, split="test", seed=0)
    blob = b"".join(s[k].tobytes() for k in ("inputs", "targets", "node_height", "node_op"))
    assert hashlib.sha256(blob).hexdigest() == GOLDEN[key]


@pytest.mark.parametrize("params, message", [
    ({"max_depth": 0}, "max_depth must be an integer in [1, 64]"),
    ({"max_args": 1}, "max_args must be an integer in [2, 32]"),
    ({"max_length": 70000}, "max_length must be an integer in [1, 65536]"),
    ({"min_length": 9000}, "min_length must be an integer in [1, 8179]"),
    ({"min_length": 7.5}, "min_length must be an integer"),
    ({"max_depth": 2, "min_length": 12, "max_length": 20}, "has at most 11 tokens; min_length must be <= 11"),
    ({"max_depth": 6, "min_length": 8000}, "window must have probability >= 1e-06"),
])
def test_config_validation(params, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        ListOpsConfig(**params)


def test_registry_entry():
    task = lrbench.get_task("listops-subtrees")
    assert task.id == 12 and task.kind == "tagging" and task.spec.num_classes == 10
    assert task.dir_name() == "listops-subtrees" and task.spec.digest
    features = task.features
    assert list(features) == ["inputs", "targets", "node_height", "node_op"]
    assert all(f.ragged and f.shape == (8179,) and f.compress for f in features.values())
    assert [features[k].pad for k in features] == [0, -100, -1, -1]


def test_describe():
    words = "[MAX 2 6 [MED [SM 3 1 6 ] 8 3 ] 4 5 ]".split()
    tokens = np.array(encode(" ".join(words)), dtype=np.uint8)
    targets = np.full(len(tokens), -100, dtype=np.int8)
    targets[[8, 11, 14]] = [0, 3, 6]
    text = listops.describe({"inputs": tokens, "targets": targets})
    assert "[MAX 2 6 [MED [SM 3 1 6 ]=0 8 3 ]=3 4 5 ]=6" in text
    assert "[SM 3 1 6 ] = 0" in text  # the first sub-expression to close, in full

    cfg = ListOpsConfig()
    sample = lrbench.get_task("listops-subtrees").sample(0, "test", 0)
    text = listops.describe(sample, cfg)
    lines = text.splitlines()
    assert f"{len(sample['inputs']):,} tokens" in lines[0] and len(lines) < 30 and "…]=" in text
    root_value = int(sample["targets"][-1])
    assert f"value of the whole expression: {root_value}" in text
    pads = {"inputs": 0, "targets": -100, "node_height": -1, "node_op": -1}  # as stored on disk
    padded = {k: np.pad(v, (0, cfg.max_length - len(v)), constant_values=pads[k]) for k, v in sample.items()}
    assert listops.describe(padded, cfg) == text


# ---------------------------------------------------------------------------------------------
# The distribution


def reference_tree(rng: np.random.Generator, cfg: ListOpsConfig, depth: int, out: list[int]) -> None:
    """The process, literally: below max_depth a node is an operator with probability 1/4."""
    if depth < cfg.max_depth and rng.random() < 0.25:
        k = int(rng.integers(2, cfg.max_args + 1))
        out.append(11 + int(rng.integers(4)))
        for _ in range(k):
            reference_tree(rng, cfg, depth + 1, out)
        out.append(15)
    else:
        out.append(1 + int(rng.integers(10)))


def reference_sampler(rng: np.random.Generator, cfg: ListOpsConfig, root_depth: int = 1) -> list[int]:
    """Plain rejection: draw whole trees until one has min_length..max_length tokens."""
    while True:
        out: list[int] = []
        reference_tree(rng, cfg, root_depth, out)
        if cfg.min_length <= len(out) <= cfg.max_length:
            return out


def exact_length_pmf(cfg: ListOpsConfig) -> np.ndarray:
    """P(tokens = n), n = 0..max_length, by direct convolution (no FFT), from depth max_depth up."""
    N = cfg.max_length
    pmf = np.zeros(N + 1)
    pmf[1] = 1.0
    for _ in range(cfg.max_depth - 1):
        mean_power, power = np.zeros(N + 1), pmf
        for _k in range(2, cfg.max_args + 1):
            power = np.convolve(power, pmf)[: N + 1]
            mean_power += power / (cfg.max_args - 1)
        nxt = np.zeros(N + 1)
        nxt[1] = 0.75
        nxt[2:] = 0.25 * mean_power[: N - 1]
        pmf = nxt
    return pmf


def per_tree_counts(trees: list[list[int]], cfg: ListOpsConfig) -> dict[str, np.ndarray]:
    """Histograms per tree ([trees, bins]), from the test's own parser: length (10 bins), root
    height, root arity, height of the root's first child, node heights, nodes per depth, operators,
    arities, labels. The last bin of a height, depth or arity histogram collects impossible values."""
    D, A = cfg.max_depth, cfg.max_args
    edges = np.linspace(cfg.min_length, cfg.max_length + 1, 11)
    names = ("length", "root height", "root arity", "first child height", "node height", "node depth",
             "operator", "arity", "label")
    out = {k: [] for k in names}
    for tokens in trees:
        tree = parse(tokens)
        values, heights, ops = (np.array(c) for c in zip(*tree["closes"].values()))
        out["length"].append(np.histogram([len(tokens)], edges)[0])
        out["root height"].append(np.bincount([min(tree["height"], D)], minlength=D + 1))  # bin D: too high
        out["root arity"].append(np.bincount([min(len(tree["root children"]), A + 1)], minlength=A + 2))
        out["first child height"].append(np.bincount([min(tree["root children"][0], D)], minlength=D + 1))
        out["node height"].append(np.bincount(np.minimum(heights, D), minlength=D + 1))
        out["node depth"].append(np.bincount(np.minimum(tree["depths"], D + 1), minlength=D + 2))
        out["operator"].append(np.bincount(ops, minlength=4))
        out["arity"].append(np.bincount(np.minimum(tree["arities"], A + 1), minlength=A + 2))
        out["label"].append(np.bincount(values, minlength=10))
    return {k: np.array(v) for k, v in out.items()}


def permutation_chi2(x: np.ndarray, y: np.ndarray, n_perm: int = 2000, seed: int = 0) -> float:
    """Two-sample chi-square test of equal histograms; x, y are per-tree counts [trees, bins].

    Node-level counts within a tree are not independent, so the p-value comes from permuting whole
    trees between the two samples (exact under the null that the trees are i.i.d. from one law).
    Bins with pooled count < 10 are merged into one."""
    z = np.vstack([x, y]).astype(np.float64)
    rare = z.sum(0) < 10
    z = np.column_stack([z[:, ~rare], z[:, rare].sum(1)]) if rare.any() else z
    z = z[:, z.sum(0) > 0]
    total = z.sum(0)

    def chi2(a):  # a: [..., bins], the first sample's totals
        b = total - a
        na, nb = a.sum(-1, keepdims=True), b.sum(-1, keepdims=True)
        ea, eb = na * total / (na + nb), nb * total / (na + nb)
        return ((a - ea) ** 2 / ea + (b - eb) ** 2 / eb).sum(-1)

    observed = chi2(z[: len(x)].sum(0))
    rng = np.random.default_rng(seed)
    masks = rng.permuted(np.tile(np.arange(len(z)) < len(x), (n_perm, 1)), axis=1)
    permuted = chi2(masks.astype(np.float64) @ z)
    return float((1 + np.sum(permuted >= observed * (1 - 1e-12))) / (n_perm + 1))


def pvalues(a: dict, b: dict) -> dict[str, float]:
    return {k: permutation_chi2(a[k], b[k]) for k in a}


class OperatorsFirst:
    """A plausible bug: a level's draws are not shuffled into place (operators first, then leaves)."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.calls = rng, 0

    def shuffle(self, x):
        self.calls += 1
        x[:] = np.sort(x)[::-1]

    def __getattr__(self, name):
        return getattr(self.rng, name)


N_REF, N_BIASED = 1500, 300


@pytest.fixture(scope="module")
def reference_counts():
    rng = np.random.default_rng(2024)
    return per_tree_counts([reference_sampler(rng, SMALL) for _ in range(N_REF)], SMALL)


@pytest.fixture(scope="module")
def ours_small():
    return [listops_subtrees(np.random.default_rng([5, i]), SMALL) for i in range(N_REF)]


@pytest.fixture(scope="module")
def default_samples():
    task = lrbench.get_task("listops-subtrees")
    return [task.sample(i, "train", seed=11) for i in range(150)]


def test_same_distribution_as_the_literal_rejection_sampler(reference_counts, ours_small):
    for s in ours_small[:100]:
        check_definition(s, SMALL)
    p = pvalues(reference_counts, per_tree_counts([s["inputs"].tolist() for s in ours_small], SMALL))
    assert min(p.values()) > ALPHA, p


def test_the_comparison_rejects_biased_samplers(reference_counts):
    # Root at depth 0 instead of 1: one level more than the process allows.
    rng = np.random.default_rng(99)
    deeper = per_tree_counts([reference_sampler(rng, SMALL, root_depth=0) for _ in range(N_BIASED)], SMALL)
    p = pvalues(reference_counts, deeper)
    assert p["root height"] < ALPHA and p["node height"] < ALPHA, p
    # Our sampler with each level left unshuffled.
    proxies = [OperatorsFirst(np.random.default_rng([6, i])) for i in range(N_BIASED)]
    unshuffled = [listops_subtrees(r, SMALL)["inputs"].tolist() for r in proxies]
    assert all(r.calls > 0 for r in proxies)
    p = pvalues(reference_counts, per_tree_counts(unshuffled, SMALL))
    assert min(p.values()) < ALPHA, p


def test_length_distribution_matches_the_exact_one(ours_small, default_samples):
    tiny = ListOpsConfig(max_depth=4, max_args=3, min_length=1, max_length=30)  # a leaf root is allowed
    tiny_samples = [listops_subtrees(np.random.default_rng([7, i]), tiny) for i in range(1000)]
    for cfg, samples in ((SMALL, ours_small), (ListOpsConfig(), default_samples), (tiny, tiny_samples)):
        pmf = exact_length_pmf(cfg)
        np.testing.assert_allclose(listops.token_count_pmf(cfg), pmf, rtol=1e-9, atol=1e-15)
        window = pmf[cfg.min_length : cfg.max_length + 1] / pmf[cfg.min_length : cfg.max_length + 1].sum()
        cum = np.cumsum(window)  # bins of about equal probability under the exact conditional law
        cut = np.unique(np.searchsorted(cum, np.arange(1, 8) / 8))
        cut = cut[cut < len(window) - 1]
        expected = np.diff(np.concatenate([[0], cum[cut], [1]])) * len(samples)
        lengths = np.array([len(s["inputs"]) for s in samples]) - cfg.min_length
        observed = np.bincount(np.searchsorted(cut, lengths, side="left"), minlength=len(cut) + 1)
        assert len(observed) >= 3 and stats.chisquare(observed, expected).pvalue > ALPHA, (cfg, observed, expected)


# ---------------------------------------------------------------------------------------------
# The data card


def test_data_card_matches_the_library():
    text = (Path(__file__).resolve().parents[1] / "data_cards" / "listops-subtrees.md").read_text(encoding="utf-8")
    front = text.split("---")[1]
    assert "lrbench_task: listops-subtrees" in front and "lrbench_task_id: 12" in front
    for section in ("Summary", "Definition", "Fields", "Splits and sizes", "Parameters", "How it is generated",
                    "Statistics", "Differences from the paper's code", "Intended use", "Limitations", "Citation"):
        assert f"\n## {section}\n" in text, section
    for field in dataclasses.fields(ListOpsConfig):
        assert f"| `{field.name}` | {field.default} |" in text, field.name
    for split, n in lrbench.get_task("listops-subtrees").spec.default_splits.items():
        assert f"| {split} | {n:,} |" in text
    # the worked example is the library's output
    s = lrbench.get_task("listops-subtrees", min_length=20, max_length=40).sample(0, split="test", seed=0)
    rows = {line.split()[0]: line.split()[1:] for line in text.split("### Worked example")[1].split("```")[1].splitlines()
            if line.strip()}
    assert rows["token"] == [listops.TOKEN_NAMES[t] for t in s["inputs"]]
    assert rows["inputs"] == [str(t) for t in s["inputs"]]
    for field in ("targets", "node_height", "node_op"):
        assert rows[field] == ["." if v < 0 else str(v) for v in s[field]], field
