"""What a command loads at start-up: only what it uses (checked in fresh interpreters).

``--help`` and ``check`` need neither the REPL's prompt_toolkit, nor the HTTP client,
nor the libvirt binding; ``list`` and ``status`` need neither those (libvirt only to
ask about a VC that holds leases) nor the recipe parser or the run machinery; the
recipe parser's tables come from the user's cache after the first process built them.
``bench/bench_all.py`` prints the seconds this saves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pragmash

ROOT = Path(pragmash.__file__).resolve().parent.parent
HEAVY = ("prompt_toolkit", "http.client", "libvirtmod")

PROBE = f"""
import io, json, sys
from pragmash.ui.cli.main import main
code = main(sys.argv[1:], out=io.StringIO(), err=io.StringIO())
print(json.dumps({{"code": code, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


#: What ``list`` and ``status`` must not load: they read the site, the ledger and the
#: engine, and start no run (ui.cli.table imports each command's module only when it runs).
NOT_FOR_LISTING = (
    "prompt_toolkit",
    "http.client",
    "lark",
    "yaml",
    "pragmash.language.ast",
    "pragmash.engine.run.session",
    "pragmash.engine.run.opening",
    "pragmash.language.parser",
    "pragmash.images.provision",
    "pragmash.ui.repl.debugger",
)


def _loaded(tmp_path: Path, *args: str, watched: tuple[str, ...] = HEAVY) -> dict[str, object]:
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PRAGMASH_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("PRAGMASH_SITE", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace(f"{HEAVY!r}", repr(watched)), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_help_and_check_load_no_heavy_module(tmp_path: Path) -> None:
    assert _loaded(tmp_path, "--help") == {"code": 0, "loaded": []}
    recipe = str(ROOT / "recipes" / "rocks6.prg")
    assert _loaded(tmp_path, "check", recipe, watched=(*HEAVY, "yaml")) == {
        "code": 0,
        "loaded": [],
    }


def test_parser_tables_are_built_once_and_a_bad_cache_is_rebuilt(tmp_path: Path) -> None:
    recipe = str(ROOT / "recipes" / "rocks6.prg")
    assert _loaded(tmp_path, "check", recipe)["code"] == 0
    [saved] = (tmp_path / "cache" / "pragmash").glob("grammar-*.lark")
    made = saved.stat().st_mtime_ns
    assert _loaded(tmp_path, "check", recipe)["code"] == 0
    assert saved.stat().st_mtime_ns == made  # read, not built again
    saved.write_bytes(b"not a saved parser")
    assert _loaded(tmp_path, "check", recipe)["code"] == 0  # built again, and saved again
    assert saved.read_bytes() != b"not a saved parser"


def test_help_loads_neither_the_engine_nor_the_language(tmp_path: Path) -> None:
    """A recipe's run is imported only when a recipe runs (ui.cli.table's RUN), the step
    table's language only with a run, the version report (platform) only for
    ``--version``, difflib only for a mistyped command."""
    probe = PROBE.replace(
        f"{HEAVY!r}",
        repr(
            (
                "lark",
                "pragmash.engine.run.session",
                "pragmash.language.parser",
                "pragmash.language.ast",
                "platform",
                "difflib",
            )
        ),
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", probe, "--help"], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {"code": 0, "loaded": []}


def test_list_and_status_load_no_run_machinery(tmp_path: Path) -> None:
    """``list`` with nothing allocated needs no engine either; ``status`` of a VC asks
    libvirt (the demo site's test:///default) and nothing of a run."""
    assert _loaded(tmp_path, "list", watched=(*NOT_FOR_LISTING, "libvirtmod")) == {
        "code": 0,
        "loaded": [],
    }
    recipe = str(ROOT / "recipes" / "rocks6.prg")
    assert _loaded(tmp_path, recipe, "--vcname", "calit2")["code"] == 0  # a VC in the ledger
    for args in (["list"], ["status", "calit2"]):
        assert _loaded(tmp_path, *args, watched=NOT_FOR_LISTING) == {"code": 0, "loaded": []}
