"""The DLR paper's published numbers (Gupta, Mehta & Berant 2022, Tables 1-3), as data.

Every value is a fraction in [0, 1] (Table 3 prints percentages; they are divided by 100 here),
so that it sits next to lrbench's metrics unchanged. A missing entry means the paper has no
number for that cell; `table1`, `table2` and `table3` look one up.
"""

from __future__ import annotations

ATOMIC = ("shift", "cumsum", "cummax", "select-fixed", "solve-fixed", "reverse", "solve", "select",
          "sort", "context-shift", "mips")

# Table 1 (top): average validation R² across batches. Columns are (model, layers, L);
# hyperparameters in Table 4. Row order of the paper: Shift, CumSum, CumMax, SelectFixed,
# SolveFixed, Reverse, Solve, Select, Sort, ContextShift, MIPS.
_TABLE1_ROWS = {
    #                  DLR  DSS  ATT  DLR6 DLR6  ATT2
    #                  4096 4096 4096 4096  512   512
    "shift":          (1.0, .99, .72, 1.0, 1.0, 1.0),
    "cumsum":         (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "cummax":         (.52, .51, 1.0, 1.0, 1.0, 1.0),
    "select-fixed":   (.97, 0.0, .72, 1.0, 1.0, .94),
    "solve-fixed":    (1.0, .01, 0.0, 1.0, 1.0, .95),
    "reverse":        (.01, 0.0, .03, .99, .95, .28),
    "solve":          (0.0, 0.0, 0.0, 0.0, .95, 0.0),
    "select":         (0.0, 0.0, .17, 0.0, .86, .97),
    "sort":           (0.0, 0.0, 0.0, .49, .50, .51),
    "context-shift":  (0.0, 0.0, 0.0, .02, .11, .04),
    "mips":           (0.0, 0.0, .90, 0.0, .01, .97),
}
TABLE1_COLUMNS = ("dlr-1-4096", "dss-1-4096", "attention-1-4096", "dlr-6-4096", "dlr-6-512",
                  "attention-2-512")
TABLE1 = {col: {task: row[i] for task, row in _TABLE1_ROWS.items()} for i, col in enumerate(TABLE1_COLUMNS)}

# Table 2: average validation R² of a single layer on Shift (its only task) at input length L (H = 32, batch 4,
# N = 4096 unless noted). SGConv, "DLR, N = 512" and DLR-ℝ (one value, at L = 2^8) are not
# lrbench baselines and are kept for reference only.
TABLE2_TASK = "shift"
TABLE2 = {
    "dss": {2**14: .71, 2**16: .34, 2**18: .22, 2**20: .22},
    "dlr": {2**14: .83, 2**16: .39, 2**18: .25, 2**20: .22},
    "sgconv": {2**14: .88, 2**16: .45, 2**18: .27, 2**20: .22},
    "dlr-prod": {2**14: 1.0, 2**16: 1.0, 2**18: .98, 2**20: .78},
    "dlr-n512": {2**14: .30, 2**16: .22, 2**18: .22, 2**20: .22},
    "dlr-real": {2**8: .23},
}

# Table 3: test token accuracy on ListOps-Subtrees; test macro-F1 / macro accuracy on
# Pathfinder-Segmentation at M = 128, 256, 512. "×" (infeasible) cells are absent.
TABLE3 = {
    "listops-subtrees": {
        "local-attention": {"token_accuracy": .940},
        "dss": {"token_accuracy": .838},
        "dlr": {"token_accuracy": .857},
    },
    "pathfinder-seg-128": {
        "local-attention": {"macro_f1": .834, "macro_accuracy": .901},
        "dss": {"macro_f1": .944, "macro_accuracy": .972},
        "dlr": {"macro_f1": .968, "macro_accuracy": .977},
    },
    "pathfinder-seg-256": {
        "dss": {"macro_f1": .894, "macro_accuracy": .962},
        "dlr": {"macro_f1": .940, "macro_accuracy": .963},
    },
    "pathfinder-seg-512": {
        "dss": {"macro_f1": .604, "macro_accuracy": .793},
        "dlr": {"macro_f1": .763, "macro_accuracy": .928},
    },
}


def table1(column: str, task: str) -> float | None:
    return TABLE1.get(column, {}).get(task)


def table2(model: str, length: int) -> float | None:
    return TABLE2.get(model, {}).get(length)


def table3(cell: str, model: str, metric: str) -> float | None:
    return TABLE3.get(cell, {}).get(model, {}).get(metric)


# Long Range Arena (beyond the DLR paper): published test accuracies on LRA's ListOps, Pathfinder
# (32 x 32, hard) and Path-X (128 x 128), keyed by task label (the dataset directory name) and by
# the lrbench baseline of the same family. "transformer": LRA's Transformer (Tay et al. 2021, its
# README's leaderboard; it fails Path-X, so no entry); "s4": S4 (Gu et al. 2022, the updated table of
# the ICLR paper / HTTYH; the setting lrbench's `lra` preset transcribes); "s5": S5 (Smith et al.
# 2023, Table 1); "lru": LRU (Orvieto et al. 2023, Table 3); "dss": DSS (Gupta et al. 2022, its
# repository's README: the softmax variant, not lrbench's DSS_EXP).
LRA = {
    "listops": {"transformer": .3637, "s4": .5960, "s5": .6215, "lru": .602, "dss": .606},
    "pathfinder-32": {"transformer": .714, "s4": .942, "s5": .9533, "lru": .951, "dss": .846},
    "pathfinder-128": {"s4": .9635, "s5": .9858, "lru": .942, "dss": .878},
}
LRA_SOURCES = {
    "transformer": "LRA's Transformer (Tay et al. 2021)", "s4": "S4 (Gu et al. 2022, updated LRA table)",
    "s5": "S5 (Smith et al. 2023, Table 1)", "lru": "LRU (Orvieto et al. 2023, Table 3)",
    "dss": "DSS-softmax (Gupta et al. 2022, its README)",
}
LRA_FAMILY = {"attention": "transformer", "lru": "lru", "s5": "s5", "dss": "dss"}  # lrbench model -> LRA row


LRA_SHORT = {"transformer": "Transformer", "s4": "S4", "s5": "S5", "lru": "LRU", "dss": "DSS-softmax"}


def lra(label: str, model: str) -> tuple[float | None, str | None]:
    """The published accuracy of `model`'s family on an LRA task, else S4's as the reference; the
    source names every published accuracy on the task, so results.md shows them all."""
    row = LRA.get(label, {})
    family = LRA_FAMILY.get(model)
    if family not in row:
        family = "s4" if "s4" in row else None
    if family is None:
        return None, None
    source = LRA_SOURCES[family] + ("" if family == LRA_FAMILY.get(model) else ", reference")
    published = ", ".join(f"{LRA_SHORT[f]} {v:.3f}" for f, v in row.items())
    return row[family], f"{source}; published on {label}: {published}"
