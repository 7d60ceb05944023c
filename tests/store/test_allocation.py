"""Allocation against a real SQLite ledger: basics, idempotency, shortages, release, vc-out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pragmash.errors import AllocationError, UserError
from pragmash.store.allocation import (
    allocate,
    allocated_vcs,
    build_vc_out,
    current_allocation,
    plan_compute_cpus,
    release,
)
from pragmash.store.ledger import Ledger
from pragmash.store.pools import pool_summary
from pragmash.store.private_ips import compute_private_ips
from pragmash.vc.config.site import SiteConfig, load_site
from pragmash.vc.formats.names import compute_name, frontend_name, validate_name
from pragmash.vc.formats.vcin import NodeTemplate, VcIn

SMALL = Path(__file__).parents[1] / "data" / "sites" / "small.toml"


def node(role: str, vcpus: int) -> NodeTemplate:
    return NodeTemplate(
        role=role,  # type: ignore[arg-type]
        domain_xml="<domain type='kvm'/>",
        name=f"{role}-template",
        domain_type="kvm",
        vcpus=vcpus,
        memory_kib=1048576,
        interfaces=(),
        disk_sources=(),
        disk_paths=(),
    )


def make_vcin(
    *,
    compute_vcpus: int | None = 1,
    frontend_vcpus: int = 1,
    private_ip: str = "10.1.1.1",
    private_netmask: str = "255.255.0.0",
) -> VcIn:
    return VcIn(
        path=Path("/repo/calit2/vc-in.xml"),
        vc_type="Local Beowulf",
        engine="kvm",
        virt_type="hvm",
        arch="x86_64",
        driver="rocks6_client",
        frontend=node("frontend", frontend_vcpus),
        compute=None if compute_vcpus is None else node("compute", compute_vcpus),
        boot_wait_seconds=300,
        private_ip=private_ip,
        private_netmask=private_netmask,
        frontend_public_iface="eth1",
    )


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return load_site(SMALL, env={"PRAGMASH_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture
def ledger(site: SiteConfig) -> Ledger:
    return Ledger(site)


def test_allocate_basics(ledger: Ledger, site: SiteConfig) -> None:
    vcin = make_vcin()
    got = allocate(ledger, site, "calit2", vcin, 3)
    assert got.vcname == "calit2"
    assert got.cpus == 3
    assert got.vlan == 10
    assert got.public.ip == "192.0.2.10"
    assert got.public.fqdn == "vc-a.example.org"
    fe = got.frontend
    assert (fe.name, fe.role, fe.index, fe.cpus) == ("calit2-frontend", "frontend", None, 1)
    assert fe.private_ip == "10.1.1.1"
    assert fe.public_ip == "192.0.2.10"
    assert len(fe.macs) == 2
    assert [c.name for c in got.computes] == [f"calit2-compute-{i}" for i in range(3)]
    assert [c.index for c in got.computes] == [0, 1, 2]
    # compute addresses count down from .254 of the frontend's /24
    assert [c.private_ip for c in got.computes] == ["10.1.1.254", "10.1.1.253", "10.1.1.252"]
    assert all(c.public_ip is None and len(c.macs) == 1 for c in got.computes)
    macs = [m for n in got.nodes for m in n.macs]
    assert len(set(macs)) == 5
    assert all(m.startswith("7a:77:6e:") and len(m) == 17 for m in macs)
    assert ledger.path.exists()
    assert current_allocation(ledger, "calit2") == got


def test_allocation_survives_a_new_ledger_object(ledger: Ledger, site: SiteConfig) -> None:
    got = allocate(ledger, site, "calit2", make_vcin(), 2)
    assert current_allocation(Ledger(site), "calit2") == got
    assert current_allocation(ledger, "other") is None


def test_allocate_is_idempotent_for_the_same_cpus(ledger: Ledger, site: SiteConfig) -> None:
    first = allocate(ledger, site, "calit2", make_vcin(), 2)
    again = allocate(Ledger(site), site, "calit2", make_vcin(), 2)
    assert again == first
    assert pool_summary(ledger, site)["public"]["held"] == 1


def test_allocate_with_different_cpus_says_to_clean(ledger: Ledger, site: SiteConfig) -> None:
    allocate(ledger, site, "calit2", make_vcin(), 2)
    with pytest.raises(AllocationError) as info:
        allocate(ledger, site, "calit2", make_vcin(), 4)
    assert "holds an allocation of 2 compute CPUs" in info.value.message
    assert "pragmash clean calit2" in info.value.message
    assert info.value.stage == "ve_driver/allocate"


def test_bad_vc_name_is_refused(ledger: Ledger, site: SiteConfig) -> None:
    with pytest.raises(UserError, match="bad VC name"):
        allocate(ledger, site, "bad name/..", make_vcin(), 1)


def _snapshot(ledger: Ledger) -> dict[str, list[tuple[object, ...]]]:
    conn = ledger.connection
    return {
        table: [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
        for table in ("vcs", "nodes", "leases", "counters")
    }


def test_public_address_shortage_takes_nothing(ledger: Ledger, site: SiteConfig) -> None:
    site = dataclasses.replace(site, vlan_last=20)
    for name in ("a", "b", "c"):
        allocate(ledger, site, name, make_vcin(), 1)
    before = _snapshot(ledger)
    with pytest.raises(AllocationError) as info:
        allocate(ledger, site, "d", make_vcin(), 1)
    assert info.value.message == (
        "no free public address: all 3 in the site pool are held (by a, b, c)"
    )
    assert _snapshot(ledger) == before
    assert current_allocation(ledger, "d") is None


def test_vlan_shortage_takes_nothing(ledger: Ledger, site: SiteConfig) -> None:
    site = dataclasses.replace(site, vlan_first=10, vlan_last=11)
    allocate(ledger, site, "a", make_vcin(), 1)
    allocate(ledger, site, "b", make_vcin(), 1)
    before = _snapshot(ledger)
    with pytest.raises(AllocationError) as info:
        allocate(ledger, site, "c", make_vcin(), 1)
    assert info.value.message == "no free VLAN: all 2 in 10..11 are held (by a, b)"
    assert _snapshot(ledger) == before


def test_cpu_shortage_takes_nothing(ledger: Ledger, site: SiteConfig) -> None:
    # 16 CPUs, reserve 2: 14 usable. "a" holds 8 + 1 frontend = 9, 5 left.
    allocate(ledger, site, "a", make_vcin(), 8)
    before = _snapshot(ledger)
    with pytest.raises(AllocationError) as info:
        allocate(ledger, site, "b", make_vcin(), 5)
    assert info.value.message == "not enough CPUs: asked 5 (+1 frontend), 5 free of 16 (reserve 2)"
    assert _snapshot(ledger) == before
    # exactly what is left fits
    assert allocate(ledger, site, "b", make_vcin(), 4).cpus == 4
    assert pool_summary(ledger, site)["cpus"]["free"] == 0


def test_every_shortage_is_reported_at_once(ledger: Ledger, site: SiteConfig) -> None:
    site = dataclasses.replace(site, vlan_first=10, vlan_last=10, public_pool=site.public_pool[:1])
    allocate(ledger, site, "a", make_vcin(), 1)
    with pytest.raises(AllocationError) as info:
        allocate(ledger, site, "b", make_vcin(), 50)
    assert "no free public address" in info.value.message
    assert "no free VLAN" in info.value.message
    assert "not enough CPUs: asked 50" in info.value.message


def test_release_frees_everything_and_is_repeatable(ledger: Ledger, site: SiteConfig) -> None:
    got = allocate(ledger, site, "a", make_vcin(), 3)
    allocate(ledger, site, "c", make_vcin(), 1)
    assert allocated_vcs(ledger) == ["a", "c"]
    assert release(ledger, "a") is True
    assert allocated_vcs(ledger) == ["c"]
    assert release(ledger, "a") is False
    assert current_allocation(ledger, "a") is None
    summary = pool_summary(ledger, site)
    assert summary["public"] == {"total": 3, "held": 1, "free": 2}
    assert summary["cpus"]["held"] == 2
    assert summary["macs"]["held"] == 3
    # the address and VLAN come back; MACs are never reused (the counter moves on)
    again = allocate(ledger, site, "b", make_vcin(), 3)
    assert again.public == got.public
    assert again.vlan == got.vlan
    old = {m for n in got.nodes for m in n.macs}
    assert old.isdisjoint(m for n in again.nodes for m in n.macs)


def test_macs_are_unique_across_vcs(ledger: Ledger, site: SiteConfig) -> None:
    site = dataclasses.replace(site, cpu_capacity=64)
    seen: list[str] = []
    for name in ("a", "b", "c"):
        got = allocate(ledger, site, name, make_vcin(), 4)
        seen += [m for n in got.nodes for m in n.macs]
    assert len(seen) == len(set(seen)) == 18


def test_mac_counter_skips_held_macs(ledger: Ledger, site: SiteConfig) -> None:
    first = allocate(ledger, site, "a", make_vcin(), 1)
    # rewind the counter, as after a wrap-around: the next VC must not reuse a's MACs
    with ledger.transaction() as conn:
        conn.execute("UPDATE counters SET value = 0 WHERE name = 'mac'")
    second = allocate(ledger, site, "b", make_vcin(), 1)
    held = {m for n in first.nodes for m in n.macs}
    assert held.isdisjoint(m for n in second.nodes for m in n.macs)


def test_private_ips_skip_the_frontends_address(ledger: Ledger, site: SiteConfig) -> None:
    vcin = make_vcin(private_ip="10.1.1.253")
    got = allocate(ledger, site, "a", vcin, 3)
    assert [c.private_ip for c in got.computes] == ["10.1.1.254", "10.1.1.252", "10.1.1.251"]
    assert got.frontend.private_ip == "10.1.1.253"


def test_private_ips_follow_the_seed_example(ledger: Ledger, site: SiteConfig) -> None:
    # the seed's vc-out example: frontend 10.1.0.0/16, computes .254 and .253
    got = allocate(ledger, site, "a", make_vcin(private_ip="10.1.0.0"), 2)
    assert [c.private_ip for c in got.computes] == ["10.1.0.254", "10.1.0.253"]


def test_private_ips_stay_inside_a_small_private_network(ledger: Ledger, site: SiteConfig) -> None:
    vcin = make_vcin(private_ip="10.1.1.1", private_netmask="255.255.255.248")
    got = allocate(ledger, site, "a", vcin, 2)
    assert [c.private_ip for c in got.computes] == ["10.1.1.6", "10.1.1.5"]
    with pytest.raises(AllocationError, match="not enough private addresses"):
        allocate(ledger, site, "b", vcin, 6)
    assert current_allocation(ledger, "b") is None


@pytest.mark.parametrize(
    ("smp", "max_per_node", "template", "cpus", "expected"),
    [
        (False, 1, 1, 0, []),
        (False, 1, 1, 3, [1, 1, 1]),
        (False, 8, 1, 3, [1, 1, 1]),  # without SMP the site's maximum does not apply
        (False, 1, 2, 5, [2, 2, 1]),  # the template's vCPUs, remainder last
        (True, 4, 1, 10, [4, 4, 2]),
        (True, 4, 1, 8, [4, 4]),
        (True, 2, 4, 6, [4, 2]),  # template bigger than the site maximum wins
    ],
)
def test_plan_compute_cpus(
    site: SiteConfig, smp: bool, max_per_node: int, template: int, cpus: int, expected: list[int]
) -> None:
    site = dataclasses.replace(site, smp=smp, max_cpus_per_node=max_per_node)
    assert plan_compute_cpus(site, make_vcin(compute_vcpus=template), cpus) == expected


def test_plan_without_compute_template(site: SiteConfig) -> None:
    vcin = make_vcin(compute_vcpus=None)
    assert plan_compute_cpus(site, vcin, 0) == []
    with pytest.raises(AllocationError, match="has no <compute>"):
        plan_compute_cpus(site, vcin, 2)
    with pytest.raises(AllocationError, match="expected 0 or more"):
        plan_compute_cpus(site, vcin, -1)


def test_smp_packing_in_allocation(ledger: Ledger, site: SiteConfig) -> None:
    site = dataclasses.replace(site, smp=True, max_cpus_per_node=4)
    got = allocate(ledger, site, "a", make_vcin(), 10)
    assert [c.cpus for c in got.computes] == [4, 4, 2]
    assert [c.private_ip for c in got.computes] == ["10.1.1.254", "10.1.1.253", "10.1.1.252"]
    assert pool_summary(ledger, site)["cpus"]["held"] == 11


def test_frontend_only_vc(ledger: Ledger, site: SiteConfig) -> None:
    got = allocate(ledger, site, "solo", make_vcin(compute_vcpus=None, frontend_vcpus=2), 0)
    assert got.computes == ()
    assert got.total_cpus == 2


def test_build_vc_out(ledger: Ledger, site: SiteConfig) -> None:
    vcin = make_vcin()
    got = allocate(ledger, site, "calit2", vcin, 2)
    out = build_vc_out(got, vcin, site)
    fe = out.frontend
    assert fe.name == "calit2-frontend"
    assert (fe.public_fqdn, fe.public_ip) == ("vc-a.example.org", "192.0.2.10")
    assert (fe.public_netmask, fe.public_gw) == ("255.255.255.0", "192.0.2.1")
    assert (fe.private_ip, fe.private_netmask) == ("10.1.1.1", "255.255.0.0")
    assert (fe.private_mac, fe.public_mac) == got.frontend.macs
    assert [(c.name, c.ip, c.cpus) for c in out.computes] == [
        ("calit2-compute-0", "10.1.1.254", 1),
        ("calit2-compute-1", "10.1.1.253", 1),
    ]
    assert [c.mac for c in out.computes] == [c.macs[0] for c in got.computes]
    assert (out.dns_ip, out.dns_search, out.dns_domain) == (
        "192.0.2.53",
        "example.org",
        "example.org",
    )


def test_pool_summary_adds_up(ledger: Ledger, site: SiteConfig) -> None:
    assert pool_summary(ledger, site)["public"] == {"total": 3, "held": 0, "free": 3}
    allocate(ledger, site, "a", make_vcin(), 2)
    allocate(ledger, site, "b", make_vcin(), 3)
    summary = pool_summary(ledger, site)
    assert summary["public"] == {"total": 3, "held": 2, "free": 1}
    assert summary["vlans"] == {"total": 3, "held": 2, "free": 1}
    assert summary["cpus"] == {"total": 14, "capacity": 16, "reserve": 2, "held": 7, "free": 7}
    assert summary["macs"] == {"held": 9}
    assert summary["vcs"] == {"held": 2}


@pytest.mark.parametrize("name", ["calit2", "a", "VC_1-x", "9" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name("VC", name) == name


@pytest.mark.parametrize("name", ["", "-a", "_a", "a b", "a/b", "a.b", "9" * 64, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UserError, match="bad node name"):
        validate_name("node", name)


def test_node_names() -> None:
    assert frontend_name("calit2") == "calit2-frontend"
    assert compute_name("calit2", 3) == "calit2-compute-3"


def test_more_computes_than_a_slash_24_go_on_below_it() -> None:
    """Past the frontend's /24 (253 computes), addresses count down through the /16."""
    ips = compute_private_ips(make_vcin(private_ip="10.1.1.1"), 256)
    assert ips[:2] == ["10.1.1.254", "10.1.1.253"] and ips[252] == "10.1.1.2"
    assert ips[253:] == ["10.1.0.254", "10.1.0.253", "10.1.0.252"]
    assert len(set(ips)) == 256 and "10.1.1.1" not in ips


def test_past_the_slash_24s_below_addresses_go_on_above() -> None:
    """Below the frontend's /24 come the /24s under it, nearest first, then those above."""
    ips = compute_private_ips(make_vcin(private_ip="10.1.1.1"), 253 + 254 + 2)
    assert ips[253] == "10.1.0.254" and ips[253 + 253] == "10.1.0.1"
    assert ips[-2:] == ["10.1.2.254", "10.1.2.253"]
    assert len(set(ips)) == len(ips)
