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

How we sample it exactly, fast. Grow the tree level by level (breadth first). The c nodes of a
level draw i.i.d. (leaf, or operator with k children), so the draws split into (1) their counts:
o ~ Binomial(c, 1/4) operators with i.i.d. uniform{2..max_args} children counts, and (2) their
arrangement, which given the counts is a uniformly random permutation of the level. The token count
(hence acceptance) and the next level's size depend on the counts alone. So: (a) grow a batch of
candidate trees at once as counts only (one binomial and one draw of children counts per level for
the whole batch), drop a candidate as soon as it must end outside the window (too many tokens
already, or too few even if every open node grew to its maximum), and keep the accepted candidate
with the smallest index (an empty batch is followed by one twice as large); (b) shuffle each level
of that one tree into place, draw its operators and digits, evaluate bottom-up with sorted segment
reductions and lay out the tokens top-down. When min_length > 1 every accepted tree has an operator
root, so candidates are proposed with one (conditioning the proposal on an event that contains the
acceptance event leaves the conditional law unchanged). Operators and digits are i.i.d. and
independent of the shape, so drawing them after acceptance is exact too. tests/test_listops.py
compares the result with a literal recursive rejection sampler.
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
POOL = 8192  # children counts drawn at a time while growing candidates

TOKEN_NAMES = ("<pad>",) + tuple(str(v) for v in range(10)) + tuple("[" + op for op in OPS) + ("]",)
TOKEN_KINDS = ("pad",) + ("digit",) * 10 + ("operator",) * len(OPS) + ("close",)  # colours in `show -o`


def _check_int(name: str, value, lo: int, hi: int) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {value!r})")


@dataclass(frozen=True)
class ListOpsConfig:
    """Defaults: the DLR paper's settings. Its generator keeps trees with 7000 < tokens < 8180
    (strict), so the inclusive window here is 7001..8179."""

    max_depth: int = 15
    max_args: int = 9
    min_length: int = 7001
    max_length: int = 8179

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


@dataclass(frozen=True)
class LRAListOpsConfig(ListOpsConfig):
    """Long Range Arena's ListOps: the same tree process with LRA's settings (its data script keeps
    trees with 500 < tokens < 2000, strict, so the inclusive window here is 501..1999)."""

    max_depth: int = 10
    max_args: int = 10
    min_length: int = 501
    max_length: int = 1999


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


def _accepted_levels(rng: np.random.Generator, cfg: ListOpsConfig) -> list[tuple[int, np.ndarray]]:
    """The levels of one accepted tree, root first: (number of nodes, children counts of its
    operators in draw order)."""
    batch = FIRST_BATCH
    while True:
        levels = _first_accepted(rng, cfg, batch)
        if levels is not None:
            return levels
        batch = min(2 * batch, MAX_BATCH)


def _first_accepted(rng: np.random.Generator, cfg: ListOpsConfig, batch: int) -> list | None:
    """Grow ``batch`` candidate trees level by level as counts only; return the levels of the
    accepted candidate with the smallest index, or None when none is accepted."""
    D, A, lo, hi = cfg.max_depth, cfg.max_args, cfg.min_length, cfg.max_length
    most = max_tokens(D, A, hi + 1)
    idx = np.arange(batch)  # candidates still growing, ascending
    nodes = np.ones(batch, dtype=np.int64)  # their nodes at the current depth
    tokens = np.zeros(batch, dtype=np.int64)  # their tokens on all levels so far
    pool, used = np.empty(0, dtype=np.int64), 0  # i.i.d. children counts, handed out in order
    levels = []  # per depth: idx, nodes, and each candidate's slice [start, end) of kids
    best = batch  # smallest accepted index so far; larger indices cannot win any more
    for d in range(1, D + 1):
        if d == D:
            ops = np.zeros_like(nodes)
        elif d == 1 and lo > 1:
            ops = nodes  # accepted trees have an operator root; propose only those
        else:
            ops = rng.binomial(nodes, P_OPERATOR)
        ends = ops.cumsum()
        n = int(ends[-1])
        if used + n > len(pool):
            pool, used = np.concatenate([pool[used:], rng.integers(2, A + 1, size=max(POOL, n))]), 0
        kids = pool[used : used + n]  # children of this level's operators, candidate after candidate
        used += n
        csum = np.zeros(n + 1, dtype=np.int64)
        kids.cumsum(out=csum[1:])
        starts = ends - ops
        nxt = csum[ends]
        nxt -= csum[starts]  # nodes at depth d+1
        levels.append((idx, nodes, starts, ends, kids))
        tokens += nodes  # every node opens one token,
        tokens += ops  # every operator closes one
        ok = tokens + nxt <= hi
        if most[d + 1] < lo:  # deep levels: drop candidates that cannot reach min_length any more
            ok &= tokens + nxt * most[d + 1] >= lo
        leaf = nxt == 0
        done = ok & leaf
        if done.any():
            done &= tokens >= lo
            if done.any():
                best = min(best, int(idx[done.argmax()]))
                ok &= idx < best
        grow = (ok > leaf).nonzero()[0]  # fits and has another level
        if len(grow) == 0:
            break
        idx, nodes, tokens = idx[grow], nxt[grow], tokens[grow]
    if best == batch:
        return None
    out = []
    for level_idx, level_nodes, starts, ends, kids in levels:
        at = level_idx.searchsorted(best)
        if at == len(level_idx) or level_idx[at] != best:
            break
        out.append((int(level_nodes[at]), kids[starts[at] : ends[at]]))
        if starts[at] == ends[at]:
            break
    return out


def listops_subtrees(rng: np.random.Generator, cfg: ListOpsConfig) -> dict[str, np.ndarray]:
    """One expression tree conditioned on its token count; every ']' tagged with its subtree's value.

    [MAX 2 6 [MED [SM 3 1 6 ] 8 3 ] 4 5 ]  ->  targets at ']' : 0, 3, 6;  node_height 1, 2, 3;
    node_op 3, 2, 1.  Returns inputs uint8 [n], targets / node_height / node_op int8 [n]
    (-100 / -1 / -1 away from ']').
    """
    levels = _accepted_levels(rng, cfg)
    bounds = np.cumsum([0] + [m for m, _ in levels]).tolist()  # level d is nodes bounds[d]:bounds[d+1]
    M = bounds[-1]  # nodes, breadth first
    k = np.zeros(M, dtype=np.int64)  # children per node, 0 for a leaf
    for d, (m, kids) in enumerate(levels):
        level = k[bounds[d] : bounds[d + 1]]
        level[m - len(kids) :] = kids
        rng.shuffle(level)  # given the level's draws, their order is a uniform permutation
    ops_idx = k.nonzero()[0]  # (n_ops,) operators, breadth first
    K = k[ops_idx]
    op = rng.integers(0, 4, size=len(ops_idx))
    is_leaf = k == 0
    digits = rng.integers(0, 10, size=M - len(ops_idx))
    first_child = k.cumsum()[ops_idx] - K + 1  # children of an operator are consecutive
    parent16 = np.zeros(M, dtype=np.int64)
    parent16[1:] = (ops_idx * 16).repeat(K)  # sort key: parent, then value (0..9)
    op_lo = ops_idx.searchsorted(bounds).tolist()  # operators of level d: op_lo[d]:op_lo[d+1]
    # With its children sorted by value, MIN takes the first, MAX the last, MED the middle one(s).
    pick = np.where(op == 1, K - 1, np.where(op == 2, (K - 1) // 2, 0))
    pick1 = first_child + pick
    pick2 = first_child + np.where(op == 2, K // 2, pick)
    is_sm = op == 3

    # Bottom-up, one level at a time: value, token count and height of every operator.
    vs = np.ones((M, 2), dtype=np.int64)
    value, size = vs[:, 0], vs[:, 1]
    value[is_leaf] = digits
    height = np.zeros(M, dtype=np.int64)
    ordered = np.empty(M, dtype=np.int64)
    for d in range(len(levels) - 2, -1, -1):
        o = slice(op_lo[d], op_lo[d + 1])
        b, c = bounds[d + 1], bounds[d + 2]  # the children of level d are level d+1
        s = ordered[b:c]
        np.add(parent16[b:c], value[b:c], out=s)
        s.sort()
        s &= 15  # children's values, sorted within each parent
        v = ordered[pick1[o]]
        v += ordered[pick2[o]]
        v >>= 1  # MED of an even count: floor of the mean of the middle two
        sums = np.add.reduceat(vs[:c], first_child[o], axis=0)  # (ops, 2): sum of values, of sizes
        at = ops_idx[o]
        value[at] = np.where(is_sm[o], sums[:, 0] % 10, v)
        size[at] = sums[:, 1] + 2
        height[at] = np.maximum.reduceat(height[:c], first_child[o]) + 1

    # Top-down: each node's first token. A child starts 1 + (tokens of its earlier siblings) after
    # its parent's open token.
    before = size.cumsum()
    before -= size  # tokens of the nodes before it in breadth-first order
    offset = before[1:] - (before[first_child] - 1).repeat(K)
    first = np.zeros(M, dtype=np.int64)
    for d in range(len(levels) - 1):
        o = slice(op_lo[d], op_lo[d + 1])
        b, c = bounds[d + 1], bounds[d + 2]
        first[b:c] = first[ops_idx[o]].repeat(K[o]) + offset[b - 1 : c - 1]

    n = int(size[0])
    inputs = np.empty(n, dtype=np.uint8)
    inputs[first[is_leaf]] = DIGIT0 + digits
    open_at = first[ops_idx]
    inputs[open_at] = OPEN0 + op
    close = open_at + size[ops_idx] - 1
    inputs[close] = CLOSE
    targets = np.full(n, IGNORE, dtype=np.int8)
    targets[close] = value[ops_idx]
    node_height = np.full(n, -1, dtype=np.int8)
    node_height[close] = height[ops_idx]
    node_op = np.full(n, -1, dtype=np.int8)
    node_op[close] = op
    return {"inputs": inputs, "targets": targets, "node_height": node_height, "node_op": node_op}


# ---------------------------------------------------------------------------------------------
# Text view for `lrbench show`.


def listops(rng: np.random.Generator, cfg: LRAListOpsConfig) -> dict[str, np.ndarray]:
    """LRA's ListOps: one expression tree conditioned on its token count, and the value of the whole
    expression (the value at its last ']').

    [MAX 2 9 [MIN 4 7 ] 0 ]  ->  targets 9.  Returns inputs uint8 [n] (the vocabulary of
    listops_subtrees), targets uint8 [] in 0..9.
    """
    s = listops_subtrees(rng, cfg)
    return {"inputs": s["inputs"], "targets": np.array(s["targets"][-1], dtype=np.uint8)}


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


def subexpression_values(tokens: np.ndarray) -> np.ndarray:
    """The value of the sub-expression closed at every ']' of a token sequence (-100 elsewhere),
    computed from the tokens alone: what ``listops_subtrees`` stores as targets.

    >>> t = np.array([12, 3, 7, 14, 4, 2, 15, 1, 15])  # [MAX 2 6 [SM 3 1 ] 0 ]
    >>> subexpression_values(t).tolist()
    [-100, -100, -100, -100, -100, -100, 4, -100, 6]
    """
    tokens = np.asarray(tokens).astype(np.int64)
    out = np.full(len(tokens), IGNORE, dtype=np.int64)

    def value(node) -> int:
        if not isinstance(node, list):
            return node - DIGIT0
        op, children, close = node
        vals = sorted(value(c) for c in children)
        k = len(vals)
        v = {"MIN": vals[0], "MAX": vals[-1], "SM": sum(vals) % 10,
             "MED": vals[k // 2] if k % 2 else (vals[k // 2 - 1] + vals[k // 2]) // 2}[OPS[op - OPEN0]]
        out[close] = v
        return v

    value(_parse(tokens)[0])
    return out


def describe_lra(sample: dict[str, np.ndarray], cfg: LRAListOpsConfig | None = None, width: int = 800) -> str:
    """The text view of an LRA ListOps sample: as ``describe``, with every shown sub-expression's
    value computed from the tokens (the sample stores only the whole expression's)."""
    tokens = np.asarray(sample["inputs"])
    tokens = tokens[tokens != PAD]
    text = describe({"inputs": tokens, "targets": subexpression_values(tokens)}, cfg, width,
                    title="ListOps (LRA) sample")
    return text + f"\ntarget (value of the whole expression): {int(sample['targets'])}"


def describe(sample: dict[str, np.ndarray], cfg: ListOpsConfig | None = None, width: int = 800,
             title: str = "ListOps-Subtrees sample") -> str:
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
    lines = [f"{title}: {n:,} tokens, {len(closes):,} sub-expressions"]
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
