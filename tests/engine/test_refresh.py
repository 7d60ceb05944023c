"""``refresh``: running nodes receive their current vc-out, each its own form; a node that
cannot be reached is named with how to do it by hand; one not running is left alone.

The protocol with a fake agent (fakeagent.py) that answers as qemu-ga does; the
command and the scale's step on the demo engine; real guests: tests/vm/test_vm_guests.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import libvirt
import pytest
from support.fakeagent import FakeAgent, FakeEngine
from support.runenv import BOOT_ALL, RunEnv, make_env

from pragmash import domain_states
from pragmash.driver_api import NodePlan, StageContext
from pragmash.engine.commands.refresh import refresh_nodes, refresh_outcome
from pragmash.engine.guests.agent import Clock
from pragmash.engine.guests.inside import GuestReach
from pragmash.engine.run.interpreter import StepReporter
from pragmash.errors import StepError, UserError

CLOCK = Clock(sleep=lambda _s: None, now=time.monotonic)


def node(name: str, role: str) -> NodePlan:
    return NodePlan(name, role, None, 1, "<domain/>", (), (), (), "qemu")  # type: ignore[arg-type]


def no_ssh() -> object:
    raise UserError("no key for this VC")


def fake_runtime(tmp_path: Path, engine: FakeEngine) -> SimpleNamespace:
    """What refresh_nodes reads of a runtime: its context, engine, guests and name."""
    folder = tmp_path / "vc"
    folder.mkdir()
    (folder / "vc-out.xml").write_text("<vc>whole</vc>\n")
    (folder / "vc-compute-0.xml").write_text("<vc>compute-0's own</vc>\n")
    (folder / "vc-compute-1.xml").write_text("<vc>compute-1's own</vc>\n")
    ctx = StageContext(vcname="vc", temp_dir=folder, vc_out_path=folder / "vc-out.xml")
    return SimpleNamespace(
        vcname="vc",
        engine=engine,
        context=lambda _reporter: ctx,
        guests=lambda: GuestReach(engine, no_ssh, CLOCK),  # type: ignore[arg-type]
    )


def test_each_running_node_gets_its_own_form_and_the_rest_are_named(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path / "guests")
    for name in ("vc-frontend", "vc-compute-0", "vc-compute-1"):
        (tmp_path / "guests" / name).mkdir(parents=True)
    engine = FakeEngine(agent, states={"vc-compute-1": domain_states.SHUT_OFF})
    runtime = fake_runtime(tmp_path, engine)
    real_command = agent.agent_command

    def compute_0_has_no_agent(name: str, command: str, timeout: int) -> str:
        if name == "vc-compute-0":
            agent.answers = False
            try:
                return real_command(name, command, timeout)
            finally:
                agent.answers = True
        return real_command(name, command, timeout)

    engine.agent_command = compute_0_has_no_agent  # type: ignore[method-assign]
    nodes = [node("vc-frontend", "frontend"), node("vc-compute-0", "compute"),
             node("vc-compute-1", "compute")]  # fmt: skip
    results = refresh_nodes(runtime, nodes, StepReporter(0, lambda _e: None))  # type: ignore[arg-type]
    front, zero, one = results
    assert (front.outcome, front.said) == (
        "updated",
        "/root/vc-out.xml written through the guest agent",
    )
    assert (tmp_path / "guests" / "vc-frontend" / "vc-out.xml").read_text() == "<vc>whole</vc>\n"
    assert zero.outcome == "not updated"
    assert "the QEMU guest agent does not answer" in zero.said and "no key" in zero.said
    by_hand = (
        f"pragmash ssh vc vc-compute-0 -- 'cat > /root/vc-out.xml' < {tmp_path}/vc/vc-compute-0.xml"
    )
    assert zero.said.endswith(f"by hand: {by_hand}")
    assert one.outcome == "not running" and one.said.startswith("shut off: refresh it once")
    assert not (tmp_path / "guests" / "vc-compute-1" / "vc-out.xml").exists()

    kept = refresh_outcome(results, strict=False)  # a scale's step: done, saying who missed it
    assert kept.message == (
        "updated vc-frontend; not running: vc-compute-1; NOT updated: vc-compute-0"
    )
    with pytest.raises(StepError) as info:  # `pragmash refresh`: exit 3
        refresh_outcome(results, strict=True)
    assert info.value.stage == "refresh" and info.value.output_tail == [zero.said]


def test_the_command_and_the_scale_step_on_the_demo_engine(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    env: RunEnv = make_env(tmp_path / "site")
    assert env.cli(str(env.recipe(BOOT_ALL)), "--vcname", "calit2").rc == 0
    done = env.cli("refresh", "calit2")
    assert done.rc == 0, done.err
    assert "refresh all" in done.out and "no guest to receive its vc-out" in done.out
    assert "calit2: every running node holds its current vc-out" in done.out
    assert env.cli("refresh", "nosuch").rc == 2
    grown = env.cli("scale", "calit2", "+1")
    assert grown.rc == 0, grown.err
    assert [s.text for s in env.steps()][-1] == "refresh all"


def test_a_site_that_forbids_ssh_to_guests_gets_the_agent_only(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    """``[policy] ssh_to_guests = false``: no ssh is tried (the VM tier's sites say so:
    their guests' addresses are made up, and nothing may leave the machine)."""
    from pragmash.engine.run.opening import RunOptions, load
    from pragmash.language.parser import parse_recipe

    env = make_env(tmp_path / "site", extra="\n[policy]\nssh_to_guests = false\n")
    recipe = env.recipe(BOOT_ALL)
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    options = RunOptions(recipe=str(recipe), vcname="calit2")
    prep = load(str(env.site_path), options, lambda _c: parse_recipe(BOOT_ALL, "r.prg"))
    assert prep.site.ssh_to_guests is False
    with pytest.raises(StepError) as info:
        prep.runtime.guests().exec("calit2-frontend", ["true"], 5)
    assert "the QEMU guest agent does not answer" in info.value.message
    assert "and no ssh: " in info.value.message
    assert "[policy] ssh_to_guests = false" in info.value.message
