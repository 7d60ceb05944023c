"""One VC over several hosts, on libvirt test-driver hosts of different sizes.

Placement within each host's CPUs (spread and packed), refusal beyond the reachable
capacity with nothing taken, an unreachable host warned about and left out, status and
``pragmash hosts`` per host, ``clean`` keeping the leases of nodes it could not reach,
and an ``isolated`` site keeping each VC on one host.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from pathlib import Path

import libvirt
import pytest
from support.multihost import RECIPE, Host, boot, hosts_of, run_cli, write_hosts_site

from pragmash.driver_api import HostVolume, StageContext
from pragmash.drivers.libvirt.storage import (
    DONE_SUFFIX,
    LibvirtStorage,
    base_volume_name,
    node_seed_name,
    node_volume_name,
)
from pragmash.engine.hosts.capacity import locate, placement_input
from pragmash.engine.hosts.router import HostRouter, per_host
from pragmash.engine.run.registry import load_engine
from pragmash.errors import AllocationError, ConfigError, StepError
from pragmash.store.allocation import allocate, current_allocation
from pragmash.store.journal import last_run, steps_of
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.vcin import VcIn, load_vc_in
from pragmash.vc.repository.vcdb import demo_repository_path

pytestmark = pytest.mark.libvirt


# -- site config ------------------------------------------------------------------------


def test_hosts_are_read_and_an_old_site_is_one_implicit_host(tmp_path: Path) -> None:
    site = load_site(write_hosts_site(tmp_path, [Host("vmc-0", 8), Host("vmc-1", 4)]))
    assert [(h.name, h.storage, h.cpus) for h in site.hosts] == [
        ("vmc-0", "shared", None),
        ("vmc-1", "shared", None),
    ]
    assert site.multi_host and site.uri == site.hosts[0].uri
    demo = load_site(None, env={"HOME": "/nonexistent"})
    assert not demo.multi_host
    assert [(h.name, h.uri, h.cpus) for h in demo.hosts] == [("default", demo.uri, 64)]


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('[engine]\nuri = "qemu:///system"\n', "[engine] uri", "[engine] uri and [[hosts]]"),
        ("", "[resources] cpus", "[resources] cpus and [[hosts]]"),
        ('[[hosts]]\nname = "bad name"\nuri = "qemu:///system"\n', "name", "letters, digits"),
        ('[[hosts]]\nname = "h0"\nuri = "qemu:///system"\n', "name", "given twice"),
        ('[[hosts]]\nname = "hx"\nuri = "qemu:///system"\ncpu = 3\n', "cpu", "did you mean"),
        ('[[hosts]]\nname = "hx"\nuri = "qemu:///system"\nstorage = "nfs"\n', "storage", "'pool'"),
    ],
)
def test_bad_hosts_config_names_the_setting(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    path = write_hosts_site(tmp_path, [Host("h0", 4)])
    text = path.read_text()
    if key == "[resources] cpus":
        text = text.replace("[resources]\n", "[resources]\ncpus = 8\n")
    path.write_text(text + extra)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    rendered = info.value.render()
    assert key in rendered and words in rendered, rendered


# -- placement --------------------------------------------------------------------------


def test_spread_places_within_each_hosts_cpus(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("big", 8), Host("mid", 4), Host("small", 2)])
    rc, out, err = boot(site, 10)
    assert rc == 0, out + err
    per_host = hosts_of(site)
    # reserve 1 on each: 7 + 3 + 1 usable; frontend + 10 computes fill all of it
    assert per_host == {"big": 7, "mid": 3, "small": 1}
    assert "placed: big frontend + 6 computes, mid 3 computes, small 1 compute" in out
    status = json.loads(run_cli(site, "status", "calit2", "--json")[1])
    assert {n["name"]: n["host"] for n in status["nodes"]}["calit2-frontend"] == "big"
    assert Counter(n["host"] for n in status["nodes"]) == per_host
    # the simulated boot's note names the URI of every host it booted on, not the first's
    boot_line = next(line for line in out.splitlines() if "staging and vc_driver" in line)
    assert all(h.uri in boot_line for h in load_site(site).hosts), boot_line


def test_a_skipped_disk_step_names_the_host_of_its_nodes(tmp_path: Path) -> None:
    """``fix`` and ``vc_driver/pre_boot`` on a simulated [[hosts]] site: their notes
    name the URI of the host their nodes are on, not the site's first host."""
    site = write_hosts_site(tmp_path, [Host("a", 4), Host("b", 4)])
    recipe = site.parent / "skips.prg"
    recipe.write_text(
        "allocate 2\nfix compute[0] via none\nvc_driver/pre_boot compute[0]\n", encoding="utf-8"
    )
    rc, out, err = run_cli(site, str(recipe), "--vcname", "calit2")
    assert rc == 0, out + err
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    uris = {h.name: h.uri for h in load_site(site).hosts}
    on, other = held.computes[0].host, held.frontend.host
    assert on != other  # spread: the frontend on one host, compute-0 on the other
    skips = [line for line in out.splitlines() if "so there is no disk to" in line]
    assert len(skips) == 2, out
    for line in skips:
        assert f"({uris[on]})" in line and uris[other] not in line, line


def test_spread_goes_to_the_host_with_most_free_first(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 5), Host("b", 9)])
    assert boot(site, 3)[0] == 0
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    # b has 8 free, a 4: frontend b (7 left), then b, b (5 left), then a tie-free b 5 vs a 4
    assert [n.host for n in held.nodes] == ["b", "b", "b", "b"]
    assert boot(site, 4, "other")[0] == 0
    assert hosts_of(site, "other") == {"a": 3, "b": 2}  # ties go to the host listed first


def test_packed_fills_the_frontends_host_first(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 6), Host("b", 9)], placement="packed")
    assert boot(site, 9)[0] == 0
    assert hosts_of(site) == {"b": 8, "a": 2}


def test_a_vc_larger_than_the_reachable_capacity_takes_nothing(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 4), Host("b", 4), Host("gone", 64, up=False)])
    rc, out, err = boot(site, 7)
    assert rc == 2, out + err  # refused before anything was taken: no run to resume
    assert "not enough CPUs" in err and "a 3 of 4 CPUs free (reserve 1)" in err
    assert "left out, unreachable: gone" in err and "nothing was taken" in err
    ledger = Ledger(load_site(site))
    assert current_allocation(ledger, "calit2") is None
    with ledger.snapshot() as conn:
        assert conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
    assert boot(site, 5)[0] == 0  # what fits is still there to take


def test_memory_limits_a_host(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("roomy", 16, 2048), Host("small", 4, 16384)])
    assert boot(site, 2)[0] == 0
    # 1 GiB nodes: roomy's 2 GiB hold two of them although it has CPUs to spare
    assert hosts_of(site) == {"roomy": 2, "small": 1}


def test_an_unreachable_host_is_warned_about_and_left_out(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("down", 32, up=False), Host("up", 4)])
    rc, out, err = boot(site, 2)
    assert rc == 0, out + err
    assert "warning: host down is unreachable, left out of placement" in out
    assert "/nonexistent/pragmash-test/down" in out  # libvirt's own words name the socket
    assert hosts_of(site) == {"up": 3}
    listing = json.loads(run_cli(site, "hosts", "--json")[1])["hosts"]
    by_name = {h["name"]: h for h in listing}
    assert by_name["down"]["reachable"] is False and "down" in by_name["down"]["problem"]
    assert by_name["up"] | {"problem": ""} == by_name["up"]
    assert (by_name["up"]["cpus"], by_name["up"]["cpus_used"], by_name["up"]["cpus_free"]) == (
        4,
        3,
        0,
    )
    assert by_name["up"]["vcs"] == ["calit2"] and by_name["up"]["memory_used_mib"] == 3072


def test_isolated_keeps_a_vc_on_one_host(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 5), Host("b", 6)], private="isolated")
    rc, out, err = boot(site, 3)
    assert rc == 0, out + err
    assert hosts_of(site) == {"b": 4}
    # 4 + 1 CPUs fit the site (a 4 free, b 1 free) but no one host: refused, nothing taken
    rc, out, err = boot(site, 4, "other")
    assert rc == 2
    assert "'isolated', which cannot span hosts" in err
    assert current_allocation(Ledger(load_site(site)), "other") is None


def test_dry_run_shows_the_placement(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3), Host("c", 3, up=False)])
    recipe = tmp_path / "boot.prg"
    recipe.write_text(RECIPE, encoding="utf-8")
    rc, out, err = run_cli(
        site, str(recipe), "--vcname", "calit2", "--num_compute", "2", "--dry-run"
    )
    assert rc == 0, out + err
    assert "placement: a: frontend, compute[1]" in out
    assert "placement: b: compute[0]" in out
    assert "warning: host c is unreachable" in out
    assert current_allocation(Ledger(load_site(site)), "calit2") is None


# -- status, clean with a host gone ---------------------------------------------------------


def test_status_and_clean_with_a_host_gone(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)])
    assert boot(site, 3)[0] == 0
    assert hosts_of(site) == {"a": 2, "b": 2}
    (tmp_path / "b.xml").rename(tmp_path / "b.off")  # host b stops answering

    rc, out, _err = run_cli(site, "status", "calit2")
    assert rc == 0
    assert "HOST" in out
    lines = [line for line in out.splitlines() if "calit2-compute-" in line]
    assert sum(" b " in line and "unreachable" in line for line in lines) == 2
    data = json.loads(run_cli(site, "status", "calit2", "--json")[1])
    assert {n["name"]: n["engine_state"] for n in data["nodes"] if n["host"] == "b"} == {
        "calit2-compute-0": "unreachable",
        "calit2-compute-2": "unreachable",
    }

    rc, out, err = run_cli(site, "clean", "calit2")
    assert rc == 3
    assert "kept calit2-compute-0 and its leases: host b unreachable" in out
    assert "not clean yet" in err
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    # the nodes on host b keep their leases (and the VC its address); a's are released
    assert sorted((n.name, n.host) for n in held.nodes) == [
        ("calit2-compute-0", "b"),
        ("calit2-compute-2", "b"),
    ]

    (tmp_path / "b.off").rename(tmp_path / "b.xml")
    rc, out, err = run_cli(site, "clean", "calit2")
    assert rc == 0, out + err
    assert "calit2 is clean" in out
    assert current_allocation(Ledger(load_site(site)), "calit2") is None


def test_one_host_site_records_its_implicit_host(tmp_path: Path) -> None:
    from support.runenv import make_env

    env = make_env(tmp_path / "site")
    recipe = env.recipe("allocate 1\n")
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    status = json.loads(env.cli("status", "calit2", "--json").out)
    assert {n["host"] for n in status["nodes"]} == {"default"}
    hosts = json.loads(env.cli("hosts", "--json").out)["hosts"]
    assert [(h["name"], h["cpus"], h["cpus_used"]) for h in hosts] == [("default", 16, 2)]
    # the table shows the memory used that --json has, not '-' (no memory limit is set)
    used = hosts[0]["memory_used_mib"]
    assert used > 0
    row = env.cli("hosts").out.splitlines()[1]
    assert f" {used} MiB " in row, row


def test_the_journal_records_each_nodes_host(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)])
    assert boot(site, 1)[0] == 0
    ledger = Ledger(load_site(site))
    run = last_run(ledger, "calit2")
    assert run is not None
    allocate_step = steps_of(ledger, run.id)[0]
    assert allocate_step.products["hosts"] == "calit2-frontend=a calit2-compute-0=b"


def test_shutdown_and_list_go_on_without_a_host(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)])
    assert boot(site, 1)[0] == 0
    (tmp_path / "b.xml").rename(tmp_path / "b.off")
    rc, out, err = run_cli(site, "shutdown", "calit2", "--timeout", "1")
    assert rc == 3
    assert "calit2-compute-0: not asked (host b unreachable" in out
    assert "already off: calit2-frontend (absent)" in err  # host a answered
    assert "did not stop within 1 s: calit2-compute-0" in err
    rc, out, _err = run_cli(site, "list")
    assert rc == 0 and "calit2" in out


def test_a_step_on_a_node_of_an_unreachable_host_names_the_host(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)])
    assert boot(site, 1)[0] == 0
    (tmp_path / "b.xml").rename(tmp_path / "b.off")
    recipe = tmp_path / "state.prg"
    recipe.write_text("allocate 1\nve_driver/state frontend\nve_driver/state compute\n")
    rc, out, err = run_cli(site, str(recipe), "--vcname", "calit2")
    assert rc == 3, out + err
    assert "calit2-frontend: absent" in out  # host a's node went on
    assert "host b (test://" in err and "is unreachable" in err
    rc, out, err = run_cli(site, "resume", "calit2")
    assert rc == 3 and "host b (test://" in err  # named again; nothing forgotten
    (tmp_path / "b.off").rename(tmp_path / "b.xml")
    rc, out, err = run_cli(site, "resume", "calit2")
    assert rc == 0, out + err
    assert "calit2-compute-0: absent" in out  # asked of host b, back again


def test_hosts_are_worked_on_at_once(tmp_path: Path) -> None:
    site = load_site(write_hosts_site(tmp_path, [Host("a", 3), Host("b", 3)]))
    ledger = Ledger(site)
    router = load_engine(site)
    assert isinstance(router, HostRouter)
    held = allocate(ledger, site, "calit2", _vcin(), 1, hosts=placement_input(site, router).hosts)
    assert {n.host for n in held.nodes} == {"a", "b"}
    locate(router, held)  # what a command does once it has read the allocation
    meet = threading.Barrier(2, timeout=10)  # broken unless both hosts' work overlaps

    def work(name: str) -> str:
        meet.wait()
        return name.upper()

    names = [n.name for n in held.nodes]
    assert per_host(router, names, work) == {n: n.upper() for n in names}


def _vcin() -> VcIn:
    return load_vc_in(demo_repository_path() / "calit2" / "vc-in.xml")


def test_allocations_at_once_never_overfill_a_host(tmp_path: Path) -> None:
    site = load_site(write_hosts_site(tmp_path, [Host("a", 4), Host("b", 4)]))
    router = load_engine(site)
    hosts = placement_input(site, router).hosts
    Ledger(site).close()  # made once here: the runs below find it, as runs on a site do
    start = threading.Barrier(3, timeout=10)
    outcomes: dict[str, str] = {}

    def take(vcname: str) -> None:
        ledger = Ledger(site)  # one per thread, as separate runs would have
        start.wait()
        try:
            allocate(ledger, site, vcname, _vcin(), 2, hosts=hosts)
            outcomes[vcname] = "taken"
        except AllocationError as err:
            outcomes[vcname] = err.message

    threads = [threading.Thread(target=take, args=(f"vc{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 3 usable CPUs a host, 3 per VC: two VCs fit, the third is refused, none overfills
    assert sorted(o == "taken" for o in outcomes.values()) == [False, True, True]
    ledger = Ledger(site)
    with ledger.snapshot() as conn:
        use = dict(conn.execute("SELECT host, SUM(cpus) FROM nodes GROUP BY host").fetchall())
        assert conn.execute("SELECT COUNT(*) FROM vcs").fetchone()[0] == 2
    assert all(cpus <= 3 for cpus in use.values()) and sum(use.values()) == 6


def test_clean_removes_a_pool_hosts_node_volumes_whose_domain_was_undefined_by_hand(
    tmp_path: Path,
) -> None:
    """The ledger says which nodes are on a ``storage = "pool"`` host: their volumes go
    even when their domains are gone already (libvirt's shared in-process test host)."""
    pool = f"pragmash-clean-{tmp_path.name[-12:]}"
    extra = (
        f'\n[[hosts]]\nname = "h2"\nuri = "test:///default"\nstorage = "pool"\n'
        f'pool = "{pool}"\npool_path = "/pool/{pool}"\n'
    )
    site = write_hosts_site(tmp_path, [Host("h1", 2)], extra=extra, private="isolated")
    recipe = tmp_path / "allocate.prg"
    recipe.write_text("allocate $num_compute\n", encoding="utf-8")
    rc, _out, err = run_cli(site, str(recipe), "--vcname", "calit2", "--num_compute", "2")
    assert rc == 0, err
    held = current_allocation(Ledger(load_site(site)), "calit2")
    assert held is not None
    on_h2 = [n.name for n in held.nodes if n.host == "h2"]
    assert on_h2
    conn = libvirt.open("test:///default")
    try:  # what a boot leaves on the pool host: the disk and seed volumes (no domain)
        storage = LibvirtStorage(lambda: conn, pool, f"/pool/{pool}", tmp_path, lock_dir=tmp_path)
        for volume in [f(n) for n in on_h2 for f in (node_volume_name, node_seed_name)]:
            storage._create(storage.pool(), volume, 4096)
        storage._create(storage.pool(), "someone-else.qcow2", 4096)
        rc, out, err = run_cli(site, "clean", "calit2", "--yes")
        assert rc == 0, err
        left = sorted(v.name() for v in storage.pool().listAllVolumes(0))
        assert left == ["someone-else.qcow2"]
        for name in on_h2:
            assert f"removed {node_volume_name(name)} from pool {pool} on h2" in out
    finally:
        for vol in conn.storagePoolLookupByName(pool).listAllVolumes(0):
            vol.delete(0)
        conn.storagePoolLookupByName(pool).destroy()
        conn.storagePoolLookupByName(pool).undefine()
        conn.close()


def test_cache_prune_removes_a_pool_hosts_unused_bases_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    """Per host: a base a node's volume is backed by stays, one a run holds locked stays,
    an unused one goes (its ``.done`` too); ``--dry-run`` removes nothing."""
    pool = f"pragmash-prune-{tmp_path.name[-12:]}"
    extra = (
        f'\n[[hosts]]\nname = "h2"\nuri = "test:///default"\nstorage = "pool"\n'
        f'pool = "{pool}"\npool_path = "/pool/{pool}"\n'
    )
    site = write_hosts_site(tmp_path, [Host("h1", 2)], extra=extra, private="isolated")
    conn = libvirt.open("test:///default")
    storage = LibvirtStorage(
        lambda: conn, pool, f"/pool/{pool}", tmp_path, lock_dir=load_site(site).state_dir
    )
    used, unused, sending = (base_volume_name(d * 64, "raw") for d in "abc")
    try:
        made = storage.pool()
        for base in (used, unused, sending):
            storage._create(made, base, 1 << 20)
            storage._create(made, base + DONE_SUFFIX, 0)
        made.createXML(
            "<volume><name>calit2-compute-0.qcow2</name><capacity>4096</capacity>"
            "<target><format type='qcow2'/></target><backingStore>"
            f"<path>/pool/{pool}/{used}</path><format type='raw'/></backingStore></volume>",
            0,
        )
        every = sorted(v.name() for v in made.listAllVolumes(0))

        rc, out, err = run_cli(site, "cache", "prune", "--dry-run")
        assert rc == 0, err
        assert f"h2: would remove {unused} from pool {pool}" in out
        assert sorted(v.name() for v in made.listAllVolumes(0)) == every

        with storage._base_lock(sending):  # another process sending that base now
            rc, out, err = run_cli(site, "cache", "prune")
        assert rc == 0, err
        assert f"h2: kept {used}: used by calit2-compute-0.qcow2" in out
        assert f"h2: kept {sending}: a run is sending it" in out
        assert f"h2: removed {unused} from pool {pool} (" in out  # its allocation: the test
        assert f"h2 (pool {pool}): 1 removed, 2 kept; freed " in out  # host's volumes have 0
        left = {v.name() for v in made.listAllVolumes(0)}
        assert left == set(every) - {unused, unused + DONE_SUFFIX}
    finally:
        for vol in conn.storagePoolLookupByName(pool).listAllVolumes(0):
            vol.delete(0)
        conn.storagePoolLookupByName(pool).destroy()
        conn.storagePoolLookupByName(pool).undefine()
        conn.close()


def test_a_node_disk_is_not_put_onto_a_base_pruned_meanwhile(tmp_path: Path) -> None:
    """Between put_base and put_node_disk a prune may take the base: said, not a disk
    backed by nothing."""
    pool = f"pragmash-gone-{tmp_path.name[-12:]}"
    conn = libvirt.open("test:///default")
    storage = LibvirtStorage(lambda: conn, pool, f"/pool/{pool}", tmp_path, lock_dir=tmp_path)
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * 65536)
    overlay = tmp_path / "n.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(overlay)],
        check=True,
    )
    name = base_volume_name("d" * 64, "raw")
    gone = HostVolume(pool, name, f"/pool/{pool}/{name}", "raw")
    ctx = StageContext("calit2", tmp_path, tmp_path / "vc-out.xml")
    try:
        with pytest.raises(StepError, match=f"base {name} left pool {pool} on test:///default"):
            storage.put_node_disk("calit2-compute-0", overlay, gone, ctx)
        assert storage.pool().listAllVolumes(0) == []
    finally:
        conn.storagePoolLookupByName(pool).destroy()
        conn.storagePoolLookupByName(pool).undefine()
        conn.close()
