"""LibvirtEngine against libvirt's in-process test driver (real libvirt-python calls).

Every ``test:///default`` connection in one process shares one in-memory driver
(with a pre-made domain called ``test``), so each test uses its own names and
destroys what it made.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from pragmash.driver_api import DomainStates, EngineDriver, HostInfo, NodePlan, StageContext
from pragmash.drivers.libvirt.engine import (
    LibvirtEngine,
    host_info_from_capabilities,
    kvm_usable,
)
from pragmash.engine.steps.readiness import Goal, Waiter
from pragmash.errors import StepError

pytestmark = pytest.mark.libvirt

TEMPLATE = """<domain type='kvm'>
  <name>compute-0-0-0</name>
  <os><type>hvm</type><boot dev='hd'/></os>
  <memory>1048576</memory>
  <vcpu>1</vcpu>
  <devices>
    <emulator>/usr/libexec/qemu-kvm</emulator>
    <interface type='bridge'>
      <source bridge='eth0.2'/>
      <mac address='7a:77:6e:40:00:0a'/>
      <model type='virtio' />
    </interface>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='hosted-vm-0-0-1.img.gz'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <graphics type='vnc' port='-1'/>
    <console tty='/dev/pts/0'/>
  </devices>
</domain>
"""


@dataclasses.dataclass
class Recorder:
    """Collects what a stage reports, in place of a front end."""

    notes: list[str] = dataclasses.field(default_factory=list)
    progress: list[tuple[float, float | None, str]] = dataclasses.field(default_factory=list)

    def context(self, tmp_path: Path) -> StageContext:
        return StageContext(
            vcname="t",
            temp_dir=tmp_path,
            vc_out_path=tmp_path / "vc-out.xml",
            note=self.notes.append,
            progress=lambda d, t, label: self.progress.append((d, t, label)),
        )


@pytest.fixture
def prefix() -> str:
    """A name prefix of this test's own, in the shared in-memory driver."""
    return f"pmt-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def engine(prefix: str) -> Iterator[LibvirtEngine]:
    eng = LibvirtEngine("test:///default")
    yield eng
    for name in eng.list_domains(prefix):
        eng.destroy(name)
    eng.close()


def node(name: str, tmp_path: Path, **changes: object) -> NodePlan:
    base = NodePlan(
        name=name,
        role="compute",
        index=0,
        cpus=2,
        template_xml=TEMPLATE,
        macs=("7a:77:6e:00:10:01",),
        networks=("user",),
        disks=(str(tmp_path / f"{name}.qcow2"),),
        domain_type="qemu",
        console_log=str(tmp_path / f"{name}.console.log"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_engine_satisfies_the_protocol(engine: LibvirtEngine) -> None:
    assert isinstance(engine, EngineDriver)
    assert engine.name == "libvirt"
    assert engine.simulated is True
    assert LibvirtEngine("qemu:///system").simulated is False


def test_boot_defines_and_starts_with_allocated_identity(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    name = prefix + "c0"
    result = engine.boot(node(name, tmp_path), Recorder().context(tmp_path))
    assert result.outcome == "done"
    assert result.products["domain"] == name
    assert engine.state(name) == "running"
    xml = engine.domain_xml(name)
    assert xml is not None
    root = etree.fromstring(xml.encode())
    assert root.findtext("name") == name
    assert root.findtext("uuid") == result.products["uuid"]
    assert root.get("type") == "qemu"
    assert root.findtext("vcpu") == "2"
    assert [m.get("address") for m in root.findall("devices/interface/mac")] == [
        "7a:77:6e:00:10:01"
    ]
    assert root.find("devices/interface").get("type") == "user"  # type: ignore[union-attr]
    assert root.find("devices/disk/source").get("file") == str(tmp_path / f"{name}.qcow2")  # type: ignore[union-attr]
    assert root.find("devices/disk/driver").get("type") == "qcow2"  # type: ignore[union-attr]
    # the host's own emulator, not the template's /usr/libexec/qemu-kvm
    assert root.findtext("devices/emulator") == engine.host_info().emulator
    assert engine.list_domains(prefix) == [name]


def test_boot_is_idempotent(engine: LibvirtEngine, prefix: str, tmp_path: Path) -> None:
    name = prefix + "fe"
    ctx = Recorder().context(tmp_path)
    first = engine.boot(node(name, tmp_path), ctx)
    second = engine.boot(node(name, tmp_path), ctx)
    assert second.outcome == "done"
    assert "already running" in second.message
    assert second.products["uuid"] == first.products["uuid"]
    assert engine.list_domains(prefix) == [name]
    assert engine.state(name) == "running"


def test_boot_restarts_a_shut_off_domain_under_its_uuid(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    name = prefix + "c1"
    recorder = Recorder()
    ctx = recorder.context(tmp_path)
    first = engine.boot(node(name, tmp_path), ctx)
    assert engine.shutdown(name, 5, ctx) is True
    assert engine.state(name) == "shut off"
    again = engine.boot(node(name, tmp_path, cpus=3), ctx)
    assert again.message == f"{name} started"
    assert again.products["uuid"] == first.products["uuid"]
    assert engine.state(name) == "running"
    xml = engine.domain_xml(name)
    assert xml is not None and etree.fromstring(xml.encode()).findtext("vcpu") == "3"
    assert any("redefining" in note for note in recorder.notes)


def test_shutdown_and_destroy(engine: LibvirtEngine, prefix: str, tmp_path: Path) -> None:
    name = prefix + "c2"
    ctx = Recorder().context(tmp_path)
    engine.boot(node(name, tmp_path), ctx)
    assert engine.shutdown(name, 5, ctx) is True
    assert engine.state(name) == "shut off"
    engine.boot(node(name, tmp_path), ctx)
    engine.destroy(name)
    assert engine.state(name) == "absent"
    assert engine.domain_xml(name) is None
    assert engine.list_domains(prefix) == []
    engine.destroy(name)  # absent is fine
    assert engine.shutdown(name, 1, ctx) is True


def test_absent_domain(engine: LibvirtEngine, prefix: str) -> None:
    assert engine.state(prefix + "nothing") == "absent"


def test_states_of_many_domains_in_one_call(
    engine: LibvirtEngine, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """status, list and clean read a host's domains' states with one call, as state() words
    them, an absent domain included (DomainStates)."""
    ctx = Recorder().context(tmp_path)
    up, down = prefix + "up", prefix + "down"
    engine.boot(node(up, tmp_path), ctx)
    engine.boot(node(down, tmp_path, macs=("7a:77:6e:00:10:02",)), ctx)
    assert engine.shutdown(down, 5, ctx) is True
    assert isinstance(engine, DomainStates)
    conn = engine._connection()
    calls: list[str] = []

    def counted(method: str) -> Callable[..., Any]:
        real = getattr(conn, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(method)
            return real(*args, **kwargs)

        return call

    for method in ("lookupByName", "getAllDomainStats", "listAllDomains"):
        monkeypatch.setattr(conn, method, counted(method))
    names = [up, down, prefix + "gone"]
    assert engine.states(names) == {up: "running", down: "shut off", prefix + "gone": "absent"}
    assert calls == ["getAllDomainStats"]
    assert {n: engine.state(n) for n in names} == engine.states(names)
    assert engine.domain_xml(prefix + "nothing") is None
    assert engine.console_tail(prefix + "nothing") == []


def test_define_refused_carries_libvirts_message(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    bad = TEMPLATE.replace("bus='ide'", "bus='nonsensebus'")
    with pytest.raises(StepError) as info:
        engine.boot(node(prefix + "bad", tmp_path, template_xml=bad), Recorder().context(tmp_path))
    assert info.value.stage == "ve_driver/boot"
    assert "nonsensebus" in info.value.message
    assert prefix + "bad" in info.value.message
    assert engine.state(prefix + "bad") == "absent"


def test_render_errors_surface_as_boot_errors(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    plan = node(prefix + "c3", tmp_path, macs=("7a:77:6e:00:10:01", "7a:77:6e:00:10:02"))
    with pytest.raises(StepError) as info:
        engine.boot(plan, Recorder().context(tmp_path))
    assert info.value.stage == "ve_driver/boot"
    assert "<interface>" in info.value.message


def test_bad_uri_fails_check_naming_the_uri() -> None:
    uri = "test:///nonexistent/file.xml"
    with pytest.raises(StepError) as info:
        LibvirtEngine(uri).check()
    assert info.value.stage == "ve_driver/connect"
    assert uri in info.value.message
    assert "/nonexistent/file.xml" in info.value.message.split(uri, 1)[1]


def test_console_tail_reads_the_serial_file(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    name = prefix + "c4"
    plan = node(name, tmp_path)
    engine.boot(plan, Recorder().context(tmp_path))
    assert engine.console_tail(name) == []  # the test driver writes nothing
    assert plan.console_log is not None
    Path(plan.console_log).write_text("".join(f"line {i}\n" for i in range(30)))
    assert engine.console_tail(name, 3) == ["line 27", "line 28", "line 29"]
    # a guest's escape sequences are shown, not obeyed by the admin's terminal
    Path(plan.console_log).write_text("(initramfs) \x1b[6n\r\n\x1b]0;owned\x07\ttab\n")
    assert engine.console_tail(name, 2) == ["(initramfs) \\x1b[6n", "\\x1b]0;owned\\x07\ttab"]


class FakeClock:
    """Time that passes only when the waiter sleeps: no test depends on this machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def waiter(engine: LibvirtEngine, clock: FakeClock, recorder: Recorder) -> Waiter:
    progress = recorder.context(Path("/nonexistent")).progress
    return Waiter(
        engine, sleep=clock.sleep, clock=clock, progress=progress, simulated=engine.simulated
    )


def test_one_waiter_waits_for_states_and_times_out_with_each_nodes_state(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    up, paused = prefix + "w0", prefix + "w1"
    recorder, clock = Recorder(), FakeClock()
    ctx = recorder.context(tmp_path)
    nodes = {n: node(n, tmp_path) for n in (up, paused)}
    for plan in nodes.values():
        engine.boot(plan, ctx)
    engine._connection().lookupByName(paused).suspend()
    wait = waiter(engine, clock, recorder)
    assert wait.wait([nodes[up]], Goal("state", state="running"), 1) == {up: "running"}
    with pytest.raises(StepError) as info:
        wait.wait(list(nodes.values()), Goal("state", state="running"), 30)
    assert info.value.stage == "ve_driver/wait"
    assert "timed out after 30 s" in info.value.message
    assert f"{paused}: paused" in info.value.message  # a paused node may resume: it is waited for
    assert clock.now >= 30
    assert recorder.progress and recorder.progress[-1][1] == 2  # nodes done out of 2


@pytest.mark.parametrize(
    ("stop", "state", "reason"),
    [
        ("shutdown", "shut off", "the guest shut down (powered itself off)"),
        ("destroy", "shut off", "the domain was destroyed (forced off)"),
        ("undefine", "absent", "no domain of that name is defined on the engine"),
    ],
)
def test_a_node_that_stops_fails_the_wait_at_once_with_state_and_reason(
    engine: LibvirtEngine, prefix: str, tmp_path: Path, stop: str, state: str, reason: str
) -> None:
    name = prefix + "gone"
    plan = node(name, tmp_path)
    engine.boot(plan, Recorder().context(tmp_path))
    dom = engine._connection().lookupByName(name)
    if stop == "shutdown":
        dom.shutdown()
    elif stop == "destroy":
        dom.destroy()
    else:
        dom.destroy()
        dom.undefine()
    clock = FakeClock()
    with pytest.raises(StepError) as info:
        waiter(engine, clock, Recorder()).wait([plan], Goal("up"), 3600)
    assert info.value.message.startswith(f"{name} is {state} ({reason}) while waiting")
    assert "timed out" not in info.value.message
    assert clock.sleeps == 0  # failed on the first look, not after the hour
    # waiting for shut_off is the one wait a stopped node satisfies
    if state == "shut off":
        assert waiter(engine, clock, Recorder()).wait([plan], Goal("state", state="shut off"), 5)


def test_host_info_from_the_test_driver(engine: LibvirtEngine) -> None:
    info = engine.host_info()
    assert info.emulator == "/usr/bin/test-hv"
    assert "test" in info.domain_types
    assert info.kvm_usable is False  # the test driver offers no kvm domains


CAPS = """<capabilities><host/>
  <guest><os_type>hvm</os_type>
    <arch name='i686'><emulator>/usr/bin/qemu-system-i386</emulator>
      <domain type='qemu'/></arch></guest>
  <guest><os_type>hvm</os_type>
    <arch name='x86_64'><emulator>/usr/bin/qemu-system-x86_64</emulator>
      <domain type='qemu'/><domain type='kvm'/></arch></guest>
</capabilities>"""


def test_host_info_prefers_x86_64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRAGMASH_KVM", "1")
    info = host_info_from_capabilities(CAPS)
    assert info == HostInfo(
        emulator="/usr/bin/qemu-system-x86_64",
        kvm_usable=True,
        arches=("i686", "x86_64"),
        domain_types=("qemu", "kvm"),
    )


def test_kvm_rule_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRAGMASH_KVM", raising=False)
    monkeypatch.setenv("PRAGMASH_NO_KVM", "1")
    assert kvm_usable(["kvm", "qemu"]) is False
    monkeypatch.delenv("PRAGMASH_NO_KVM")
    assert kvm_usable(["qemu"]) is False
    assert kvm_usable(["kvm"]) is Path("/dev/kvm").exists()
    monkeypatch.setenv("PRAGMASH_KVM", "0")
    assert kvm_usable(["kvm"]) is False
    monkeypatch.setenv("PRAGMASH_KVM", "1")
    assert kvm_usable([]) is True


def test_no_guest_agent_on_the_test_driver_reads_as_not_yet(
    engine: LibvirtEngine, prefix: str, tmp_path: Path
) -> None:
    name = prefix + "agent"
    engine.boot(node(name, tmp_path), Recorder().context(tmp_path))
    assert engine.agent_answers(name) is False
    assert engine.agent_answers(prefix + "absent") is False
    assert engine.state_reason(name) == ""  # running: nothing to explain
