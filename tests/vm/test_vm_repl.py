"""Tier 3: the 3 a.m. scene on real QEMU — a compute hangs, the REPL fixes it, the run ends.

The compute template in the repository boots with ``root=/dev/sda1`` (written for an
IDE disk; the disk is virtio, so it is ``vda``): the guest's initramfs waits for a
root device that never appears and drops to its rescue shell, so the compute never
prints PRAGMASH-UP and the recipe's ``wait compute up`` times out. The frontend boots
fine. The administrator then attaches the REPL to that run, reads the node's state
and console, fixes the template on disk, ``reload``s it, destroys and boots the
compute again, ``retry``s the failed wait and lets the run finish — on the same
run, the same leases and the same staged disk, with the frontend never restarted.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from support.vmimage import MARKER_SELF, build_test_image
from support.vmsite import (
    GOOD_CMDLINE,
    console_lines,
    remove_vmtest_domains,
    write_repository,
    write_site,
)

from pragmash.store.allocation import current_allocation
from pragmash.store.journal import last_run
from pragmash.store.ledger import Ledger
from pragmash.ui.cli.main import main
from pragmash.ui.repl.debugger import Repl
from pragmash.ui.repl.launch import open_run
from pragmash.vc.config.site import load_site

pytestmark = pytest.mark.vm

BROKEN_CMDLINE = GOOD_CMDLINE.replace("root=/dev/vda1", "root=/dev/sda1")

# all nodes boot at once to keep the test short; the initramfs gives up on a
# missing root device after 30 s, so the compute's wait outlasts that comfortably
RECIPE = """\
allocate 1
fix all via none
boot all
wait frontend up timeout 5m
wait compute up timeout 75s
echo "$vcname is up"
"""


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


def test_attach_fix_reload_retry_finish_on_qemu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipe: PipeInput
) -> None:
    monkeypatch.delenv("PRAGMASH_STATE_DIR")
    monkeypatch.setenv("PAGER", "cat")  # the transcript keeps long output
    image = build_test_image(tmp_path / "image")
    repo = write_repository(tmp_path, image, compute_cmdline=BROKEN_CMDLINE)
    site_path = write_site(tmp_path, repo)
    site = load_site(site_path, {})
    recipe = tmp_path / "vm.prg"
    recipe.write_text(RECIPE)
    transcript = io.StringIO()  # what the administrator saw, for PRAGMASH_KEEP_TRANSCRIPT
    conn = libvirt.open("qemu:///system")
    try:
        # -- the run: the frontend comes up, the compute hangs --------------------------
        out, err = io.StringIO(), io.StringIO()
        code = main([str(recipe), "--vcname", "vmtest", "--site", str(site_path)], out=out, err=err)
        said = out.getvalue() + err.getvalue()
        transcript.write(f"$ pragmash vm.prg --vcname vmtest --site site.toml\n{said}")
        assert code == 3, said
        assert "timed out after 75 s waiting for vmtest-compute-0 to be up" in said
        failed_run = last_run(Ledger(site), "vmtest")
        assert failed_run is not None and failed_run.outcome == "failed"
        held = current_allocation(Ledger(site), "vmtest")
        assert held is not None
        frontend_id = conn.lookupByName("vmtest-frontend").ID()
        disk = tmp_path / "tmp" / "vmtest" / "disks" / "vmtest-compute-0.qcow2"
        disk_inode = disk.stat().st_ino

        # -- the REPL on that run --------------------------------------------------------
        run = open_run(["--attach", "vmtest", "--site", str(site_path)], io.StringIO())
        repl = Repl(run, transcript)
        repl.make_session(InMemoryHistory(), input=pipe, output=DummyOutput())
        interp = run.interpreter

        def type_(line: str) -> str:
            start = len(transcript.getvalue())
            transcript.write(f"(pragmash) {line}\n")
            pipe.send_text(line + "\r")
            assert repl.read_and_run(), f"the REPL ended after {line!r}"
            return transcript.getvalue()[start:]

        assert str(interp.status) == "failed" and interp.pc == 4
        assert "wait compute up" in type_("where")

        node = type_("show node compute[0]")
        assert "vmtest-compute-0: running on qemu:///system" in node
        assert "root=/dev/sda1" in type_("show node compute[0] --xml")  # the cause
        console = type_("show node vmtest-compute-0 --console")
        assert "does not exist" in console  # and the console shows the guest saying so

        # the fix, made where it belongs: in the repository's template
        vc_in = repo / "vmtest" / "vc-in.xml"
        vc_in.write_text(vc_in.read_text().replace(BROKEN_CMDLINE, GOOD_CMDLINE))
        said = type_("reload")
        assert "the compute template changed" in said
        assert "still running with the old template: vmtest-compute-0" in said

        type_("ve_driver/destroy compute")
        assert not [d for d in conn.listAllDomains() if d.name() == "vmtest-compute-0"]
        type_("boot compute")
        assert "root=/dev/vda1" in conn.lookupByName("vmtest-compute-0").XMLDesc()
        assert str(interp.status) == "failed" and interp.pc == 4  # typed, not a recipe step

        said = type_("retry")
        assert interp.pc == 5 and str(interp.status) == "paused", said
        said = type_("continue")
        assert interp.finished and "vmtest is up" in said
        pipe.send_text("quit\r")
        transcript.write("(pragmash) quit\n")
        assert not repl.read_and_run()

        # -- the same run, leases and disk; the frontend never restarted -----------------
        record = last_run(Ledger(site), "vmtest")
        assert record is not None and record.id == failed_run.id
        assert record.outcome == "finished"
        assert current_allocation(Ledger(site), "vmtest") == held
        assert disk.stat().st_ino == disk_inode
        assert conn.lookupByName("vmtest-frontend").ID() == frontend_id
        compute = next(n for n in held.nodes if n.role == "compute")
        console_log = tmp_path / "tmp" / "vmtest" / "vmtest-compute-0.console.log"
        expected = (
            f"{MARKER_SELF} name={compute.name} ip={compute.private_ip} mac={compute.macs[0]}"
        )
        assert expected in console_lines(console_log, MARKER_SELF)
        assert "does not exist" not in console_log.read_text(errors="replace")  # this boot only

        keep = os.environ.get("PRAGMASH_KEEP_TRANSCRIPT")
        if keep:  # for the README's walk-through
            Path(keep).write_text(transcript.getvalue())
        main(["shutdown", "vmtest", "--site", str(site_path), "--timeout", "5"], out=out, err=err)
        assert main(["clean", "vmtest", "--site", str(site_path)], out=out, err=err) == 0
    finally:
        remove_vmtest_domains(conn)
        conn.close()
