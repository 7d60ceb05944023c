"""``pragmash scale VC +N|-N`` on test:///default: ledger, vc-out.xml, domains, journal.

The VC is booted by a recipe run first (in this process, so its domains live in this
process's test:///default), then grown and shrunk through the CLI, and each time the
ledger's leases, the VC's vc-out.xml and the engine's domains must agree.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess

import libvirt
import pytest
from support.runenv import RunEnv, make_env, vc_domains

from pragmash.engine.commands import scale
from pragmash.engine.run.events import Event, NodeProgress
from pragmash.store.journal import lock_holder, process_started
from pragmash.ui.cli import run as run_mod
from pragmash.ui.step_printer import StepPrinter
from pragmash.vc.formats.vcout import read_vc_out

pytestmark = pytest.mark.libvirt

BOOT = "allocate 2\nboot frontend\nboot compute\nwait all up\n"


@pytest.fixture
def env(tmp_path_factory: pytest.TempPathFactory) -> RunEnv:
    return make_env(tmp_path_factory.mktemp("scale") / "site")


def _booted(env: RunEnv) -> None:
    result = env.cli(str(env.recipe(BOOT)), "--vcname", "calit2")
    assert result.rc == 0, result.err


def _leases(env: RunEnv) -> dict[str, tuple[str, tuple[str, ...], int]]:
    held = env.allocation()
    assert held is not None
    return {n.name: (n.private_ip, n.macs, n.cpus) for n in held.nodes}


def _vc_out_computes(env: RunEnv) -> dict[str, tuple[str, str]]:
    vc_out = read_vc_out(env.site().temp_dir / "calit2" / "vc-out.xml")
    return {c.name: (c.ip, c.mac) for c in vc_out.computes}


def _agrees(env: RunEnv, conn: libvirt.virConnect, computes: int) -> None:
    """Ledger, vc-out.xml and the engine all say the VC has ``computes`` computes."""
    held = env.allocation()
    assert held is not None
    names = [f"calit2-compute-{i}" for i in range(computes)]
    assert [n.name for n in held.computes] == names
    assert held.cpus == sum(n.cpus for n in held.computes)
    assert _vc_out_computes(env) == {n.name: (n.private_ip, n.macs[0]) for n in held.computes}
    domains = vc_domains(conn)
    assert sorted(domains) == sorted(["calit2-frontend", *names])
    assert all(d.isActive() for d in domains.values())


def test_grow_by_two_then_shrink_by_three(env: RunEnv, testconn: libvirt.virConnect) -> None:
    _booted(env)
    before = _leases(env)
    grown = env.cli("scale", "calit2", "+2")
    assert grown.rc == 0, grown.err
    assert "lease compute[2:4]" in grown.out and "boot compute[2:4]" in grown.out
    assert "calit2: finished; vc-out.xml written to" in grown.out
    _agrees(env, testconn, 4)
    after = _leases(env)
    # the old nodes kept their leases; the new ones got fresh MACs and the next addresses
    assert {k: after[k] for k in before} == before
    assert after["calit2-compute-2"][0] == "10.1.1.252"
    assert after["calit2-compute-3"][0] == "10.1.1.251"
    macs = [m for _ip, ms, _c in after.values() for m in ms]
    assert len(set(macs)) == len(macs)
    new_macs = {m for k in ("calit2-compute-2", "calit2-compute-3") for m in after[k][1]}
    for name in ("calit2-compute-2", "calit2-compute-3"):
        xml = testconn.lookupByName(name).XMLDesc()
        assert after[name][1][0] in xml
    assert not new_macs & {m for _ip, ms, _c in before.values() for m in ms}
    # journaled as a run; status and list show it
    run = env.last_run()
    assert run is not None and run.outcome == "finished" and run.recipe.startswith("scale +2")
    assert [(s.text, s.outcome) for s in env.steps()] == [
        ("lease compute[2:4]", "done"),
        ("stage compute[2:4]", "skipped"),
        ("boot compute[2:4]", "done"),
        ("wait compute[2:4] up", "done"),
        ("refresh all", "skipped"),  # no guest on the demo engine (tests/vm/test_vm_guests.py)
    ]
    data = json.loads(env.cli("status", "calit2", "--json").out)
    assert [n["name"] for n in data["nodes"]][-2:] == ["calit2-compute-2", "calit2-compute-3"]
    # the recipe's run booted the first nodes, the scale the new ones: none is a mismatch
    assert not any(n["mismatch"] for n in data["nodes"])
    assert all(n["ledger_says"] == "running" for n in data["nodes"])
    assert f"{run.id} finished" in env.cli("list").out

    shrunk = env.cli("scale", "calit2", "-3")
    assert shrunk.rc == 0, shrunk.err
    _agrees(env, testconn, 1)
    assert _leases(env) == {k: before[k] for k in ("calit2-frontend", "calit2-compute-0")}
    assert "destroyed calit2-compute-3 (was running), calit2-compute-2" in shrunk.out
    assert [s.text for s in env.steps()] == [
        "destroy compute[1:4]",
        "remove compute[1:4]",
        "release compute[1:4]",
        "refresh all",
    ]
    # the released MACs and CPUs are free again: the VC can grow back into them
    assert env.cli("scale", "calit2", "+1").rc == 0
    _agrees(env, testconn, 2)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("+12", "not enough CPUs to add 12 compute(s) to calit2: they need 12 (12 x 1), 11 free"),
        ("-3", "calit2 has 2 compute(s), so at most -2 can be removed"),
        ("2", "expected +N (add N computes) or -N"),
        ("+0", "expected +N (add N computes) or -N"),
    ],
)
def test_refused_changes_take_nothing(
    env: RunEnv, testconn: libvirt.virConnect, change: str, said: str
) -> None:
    _booted(env)
    leases, run = _leases(env), env.last_run()
    result = env.cli("scale", "calit2", change)
    assert result.rc == 2, result.out + result.err
    assert said in result.err and "Traceback" not in result.err
    assert _leases(env) == leases
    assert env.last_run() == run  # no scale run was even opened
    _agrees(env, testconn, 2)


def test_a_vc_that_is_not_up_is_not_scaled(env: RunEnv, testconn: libvirt.virConnect) -> None:
    flag = env.root / "never"
    recipe = env.recipe(f"allocate 1\nboot frontend\nrun test -e {flag}\n")
    assert env.cli(str(recipe), "--vcname", "calit2", "--allow-run").rc == 3
    result = env.cli("scale", "calit2", "+1")
    assert result.rc == 2
    assert "its run 1" in result.err and "is failed, not finished" in result.err
    assert "pragmash resume calit2" in result.err
    unknown = env.cli("scale", "nosuch", "+1")
    assert unknown.rc == 2 and "nosuch holds no allocation" in unknown.err


def test_a_scale_waits_for_no_one(env: RunEnv, testconn: libvirt.virConnect) -> None:
    """A VC another live process holds is refused (exit 4), nothing taken."""
    _booted(env)
    leases = _leases(env)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        with env.ledger().transaction() as conn:
            conn.execute(
                "INSERT INTO locks (vcname, run_id, pid, host, since, started) "
                "VALUES ('calit2', 1, ?, ?, 0, ?)",
                (holder.pid, socket.gethostname(), process_started(holder.pid)),
            )
        result = env.cli("scale", "calit2", "+1")
    finally:
        holder.kill()
        holder.wait()
    assert result.rc == 4, result.err
    assert f"pid {holder.pid}" in result.err
    assert _leases(env) == leases


def _interrupted_at_boot(env: RunEnv) -> None:
    """Start ``scale +2`` and Ctrl-C it as its boot step begins (after the leases)."""

    def sink(event: Event) -> None:
        if isinstance(event, NodeProgress) and event.node == "calit2-compute-2":
            raise KeyboardInterrupt

    out, err = io.StringIO(), io.StringIO()
    printer = StepPrinter(out, err)

    def both(event: Event) -> None:
        printer(event)
        sink(event)

    run = scale.start("calit2", 2, site=str(env.site_path), on_event=both)
    assert run_mod.finish(run, out, err) == 130, out.getvalue() + err.getvalue()
    assert "INTR scale:3:1" in out.getvalue() and "resume calit2" in err.getvalue()


@pytest.mark.parametrize("how", [("resume", "calit2"), ("scale", "calit2", "+2")])
def test_an_interrupted_scale_is_continued(
    env: RunEnv, testconn: libvirt.virConnect, how: tuple[str, ...]
) -> None:
    _booted(env)
    _interrupted_at_boot(env)
    run = env.last_run()
    assert run is not None and run.outcome == "interrupted"
    assert [s.outcome for s in env.steps()] == ["done", "skipped", "interrupted"]
    leased = _leases(env)
    assert "calit2-compute-3" in leased  # the leases were taken before the Ctrl-C
    assert lock_holder(env.ledger(), "calit2") is None

    result = env.cli(*how)
    assert result.rc == 0, result.err
    if how[0] == "scale":
        assert f"run {run.id} (scale +2 (2 -> 4 computes)) was interrupted: continuing" in (
            result.err
        )
    again = env.last_run()
    assert again is not None and again.id == run.id and again.outcome == "finished"
    assert [s.outcome for s in env.steps()] == ["done", "skipped", "done", "done", "skipped"]
    assert _leases(env) == leased  # nothing taken twice
    _agrees(env, testconn, 4)


def test_a_different_scale_is_refused_while_one_is_unfinished(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    _booted(env)
    _interrupted_at_boot(env)
    result = env.cli("scale", "calit2", "-1")
    assert result.rc == 2
    assert "(scale +2 (2 -> 4 computes)) did not finish (interrupted)" in result.err
    assert "pragmash resume calit2" in result.err
    # the REPL's attach reopens recipe runs; it does not take the scale for one
    attach = env.cli("repl", "--attach", "calit2")
    assert attach.rc == 2 and "is a scale: `pragmash resume calit2` continues it" in attach.err


def test_status_after_a_scale_names_the_vcs_recipe(
    env: RunEnv, testconn: libvirt.virConnect
) -> None:
    """The hint to remake a missing private network names the recipe, not the scale."""
    _booted(env)
    assert env.cli("scale", "calit2", "+1").rc == 0
    net = testconn.networkLookupByName("calit2-private")
    net.destroy()
    net.undefine()
    status = env.cli("status", "calit2")
    recipe = env.root / "test.prg"
    assert (
        f"missing: `pragmash {recipe} --vcname calit2 --num_compute 3` (same allocation)"
        in status.out
    )
    assert "run 2 (finished): scale +1 (2 -> 3 computes)" in status.out
