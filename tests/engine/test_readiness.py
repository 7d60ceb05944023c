"""What `up` and `wait … console` mean, and failing fast, on a scripted engine.

The engine here is a fake (tier 1): its states, console and guest agent follow a
script, one step per poll, and time passes only when the waiter sleeps. The same
waiter runs against libvirt in tests/drivers/test_libvirt_engine.py and against real QEMU
guests in tests/test_vm_*.py.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from pragmash import domain_states
from pragmash.driver_api import (
    DEFAULT_UP_TESTS,
    LOGIN_PROMPT,
    EngineDriver,
    NodePlan,
    UpTest,
    parse_up_test,
    up_tests_of,
)
from pragmash.engine.steps.readiness import Goal, Waiter
from pragmash.errors import StepError


@dataclass
class Poll:
    """What the fake engine shows at one poll."""

    state: str = domain_states.RUNNING
    console: tuple[str, ...] = ()
    agent: bool = False
    reason: str = ""


@dataclass
class ScriptedEngine:
    """A non-simulated engine whose node goes through ``script``, one entry per look."""

    script: list[Poll]
    looks: int = 0
    simulated: bool = False
    name: str = "scripted"
    agent_asked: list[str] = field(default_factory=list)

    def _now(self) -> Poll:
        return self.script[min(max(self.looks - 1, 0), len(self.script) - 1)]

    def state(self, name: str) -> str:
        self.looks += 1
        return self._now().state

    def state_reason(self, name: str) -> str:
        return self._now().reason

    def agent_answers(self, name: str) -> bool:
        self.agent_asked.append(name)
        return self._now().agent

    def console_tail(self, name: str, lines: int = 20) -> list[str]:
        return list(self._now().console)[-lines:]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def plan(*tests: UpTest, address: str = "192.0.2.7") -> NodePlan:
    return NodePlan(
        name="vc-compute-0",
        role="compute",
        index=0,
        cpus=1,
        template_xml="<domain/>",
        macs=(),
        networks=(),
        disks=(),
        domain_type="qemu",
        private_ip=address,
        up_tests=tests,
    )


def wait(
    engine: ScriptedEngine, node: NodePlan, goal: Goal, timeout: float = 600, **kw: object
) -> tuple[dict[str, str], FakeClock]:
    clock = FakeClock()
    fake: EngineDriver = engine  # type: ignore[assignment]  # only what the waiter uses
    waiter = Waiter(fake, sleep=clock.sleep, clock=clock, **kw)  # type: ignore[arg-type]
    return waiter.wait([node], goal, timeout), clock


BOOTING = Poll(console=("[    1.2] Linux version 6.1", "Booting..."))
PROMPT = Poll(console=("Debian GNU/Linux 12 debian12 ttyS0", "", "debian12 login: "))


def test_up_by_login_prompt_on_the_console() -> None:
    engine = ScriptedEngine([BOOTING, BOOTING, PROMPT])
    reached, clock = wait(engine, plan(UpTest("console", LOGIN_PROMPT)), Goal("up"))
    assert reached == {"vc-compute-0": "console: debian12 login:"}
    assert clock.now == 2.0  # two polls a second apart before the prompt showed


# What a converted Debian guest printed here: its first-boot scripts' kernel-log lines
# land on the serial console right after getty's prompt, on the same line.
INTERLEAVED = Poll(
    console=(
        "debian12 login: [   81.879178] firstboot.sh[282]: Ign:1 http://deb.debian.org/debian",
        "[   89.862901] firstboot.sh[282]: E: Unable to locate package qemu-guest-agent",
    )
)


@pytest.mark.parametrize(
    "line,up",
    [
        ("debian12 login: [   81.879178] firstboot.sh[282]: Ign:1", True),
        ("compute-0-0 login: systemd[1]: Started foo.", True),
        ("vmtest login:", True),
        ("login: ", True),
        ("[   12.3] systemd-logind[200]: New seat seat0. no login: here", False),
        ("Last login: Tue Nov 24 20:00:01 on ttyS0", False),
        ("Please login: later", False),
    ],
)
def test_the_login_prompt_is_found_with_kernel_messages_after_it(line: str, up: bool) -> None:
    assert bool(re.search(LOGIN_PROMPT, line)) is up


def test_a_console_wait_shows_its_line_up_to_the_text() -> None:
    reached, _ = wait(ScriptedEngine([INTERLEAVED]), plan(), Goal("console", text="login:"))
    assert reached == {"vc-compute-0": "console: debian12 login:"}


def test_up_by_a_login_prompt_that_kernel_messages_followed() -> None:
    engine = ScriptedEngine([BOOTING, INTERLEAVED])
    reached, _ = wait(engine, plan(UpTest("console", LOGIN_PROMPT)), Goal("up"))
    # the proof ends at the prompt: the first-boot unit's log after it is not shown
    assert reached["vc-compute-0"] == "console: debian12 login:"


def test_up_by_the_guest_agent_before_any_console_line() -> None:
    engine = ScriptedEngine([BOOTING, replace(BOOTING, agent=True)])
    node = plan(UpTest("agent"), UpTest("console", LOGIN_PROMPT))
    reached, _ = wait(engine, node, Goal("up"))
    assert reached == {"vc-compute-0": "the QEMU guest agent answered"}
    assert engine.agent_asked == ["vc-compute-0", "vc-compute-0"]


def test_up_by_marker_and_only_by_the_tests_the_node_is_held_to() -> None:
    marker = Poll(console=("PRAGMASH-UP", "debian12 login: "), agent=True)
    reached, _ = wait(ScriptedEngine([marker]), plan(UpTest("marker")), Goal("up"))
    assert reached == {"vc-compute-0": "console: PRAGMASH-UP"}
    # a node held to the marker alone is not up by its login prompt or its agent
    with pytest.raises(StepError, match="timed out after 5 s"):
        wait(
            ScriptedEngine([PROMPT, replace(PROMPT, agent=True)]),
            plan(UpTest("marker")),
            Goal("up"),
            5,
        )


@pytest.fixture
def listening() -> Iterator[int]:
    """A real TCP port on loopback that accepts connections."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def test_up_by_a_tcp_port_answering_on_the_nodes_address(listening: int) -> None:
    node = plan(UpTest("port", port=listening), address="127.0.0.1")
    reached, _ = wait(ScriptedEngine([BOOTING]), node, Goal("up"))
    assert reached == {"vc-compute-0": f"TCP port {listening} answered on 127.0.0.1"}


def test_a_closed_port_is_not_up() -> None:
    free = socket.create_server(("127.0.0.1", 0))
    port = int(free.getsockname()[1])
    free.close()  # nothing listens there now
    node = plan(UpTest("port", port=port), address="127.0.0.1")
    with pytest.raises(StepError) as info:
        wait(ScriptedEngine([BOOTING]), node, Goal("up"), 3)
    assert f"held to: TCP port {port} answers" in info.value.message


def test_wait_console_text_is_literal_not_a_pattern() -> None:
    dots = Poll(console=("Welcome to Debian GNU/Linux 12 (bookworm)!",))
    reached, _ = wait(ScriptedEngine([dots]), plan(), Goal("console", text="Linux 12 (bookworm)"))
    # the proof ends at the text waited for
    assert reached == {"vc-compute-0": "console: Welcome to Debian GNU/Linux 12 (bookworm)"}
    # as a regular expression "a.c" would match "abc"; as text it does not
    with pytest.raises(StepError, match=r"showing 'a\.c' on its console"):
        wait(ScriptedEngine([Poll(console=("abc",))]), plan(), Goal("console", text="a.c"), 2)


@pytest.mark.parametrize("goal", [Goal("up"), Goal("console", text="login:")])
def test_a_node_that_powers_off_fails_the_wait_at_once(goal: Goal) -> None:
    down = Poll(
        state=domain_states.SHUT_OFF,
        reason="the guest shut down (powered itself off)",
        console=("Run /sbin/init as init process", "reboot: Power down"),
    )
    engine = ScriptedEngine([BOOTING, BOOTING, down])
    with pytest.raises(StepError) as info:
        wait(engine, plan(UpTest("console", LOGIN_PROMPT)), goal, timeout=300)
    err = info.value
    assert err.message.startswith(
        "vc-compute-0 is shut off (the guest shut down (powered itself off)) while waiting"
    )
    assert "timed out" not in err.message
    assert err.output_tail[-1] == "vc-compute-0 console: reboot: Power down"
    assert engine.looks == 3  # the third look saw it off and the wait ended there


def test_waiting_for_running_on_a_shut_off_node_fails_at_once() -> None:
    down = Poll(state=domain_states.SHUT_OFF, reason="the domain was destroyed (forced off)")
    with pytest.raises(StepError, match="is shut off \\(the domain was destroyed"):
        wait(ScriptedEngine([down]), plan(), Goal("state", state=domain_states.RUNNING))


def test_crashed_and_absent_nodes_fail_fast_too_but_paused_ones_are_waited_for() -> None:
    for state in (domain_states.CRASHED, domain_states.ABSENT):
        with pytest.raises(StepError, match=f"is {state}"):
            wait(ScriptedEngine([Poll(state=state)]), plan(), Goal("up"))
    paused_then_up = ScriptedEngine([Poll(state=domain_states.PAUSED), PROMPT])
    reached, _ = wait(paused_then_up, plan(UpTest("console", LOGIN_PROMPT)), Goal("up"))
    assert reached


def test_waiting_for_shut_off_is_not_failed_by_shutting_off() -> None:
    engine = ScriptedEngine([Poll(), Poll(state=domain_states.SHUT_OFF)])
    reached, _ = wait(engine, plan(), Goal("state", state=domain_states.SHUT_OFF))
    assert reached == {"vc-compute-0": "shut off"}


def test_timeout_names_state_tests_and_console_tail() -> None:
    with pytest.raises(StepError) as info:
        wait(ScriptedEngine([BOOTING]), plan(*DEFAULT_UP_TESTS), Goal("up"), 4)
    msg = info.value.message
    assert msg.startswith("timed out after 4 s waiting for vc-compute-0 to be up")
    assert "the QEMU guest agent answers, or a login prompt on the serial console" in msg
    assert msg.endswith("vc-compute-0: running")
    assert info.value.output_tail[-1] == "vc-compute-0 console: Booting..."


@pytest.mark.parametrize(
    ("spec", "test"),
    [
        ("agent", UpTest("agent")),
        ("console", UpTest("console", LOGIN_PROMPT)),
        ("console:Rocks .* ready", UpTest("console", "Rocks .* ready")),
        ("port:22", UpTest("port", port=22)),
        ("marker", UpTest("marker")),
    ],
)
def test_up_test_specs_round_trip(spec: str, test: UpTest) -> None:
    assert parse_up_test(spec) == test
    assert test.spec == spec


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("ssh", "unknown up test 'ssh'"),
        ("port:0", "N from 1 to 65535"),
        ("port:http", "N from 1 to 65535"),
        ("console:(", "not a regular expression"),
        ("console:", "needs a regular expression"),
        ("agent:x", "unknown up test"),
    ],
)
def test_bad_up_test_specs_say_what_was_expected(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        parse_up_test(spec)


def test_drivers_that_declare_nothing_get_the_defaults() -> None:
    class Silent:
        name = "silent"

    class Declared:
        up_tests = (UpTest("port", port=22),)

    assert up_tests_of(Silent()) == DEFAULT_UP_TESTS
    assert up_tests_of(Declared()) == (UpTest("port", port=22),)


# -- an engine that cannot tell a node's state (a site's VE driver scripts) ------------------

SCRIPTS = Poll(state="unknown", reason="the site's VE driver folder /srv/ve cannot tell")


def test_unknown_state_is_up_by_a_port_test_alone() -> None:
    answers = iter([False, False, True])
    asked: list[tuple[str, int]] = []

    def connect(address: str, port: int, _timeout: float) -> bool:
        asked.append((address, port))
        return next(answers)

    reached, clock = wait(
        ScriptedEngine([SCRIPTS]),
        plan(UpTest("agent"), UpTest("port", port=22)),
        Goal("up"),
        connect=connect,
    )
    assert reached == {"vc-compute-0": "TCP port 22 answered on 192.0.2.7"}
    assert asked == [("192.0.2.7", 22)] * 3 and clock.now > 0


@pytest.mark.parametrize(
    "goal", [Goal("up"), Goal("state", state=domain_states.RUNNING), Goal("console", text="login:")]
)
def test_unknown_state_without_a_port_test_fails_at_once_saying_what_would_work(
    goal: Goal,
) -> None:
    with pytest.raises(StepError) as err:
        wait(ScriptedEngine([SCRIPTS]), plan(UpTest("agent")), goal, timeout=600)
    assert "its state is unknown (the site's VE driver folder /srv/ve cannot tell)" in str(
        err.value
    )
    assert "port:22" in (err.value.hint or "")
