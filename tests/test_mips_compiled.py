"""The compiled MIPS module (generators/_mips.c) itself: built where CI says it must be, the same
sample bytes as the numpy path, and checked buffers. Its search is tested against brute force, with
and without the module, in test_mips_search.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lrbench
from lrbench.generators import atomic

COMPILED = atomic._mips_c  # None when the extension was not built


@pytest.mark.skipif(os.environ.get("LRBENCH_REQUIRE_EXT") != "1", reason="set LRBENCH_REQUIRE_EXT=1 (CI does)")
def test_compiled_module_is_built():
    assert COMPILED is not None, "pip install -e . did not build lrbench.generators._mips"


@pytest.mark.skipif(COMPILED is None, reason="generators/_mips.c is not built")
@pytest.mark.parametrize("simd", [True, False], ids=["avx2", "portable"])
@pytest.mark.parametrize("L", [16, 17, 100, 1000, 4096])
def test_compiled_sample_equals_numpy_sample(L, simd, monkeypatch):
    task = lrbench.get_task("mips", length=L)
    try:
        COMPILED.simd(simd)
        for index in range(3):
            monkeypatch.setattr(atomic, "_mips_c", COMPILED)
            fast = task.sample(index, split="val", seed=1)
            monkeypatch.setattr(atomic, "_mips_c", None)
            slow = task.sample(index, split="val", seed=1)
            for name in ("inputs", "targets"):
                assert fast[name].dtype == slow[name].dtype and fast[name].shape == slow[name].shape
                assert fast[name].tobytes() == slow[name].tobytes()
    finally:
        COMPILED.simd(True)


@pytest.mark.skipif(COMPILED is None, reason="generators/_mips.c is not built")
def test_simd_switch_reports_what_is_in_use():
    try:
        assert COMPILED.simd(False) is False
        on = COMPILED.simd(True)
        flags = open("/proc/cpuinfo").read().split() if os.path.exists("/proc/cpuinfo") else None
        if flags is not None and os.uname().machine == "x86_64":
            assert on == ("avx2" in flags and "fma" in flags)
    finally:
        COMPILED.simd(True)


@pytest.mark.skipif(COMPILED is None, reason="generators/_mips.c is not built")
def test_compiled_module_checks_buffer_sizes():
    q = np.zeros((10, 4))
    with pytest.raises(ValueError, match="out has 72 bytes, expected 80"):
        COMPILED.search(q, q, np.zeros(9, dtype=np.int64), 10)
    with pytest.raises(ValueError, match="k has"):
        COMPILED.search(q, np.zeros((9, 4)), np.zeros(10, dtype=np.int64), 10)
    with pytest.raises(ValueError, match="read-only"):
        out = np.zeros(10, dtype=np.int64)
        out.flags.writeable = False
        COMPILED.search(q, q, out, 10)
