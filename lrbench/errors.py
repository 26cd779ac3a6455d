"""The one error type of lrbench: a one-line message and the exit code the CLI ends with.

    raise LrbenchError("--seed must be a non-negative integer (got -1)")          # bad input: 2
    raise LrbenchError(f"{path} is being written by another process", RUNTIME)   # at run time: 1

Every module raises it (generate, manifest and dataset readers, scoring, presets, evaluate, the
CLI); the CLI prints ``lrbench: error: <message>`` on one line and exits with ``code``. It is a
``ValueError``, as the library's bad-input errors always were, so ``except ValueError`` still
catches a malformed manifest or predictions that do not fit.

A reader's refusal (a manifest or shard that cannot be trusted) is raised with code 2 like any bad
input; ``lrbench verify`` reports such problems itself and exits with VERIFY.
"""

from __future__ import annotations

RUNTIME, USAGE, VERIFY = 1, 2, 3  # exit codes: runtime failure, bad usage or input, verification failure


class LrbenchError(ValueError):
    """A failure that is said in one line; ``code`` is the exit code (USAGE unless given)."""

    def __init__(self, message: str, code: int = USAGE):
        super().__init__(message)
        self.code = code
