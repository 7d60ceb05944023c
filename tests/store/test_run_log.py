"""Every run writes a log beside its journal; status and history name it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from pragmash.errors import EXIT_OK
from pragmash.ui.cli.main import main

ROOT = Path(__file__).parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def test_a_demo_run_logs_its_steps_libvirt_calls_and_transactions(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text((ROOT / "pragmash" / "demo" / "site.toml").read_text())
    key = tmp_path / "id.pub"
    key.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2uJgCqK6Ckq5a8Y0Xy3q0v3l3hQ8v8t0m9W1m0kYb me@host\n"
    )
    assert run("--site", str(site), ROCKS6, "--vcname", "calit2", "--key", str(key))[0] == EXIT_OK
    log = Path(os.environ["PRAGMASH_STATE_DIR"]) / "logs" / "calit2-run-1.log"
    text = log.read_text()
    assert "pragmash.journal: run 1 of calit2 started" in text
    assert "rocks6.prg:14: allocate $num_compute" in text
    assert "pragmash.libvirt: define and start calit2-frontend on test:///default" in text
    assert "pragmash.ledger: BEGIN IMMEDIATE … COMMIT in" in text
    assert "run 1 ended: finished" in text
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIGq2" not in text  # no key reaches a log
    _, out, _ = run("--site", str(site), "status", "calit2")
    assert f"log: {log}" in out
    _, out, _ = run("--site", str(site), "history", "calit2", "--json")
    assert json.loads(out)[0]["log"] == str(log)
    assert run("--site", str(site), "clean", "calit2", "--yes")[0] == EXIT_OK


def test_verbose_shows_info_on_stderr(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text((ROOT / "pragmash" / "demo" / "site.toml").read_text())
    _, _, err = run("-v", "--site", str(site), ROCKS6, "--vcname", "calit2")
    assert "INFO pragmash.libvirt: define and start calit2-frontend" in err
    _, _, quiet = run("clean", "calit2", "--site", str(site), "--yes")
    assert "INFO" not in quiet
