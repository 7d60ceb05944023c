"""Lazily loaded modules (pragmash.drivers.lazy_import) under several threads at once."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pragmash.drivers.lazy_import import lazy_module, loaded


def test_threads_that_first_touch_a_lazy_module_all_see_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a module whose code takes a while, as libvirt's C binding does: without the lock a
    # second thread reads a half-made module (AttributeError on the last name it defines)
    (tmp_path / "pragmash_slowmod.py").write_text("import time\ntime.sleep(0.3)\nLAST = 'whole'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pragmash_slowmod", raising=False)
    module = lazy_module("pragmash_slowmod")
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            seen = list(pool.map(lambda _: loaded(module).LAST, range(4)))
    finally:
        sys.modules.pop("pragmash_slowmod", None)
    assert seen == ["whole"] * 4


def test_a_missing_module_is_named() -> None:
    with pytest.raises(ModuleNotFoundError, match="pragmash_no_such_module"):
        lazy_module("pragmash_no_such_module")
