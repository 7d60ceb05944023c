"""Many processes allocating at once from one small pool against one ledger file.

The promise under test: BEGIN IMMEDIATE plus UNIQUE constraints mean no lease is ever
handed out twice, the losers get the exhaustion message and take nothing, and the
ledger adds up afterwards.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, cast

import pytest

from pragmash.errors import AllocationError
from pragmash.store.allocation import allocate, current_allocation
from pragmash.store.ledger import Ledger
from pragmash.store.pools import pool_summary
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.vcin import NodeTemplate, VcIn

PROCESSES = 20
POOL = 5
CPUS_EACH = 2


def site_toml() -> str:
    public = ",\n".join(
        f'  {{ ip = "192.0.2.{10 + i}", fqdn = "vc-{i}.example.org" }}' for i in range(POOL)
    )
    return f"""
[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
vlans = [100, 199]
public = [
{public}
]

[resources]
cpus = 256
reserve = 2
"""


def make_vcin() -> VcIn:
    def node(role: Any) -> NodeTemplate:
        return NodeTemplate(role, "<domain/>", f"{role}-t", "kvm", 1, 1048576, (), (), ())

    return VcIn(
        path=Path("/repo/vc/vc-in.xml"),
        vc_type="Local Beowulf",
        engine="kvm",
        virt_type="hvm",
        arch="x86_64",
        driver="rocks6_client",
        frontend=node("frontend"),
        compute=node("compute"),
        boot_wait_seconds=None,
        private_ip="10.1.1.1",
        private_netmask="255.255.0.0",
        frontend_public_iface="eth1",
    )


def worker(
    site_path: str,
    state_dir: str,
    vcname: str,
    barrier: Barrier,
    results: Any,
    ledger: Ledger | None,
) -> None:
    """One process: load the site, wait for the others, allocate, report what happened."""
    try:
        site = load_site(Path(site_path), env={"PRAGMASH_STATE_DIR": state_dir})
        if ledger is None:
            ledger = Ledger(site)
        barrier.wait(timeout=120)
        got = allocate(ledger, site, vcname, make_vcin(), CPUS_EACH)
        macs = [m for n in got.nodes for m in n.macs]
        results.put((vcname, "ok", (got.public.ip, got.vlan, macs)))
    except AllocationError as exc:
        results.put((vcname, "short", exc.message))
    except Exception as exc:
        results.put((vcname, "crash", repr(exc)))


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_concurrent_allocations_never_share_a_lease(tmp_path: Path, method: str) -> None:
    site_path = tmp_path / "site.toml"
    site_path.write_text(site_toml())
    state_dir = tmp_path / "state"
    site = load_site(site_path, env={"PRAGMASH_STATE_DIR": str(state_dir)})
    # with fork, the children inherit one Ledger object opened by the parent (pid check);
    # with spawn, each opens its own.
    shared = Ledger(site) if method == "fork" else None
    if shared is not None:
        assert shared.connection is not None

    ctx = cast(SpawnContext | ForkContext, multiprocessing.get_context(method))
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=worker,
            args=(str(site_path), str(state_dir), f"vc{i:02d}", barrier, results, shared),
        )
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0

    crashes = [o for o in outcomes if o[1] == "crash"]
    assert crashes == []
    wins = {name: lease for name, kind, lease in outcomes if kind == "ok"}
    losses = {name: message for name, kind, message in outcomes if kind == "short"}
    assert len(wins) == POOL
    assert len(losses) == PROCESSES - POOL

    ips = [lease[0] for lease in wins.values()]
    vlans = [lease[1] for lease in wins.values()]
    macs = [mac for lease in wins.values() for mac in lease[2]]
    assert sorted(ips) == [f"192.0.2.{10 + i}" for i in range(POOL)]
    assert len(set(vlans)) == POOL
    assert len(macs) == len(set(macs)) == POOL * (2 + CPUS_EACH)

    expected = (
        f"no free public address: all {POOL} in the site pool are held "
        f"(by {', '.join(sorted(wins))})"
    )
    assert set(losses.values()) == {expected}

    ledger = Ledger(site)
    for name in losses:
        assert current_allocation(ledger, name) is None
    for name, (ip, vlan, vc_macs) in wins.items():
        held = current_allocation(ledger, name)
        assert held is not None
        assert (held.public.ip, held.vlan) == (ip, vlan)
        assert [m for n in held.nodes for m in n.macs] == vc_macs

    summary = pool_summary(ledger, site)
    assert summary["public"] == {"total": POOL, "held": POOL, "free": 0}
    assert summary["vlans"] == {"total": 100, "held": POOL, "free": 100 - POOL}
    assert summary["cpus"]["held"] == POOL * (CPUS_EACH + 1)
    assert summary["cpus"]["held"] + summary["cpus"]["free"] == summary["cpus"]["total"]
    assert summary["macs"] == {"held": POOL * (2 + CPUS_EACH)}
    assert summary["vcs"] == {"held": POOL}
    lease_rows = ledger.connection.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
    assert lease_rows == POOL * (1 + 1 + 2 + CPUS_EACH)
