"""ListOps-Subtrees (DLR paper §3.2): tag every closing bracket with the value of its sub-expression.

    [MAX 2 6 [MED [SM 3 1 6 ] 8 3 ] 4 5 ]  ->  targets at ']' : 0, 3, 6
    inputs  12 3 7 13 14 4 2 7 15 9 4 15 5 6 15
    targets  .  . .  .  . . . .  0 . .  3 . .  6     (. = -100, ignored)
    node_height at ']' : 1, 2, 3        node_op at ']' : 3 (SM), 2 (MED), 1 (MAX)

Vocabulary: PAD=0, digits "0".."9" = 1..10, "[MIN"=11, "[MAX"=12, "[MED"=13, "[SM"=14, "]"=15.
MIN, MAX as usual; MED of an even count is floor((a_(k) + a_(k+1)) / 2) of the two middle values;
SM is the sum mod 10.

The tree process is the one of the LRA and DLR generators: the root is at depth 1; a node at depth
< max_depth is an operator with probability 1/4 (else a leaf); at depth max_depth it is a leaf; an
operator has uniform{2..max_args} children and a uniform operator; leaves are uniform digits. A tree
has (leaves + 2 * operators) tokens, and a sample is a tree of that process *conditioned on*
min_length <= tokens <= max_length.

How we sample it exactly, fast. Grow the tree level by level (breadth first). At a level with c
nodes, the c (leaf-or-operator, number of children) draws are i.i.d., so they can be split into
(1) the histogram of those draws (how many leaves, how many operators with k children) and
(2) their arrangement, which given the histogram is a uniformly random permutation of it.
The token count, and hence acceptance, depends on the histograms alone, and the next level's size is
the sum of children counts. So: (a) run the histogram chain for a batch of candidate trees at once
(a binomial and a multinomial per level), dropping a candidate as soon as it must end outside the
window (too many tokens already, or too few even if every open node grew to its maximum), and
keep the first accepted candidate in batch order; (b) shuffle each level of that one candidate into
place, draw operators and digits, and evaluate bottom-up with segment reductions. When
min_length > 1 every accepted tree has an operator root, so candidates are drawn with an operator
root (conditioning the proposal on an event that contains the acceptance event changes nothing).
Operator draws and digits are i.i.d. and independent of the shape, so drawing them after
acceptance is exact too. tests/test_listops.py checks the result against a literal recursive
rejection sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PAD, DIGIT0, OPEN0, CLOSE = 0, 1, 11, 15  # token ids: digit v -> 1 + v, operator o -> 11 + o
OPS = ("MIN", "MAX", "MED", "SM")  # node_op codes 0..3
IGNORE = -100
P_OPERATOR = 0.25
MIN_ACCEPTANCE = 1e-6  # below this a window is (practically) unreachable by rejection sampling
FIRST_BATCH, MAX_BATCH = 64, 1 << 16  # candidate trees per batch: doubles after an empty batch

TOKEN_NAMES = ("<pad>",) + tuple(str(v) for v in range(10)) + tuple("[" + op for op in OPS) + ("]",)


def _check_int(name: str, value, lo: int, hi: int) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {value!r})")


@dataclass(frozen=True)
class ListOpsConfig:
    max_depth: int = 15
    max_args: int = 9
    min_length: int = 7000
    max_length: int = 8192

    def __post_init__(self):
        _check_int("max_depth", self.max_depth, 1, 64)
        _check_int("max_args", self.max_args, 2, 32)
        _check_int("max_length", self.max_length, 1, 65536)
        _check_int("min_length", self.min_length, 1, self.max_length)
        most = max_tokens(self.max_depth, self.max_args, self.max_length + 1)[1]
        if most < self.min_length:
            raise ValueError(
                f"a tree with max_depth={self.max_depth}, max_args={self.max_args} has at most {most} tokens; "
                f"min_length must be <= {most} (got {self.min_length})"
            )
        p = acceptance_probability(self)
        if p < MIN_ACCEPTANCE:
            raise ValueError(
                f"a tree with max_depth={self.max_depth}, max_args={self.max_args} has between "
                f"min_length={self.min_length} and max_length={self.max_length} tokens with probability "
                f"{p:.2g}; the window must have probability >= {MIN_ACCEPTANCE:g} "
                "(widen it, or change max_depth / max_args)"
            )


def max_tokens(max_depth: int, max_args: int, cap: int) -> list[int]:
    """[d] = the most tokens a subtree rooted at depth d (1..max_depth) can have, capped at ``cap``."""
    most = [0] * (max_depth + 2)
    most[max_depth] = 1
    for d in range(max_depth - 1, 0, -1):
        most[d] = min(cap, 2 + max_args * most[d + 1])
    return most


@lru_cache(maxsize=32)
def _token_pmf(max_depth: int, max_args: int, n_max: int) -> np.ndarray:
    """P(a tree of the process has n tokens) for n = 0..n_max (unconditioned), float64, read-only.

    Generating functions from the leaves up: G_D(z) = z; G_d(z) = (1-p) z + p z² mean_k G_{d+1}(z)^k,
    each power truncated at degree n_max (FFT products; values are non-negative so noise is clipped).
    """
    size = 1 << int(np.ceil(np.log2(2 * (n_max + 1))))
    pmf = np.zeros(n_max + 1)
    pmf[min(1, n_max)] = 1.0
    for _ in range(max_depth - 1):
        f = np.fft.rfft(pmf, size)
        power, mean_power = pmf, np.zeros(n_max + 1)
        for _k in range(2, max_args + 1):
            power = np.clip(np.fft.irfft(np.fft.rfft(power, size) * f, size)[: n_max + 1], 0.0, None)
            mean_power += power / (max_args - 1)
        pmf = np.zeros(n_max + 1)
        pmf[1] = 1.0 - P_OPERATOR
        pmf[2:] += P_OPERATOR * mean_power[: n_max - 1]  # an operator adds its open and close tokens
    pmf.flags.writeable = False
    return pmf


def token_count_pmf(cfg: ListOpsConfig) -> np.ndarray:
    """P(an unconditioned tree of the process has n tokens), n = 0..max_length."""
    return _token_pmf(cfg.max_depth, cfg.max_args, cfg.max_length)


def acceptance_probability(cfg: ListOpsConfig) -> float:
    """P(min_length <= tokens <= max_length) for one tree of the process."""
    return float(token_count_pmf(cfg)[cfg.min_length : cfg.max_length + 1].sum())


def _accepted_histograms(rng: np.random.Generator, cfg: ListOpsConfig) -> np.ndarray:
    """Level histograms of one accepted tree: [levels, max_args + 1]; column 0 counts leaves,
    column k >= 2 counts operators with k children (column 1 stays 0)."""
    batch = FIRST_BATCH
    while True:
        hist = _first_accepted(rng, cfg, batch)
        if hist is not None:
            return hist
        batch = min(2 * batch, MAX_BATCH)


def _first_accepted(rng: np.random.Generator, cfg: ListOpsConfig, batch: int) -> np.ndarray | None:
    D, A = cfg.max_depth, cfg.max_args
    kids = np.arange(2, A + 1)
    pk = np.full(A - 1, 1.0 / (A - 1))
    most = max_tokens(D, A, cfg.max_length + 1)
    idx = np.arange(batch)  # candidates still growing, ascending
    nodes = np.ones(batch, dtype=np.int64)  # nodes at the current depth
    tokens = np.zeros(batch, dtype=np.int64)  # tokens of all shallower levels and this one
    levels = []  # per depth: (idx, nodes, operator histogram [n, A-1])
    best = batch  # smallest accepted index so far; larger indices cannot win any more
    for d in range(1, D + 1):
        if d == D:
            ops = np.zeros_like(nodes)
        elif d == 1 and cfg.min_length > 1:
            ops = nodes  # accepted trees have an operator root; propose only those
        else:
            ops = rng.binomial(nodes, P_OPERATOR)
        h = rng.multinomial(ops, pk) if d < D else np.zeros((len(idx), A - 1), dtype=np.int64)
        levels.append((idx, nodes, h))
        nxt = h @ kids  # nodes at depth d+1
        tokens = tokens + nodes + ops  # every node opens one token, every operator closes one
        fits = (tokens + nxt <= cfg.max_length) & (tokens + nxt * most[d + 1] >= cfg.min_length)
        done = fits & (nxt == 0)
        if done.any():
            best = min(best, int(idx[done][0]))
        grow = fits & (nxt > 0) & (idx < best)
        if not grow.any():
            break
        idx, nodes, tokens = idx[grow], nxt[grow], tokens[grow]
    if best == batch:
        return None
    rows = []
    for level_idx, level_nodes, h in levels:
        at = np.searchsorted(level_idx, best)
        if at == len(level_idx) or level_idx[at] != best:
            break
        row = np.zeros(A + 1, dtype=np.int64)
        row[2:] = h[at]
        row[0] = level_nodes[at] - h[at].sum()
        rows.append(row)
        if h[at].sum() == 0:
            break
    return np.stack(rows)


def _segment_values(op: np.ndarray, k: np.ndarray, child_values: np.ndarray) -> np.ndarray:
    """Values of operators with codes ``op`` whose k[i] children are consecutive in child_values."""
    starts = np.cumsum(k) - k
    seg = np.repeat(np.arange(len(k)), k)
    low = np.minimum.reduceat(child_values, starts)
    high = np.maximum.reduceat(child_values, starts)
    total = np.add.reduceat(child_values, starts) % 10
    ordered = np.sort(seg * 16 + child_values) & 15  # children sorted within each segment
    med = (ordered[starts + (k - 1) // 2] + ordered[starts + k // 2]) // 2
    return np.choose(op, [low, high, med, total])


def listops_subtrees(rng: np.random.Generator, cfg: ListOpsConfig) -> dict[str, np.ndarray]:
    """One expression tree conditioned on its token count; every ']' tagged with its subtree's value.

    [MAX 2 6 [MED [SM 3 1 6 ] 8 3 ] 4 5 ]  ->  targets at ']' : 0, 3, 6;  node_height 1, 2, 3;
    node_op 3, 2, 1.  Returns inputs uint8 [n], targets / node_height / node_op int8 [n]
    (-100 / -1 / -1 away from ']').
    """
    hist = _accepted_histograms(rng, cfg)
    # Arrangement: given a level's histogram, its order is a uniform permutation. k = 0 marks a leaf.
    kids = [rng.permutation(np.repeat(np.arange(cfg.max_args + 1), row)) for row in hist]
    is_op = [k > 0 for k in kids]
    n_ops = [int(m.sum()) for m in is_op]
    op_all = rng.integers(0, 4, size=sum(n_ops))
    digit_all = rng.integers(0, 10, size=sum(len(k) for k in kids) - sum(n_ops))
    op_at = np.split(op_all, np.cumsum(n_ops)[:-1])  # operator codes per level, breadth-first
    digit_at = np.split(digit_all, np.cumsum([len(k) - o for k, o in zip(kids, n_ops)])[:-1])

    # Bottom-up: value, height, token count of every node, level by level.
    value, height, size = [None] * len(kids), [None] * len(kids), [None] * len(kids)
    for d in range(len(kids) - 1, -1, -1):
        k, m = kids[d], is_op[d]
        value[d] = np.empty(len(k), dtype=np.int64)
        height[d] = np.zeros(len(k), dtype=np.int64)
        size[d] = np.ones(len(k), dtype=np.int64)
        value[d][~m] = digit_at[d]
        if n_ops[d]:
            starts = np.cumsum(k[m]) - k[m]
            value[d][m] = _segment_values(op_at[d], k[m], value[d + 1])
            height[d][m] = np.maximum.reduceat(height[d + 1], starts) + 1
            size[d][m] = np.add.reduceat(size[d + 1], starts) + 2

    # Top-down: position of every node's first token; children follow their parent's open token.
    first = [np.zeros(1, dtype=np.int64)]
    for d in range(len(kids) - 1):
        k, m = kids[d][is_op[d]], is_op[d]
        before = np.cumsum(size[d + 1]) - size[d + 1]  # tokens of earlier nodes on the next level
        first.append(before + np.repeat(first[d][m] + 1 - before[np.cumsum(k) - k], k))

    n = int(size[0][0])
    inputs = np.empty(n, dtype=np.uint8)
    targets = np.full(n, IGNORE, dtype=np.int8)
    node_height = np.full(n, -1, dtype=np.int8)
    node_op = np.full(n, -1, dtype=np.int8)
    for d in range(len(kids)):
        m = is_op[d]
        inputs[first[d][~m]] = DIGIT0 + digit_at[d]
        inputs[first[d][m]] = OPEN0 + op_at[d]
        close = first[d][m] + size[d][m] - 1
        inputs[close] = CLOSE
        targets[close] = value[d][m]
        node_height[close] = height[d][m]
        node_op[close] = op_at[d]
    return {"inputs": inputs, "targets": targets, "node_height": node_height, "node_op": node_op}


# ---------------------------------------------------------------------------------------------
# Text view for `lrbench show`.


def _parse(tokens: np.ndarray) -> tuple[list, int]:
    """Token ids -> nested nodes: a leaf is its token id; an operator is [open_id, children, close_pos]."""
    root: list = [None, [], -1]
    stack = [root]
    for pos, t in enumerate(tokens.tolist()):
        if OPEN0 <= t < CLOSE:
            node = [t, [], -1]
            stack[-1][1].append(node)
            stack.append(node)
        elif t == CLOSE:
            if len(stack) == 1:
                raise ValueError(f"unbalanced ']' at token {pos}")
            stack.pop()[2] = pos
        elif DIGIT0 <= t < OPEN0:
            stack[-1][1].append(t)
        else:
            raise ValueError(f"token id {t} at {pos} is not in the ListOps vocabulary (0..15)")
    if len(stack) != 1 or len(root[1]) != 1:
        raise ValueError("the tokens do not form one complete expression")
    return root[1][0], len(tokens)


def _render(node, targets: np.ndarray, depth: int) -> str:
    if not isinstance(node, list):
        return TOKEN_NAMES[node]
    op, children, close = node
    value = int(targets[close])
    if depth <= 0:
        return f"{TOKEN_NAMES[op]} …]={value}"
    inner = " ".join(_render(c, targets, depth - 1) for c in children)
    return f"{TOKEN_NAMES[op]} {inner} ]={value}"


def describe(sample: dict[str, np.ndarray], cfg: ListOpsConfig | None = None, width: int = 1200) -> str:
    """A readable view of one sample: summary, the top of the expression with every shown
    sub-expression's value (deeper ones elided as ``[MAX …]=7``), one innermost sub-expression in
    full, and counts of sub-expressions by height and operator."""
    tokens = np.asarray(sample["inputs"]).astype(np.int64)
    nonpad = np.flatnonzero(tokens != PAD)
    tokens = tokens[: nonpad[-1] + 1] if len(nonpad) else tokens[:0]
    n = len(tokens)
    targets = np.asarray(sample["targets"])[:n]
    heights = np.asarray(sample["node_height"])[:n] if "node_height" in sample else None
    node_op = np.asarray(sample["node_op"])[:n] if "node_op" in sample else None
    if n == 0:
        return "empty ListOps sample"
    root, _ = _parse(tokens)
    closes = np.flatnonzero(tokens == CLOSE)
    lines = [f"ListOps-Subtrees sample: {n:,} tokens, {len(closes):,} sub-expressions"]
    if cfg is not None:
        lines[0] += f" (window {cfg.min_length}..{cfg.max_length}, max_depth {cfg.max_depth})"
    if not isinstance(root, list):
        lines.append(f"a single digit: {TOKEN_NAMES[root]}")
        return "\n".join(lines)
    root_height = f", height {int(heights[root[2]])}" if heights is not None else ""
    lines.append(f"value of the whole expression: {int(targets[root[2]])}{root_height}")
    depth, shown = 1, _render(root, targets, 0)
    while True:  # the deepest view that fits in `width` characters
        more = _render(root, targets, depth)
        if len(more) > width or more == shown:
            break
        depth, shown = depth + 1, more
    lines.append(f"top {depth} level{'s' if depth > 1 else ''} ('…' = elided sub-expression, =v its value):")
    lines += _wrap(shown, 100)
    first = int(closes[0])  # the first ']' closes an innermost operator (all its children are leaves)
    start = int(np.flatnonzero((tokens[:first] >= OPEN0) & (tokens[:first] < CLOSE))[-1])
    inner = " ".join(TOKEN_NAMES[t] for t in tokens[start : first + 1])
    lines.append(f"first sub-expression to close, tokens {start}..{first}: {inner} = {int(targets[first])}")
    if heights is not None:
        h, c = np.unique(heights[closes], return_counts=True)
        lines.append("sub-expressions by height: " + ", ".join(f"{a}: {b}" for a, b in zip(h, c)))
    if node_op is not None:
        counts = np.bincount(node_op[closes], minlength=4)
        lines.append("by operator: " + ", ".join(f"{OPS[i]} {counts[i]}" for i in range(4)))
    labels = np.bincount(targets[closes], minlength=10)
    lines.append("values at ']': " + ", ".join(f"{v}: {labels[v]}" for v in range(10)))
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append("  " + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + (["  " + line] if line else [])
