"""``exec``: the statement, the guest agent's protocol (with a fake agent that answers as
qemu-ga does), the way to ssh where no agent answers, and what a run shows and keeps.

The real agent in a real guest: tests/vm/test_vm_guests.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.fakeagent import FakeAgent, FakeEngine

from pragmash import domain_states
from pragmash.driver_api import NodePlan
from pragmash.engine.guests.agent import Clock, agent_exec, agent_write_file
from pragmash.engine.guests.inside import GuestReach, exec_on_nodes
from pragmash.engine.run.events import Event, Output
from pragmash.engine.run.interpreter import StepReporter
from pragmash.errors import RecipeError, StepError, UserError
from pragmash.language import ast
from pragmash.language.parser import parse_recipe

CLOCK = Clock(sleep=lambda _s: None, now=time.monotonic)


def words(stmt: ast.Statement) -> list[str]:
    assert isinstance(stmt, ast.Exec)
    return [str(w) for w in stmt.argv]


# -- the statement ------------------------------------------------------------------------


def test_exec_parses_targets_a_quoted_command_and_a_timeout() -> None:
    (stmt,) = parse_recipe(
        'exec frontend, compute[1] "rocks sync config" timeout 2m', "r.prg"
    ).statements
    assert isinstance(stmt, ast.Exec) and stmt.kind == "exec"
    assert [str(t) for t in stmt.targets] == ["frontend", "compute[1]"]
    assert words(stmt) == ["rocks", "sync", "config"]
    assert stmt.timeout_word.literal == "2m"
    (bare,) = parse_recipe('exec all "hostname"', "r.prg").statements
    assert isinstance(bare, ast.Exec) and bare.timeout_word.literal == "5m"


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("\"sh -c 'echo a  b > /x'\"", ["sh", "-c", "echo a  b > /x"]),
        ('"printf \\"%s|\\" one \'\' two"', ["printf", "%s|", "one", "", "two"]),
        ('"a;b \\$(x) *"', ["a;b", "$(x)", "*"]),  # a shell's words, but plain text here
        ('"touch /root/${vcname}.done"', ["touch", "/root/${vcname}.done"]),
    ],
)
def test_the_command_is_split_into_words_once_with_no_shell(command: str, argv: list[str]) -> None:
    (stmt,) = parse_recipe(f"exec frontend {command}", "r.prg").statements
    assert words(stmt) == argv


def test_a_variable_is_never_split() -> None:
    (stmt,) = parse_recipe('exec frontend "echo $greeting!"', "r.prg").statements
    assert isinstance(stmt, ast.Exec)
    value = {"greeting": "hello  world; rm -rf /"}
    assert [w.expand(lambda ref: value[ref.name]) for w in stmt.argv] == [
        "echo",
        "hello  world; rm -rf /!",
    ]


@pytest.mark.parametrize(
    ("recipe", "said", "column"),
    [
        ("exec frontend hostname", "expected the command in double quotes after the targets", 23),
        ('exec frontend ""', "expected the command to run inside the nodes", 15),
        ('exec frontend "echo \'open"', "the command's ' is never closed", 15),
        ('exec "hostname"', "expected targets after 'exec'", 6),
        ('exec frontend "x" timeout soon', "expected a duration like", 27),
    ],
)
def test_mistakes_are_named_where_they_are(recipe: str, said: str, column: int) -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(recipe, "r.prg")
    assert said in info.value.message
    assert (info.value.span.line, info.value.span.column) == (1, column)


# -- the agent's protocol ------------------------------------------------------------------


def test_a_program_runs_through_guest_exec_and_its_output_comes_back(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, pending=3)
    run = agent_exec(agent, "n", ["sh", "-c", "echo out; echo err >&2; exit 3"], 30, CLOCK)
    assert (run.exit_code, run.stdout, run.stderr, run.signal) == (3, "out\n", "err\n", None)
    kinds = [execute for _, execute, _ in agent.calls]
    assert kinds == ["guest-exec"] + ["guest-exec-status"] * 4  # polled until it exited
    assert agent.calls[0][2] == {
        "path": "sh",
        "arg": ["-c", "echo out; echo err >&2; exit 3"],
        "capture-output": True,
    }


def test_a_program_past_its_time_is_killed_inside_the_guest(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, pending=10**6)
    with pytest.raises(StepError) as info:
        agent_exec(agent, "n", ["sleep", "30"], 0.3, Clock(time.sleep, time.monotonic))
    assert "did not end within 0.3 s: killed" in info.value.message
    _, execute, args = agent.calls[-1]
    assert execute == "guest-exec" and args["path"] == "kill" and args["arg"][0] == "-KILL"
    agent.pending = 0
    assert agent_exec(agent, "n", ["true"], 5, CLOCK).exit_code == 0  # it still answers


def test_a_program_ended_by_a_signal_says_so(tmp_path: Path) -> None:
    run = agent_exec(FakeAgent(tmp_path), "n", ["sh", "-c", "kill -TERM $$"], 30, CLOCK)
    assert (run.signal, run.exit_code) == (15, 128 + 15)


def test_a_file_goes_in_beside_its_place_and_is_renamed_into_it(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path)
    (tmp_path / "n").mkdir()
    data = bytes(range(256)) * 500  # several chunks
    said = agent_write_file(agent, "n", "/root/vc-out.xml", data, CLOCK)
    assert said == "/root/vc-out.xml written through the guest agent"
    assert (tmp_path / "n" / "vc-out.xml").read_bytes() == data
    assert not (tmp_path / "n" / "vc-out.xml.pragmash-new").exists()
    kinds = [execute for _, execute, _ in agent.calls]
    assert kinds[0] == "guest-file-open" and kinds.count("guest-file-write") == 3
    assert agent.calls[0][2] == {"path": "/root/vc-out.xml.pragmash-new", "mode": "w"}
    assert "guest-exec" in kinds and kinds.index("guest-file-close") < kinds.index("guest-exec")


def test_an_agent_without_guest_exec_gets_the_file_written_in_place(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, exec_disabled=True)
    (tmp_path / "n").mkdir()
    said = agent_write_file(agent, "n", "/root/vc-out.xml", b"<vc/>\n", CLOCK)
    assert "written in place" in said
    assert (tmp_path / "n" / "vc-out.xml").read_bytes() == b"<vc/>\n"


# -- exec on nodes --------------------------------------------------------------------------


def node(name: str) -> NodePlan:
    return NodePlan(name, "compute", 0, 1, "<domain/>", (), (), (), "qemu")


def reporter(events: list[Event]) -> StepReporter:
    return StepReporter(0, events.append, node_status=False)


def no_ssh() -> object:
    raise UserError("vc holds no allocation: it has no nodes to reach")


def test_exec_runs_on_every_node_and_keeps_each_status_and_output(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path)
    reach = GuestReach(FakeEngine(agent), no_ssh, CLOCK)  # type: ignore[arg-type]
    events: list[Event] = []
    done = exec_on_nodes(reach, [node("a"), node("b")], ["echo", "hi there"], 30, reporter(events))
    assert done.message == "echo exited 0 on a (guest agent), b (guest agent)"
    assert done.products == {
        "a": "exit 0 (guest agent)",
        "a output": "hi there",
        "b": "exit 0 (guest agent)",
        "b output": "hi there",
    }
    shown = sorted(e.text for e in events if isinstance(e, Output))
    assert shown == ["a: hi there", "b: hi there"]


def test_exec_fails_with_each_node_that_failed_and_why(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path)
    engine = FakeEngine(agent)
    reach = GuestReach(engine, no_ssh, CLOCK)  # type: ignore[arg-type]
    argv = ["sh", "-c", "echo no; exit 4"]
    with pytest.raises(StepError) as info:
        exec_on_nodes(reach, [node("a")], argv, 30, reporter([]))
    assert (
        info.value.message
        == "exec sh -c 'echo no; exit 4': a: sh ended with status 4 (guest agent)"
    )
    assert info.value.output_tail == ["no"] and info.value.stage == "exec"
    agent.answers = False
    with pytest.raises(StepError) as unreached:
        exec_on_nodes(reach, [node("a")], ["true"], 30, reporter([]))
    message = unreached.value.message
    assert "a: cannot run true: a: the QEMU guest agent does not answer" in message
    assert "and no ssh: vc holds no allocation" in message
    engine.states["a"] = domain_states.SHUT_OFF
    with pytest.raises(StepError) as stopped:
        exec_on_nodes(reach, [node("a")], ["true"], 30, reporter([]))
    assert "cannot run true in a (shut off): not running" in stopped.value.message


def test_libvirt_without_an_agent_reads_as_unreachable(testconn: object) -> None:
    """libvirt's test driver has no agents: the caller is told to go another way."""
    from pragmash.drivers.libvirt.engine import LibvirtEngine
    from pragmash.errors import AgentUnreachable

    engine = LibvirtEngine("test:///default")
    with pytest.raises(AgentUnreachable) as info:
        engine.agent_command("test", '{"execute": "guest-ping"}', 2)  # the driver's own domain
    assert "does not answer" in info.value.message
    with pytest.raises(AgentUnreachable, match="no domain of that name"):
        engine.agent_command("nosuch", '{"execute": "guest-ping"}', 2)
