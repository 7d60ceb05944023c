"""NoCloud seeds: what each node's meta-data, user-data and network-config hold, that
cloud-init's own schema accepts them, that hostile values stay values, the cidata
volume itself, the domain's read-only seed disk, [delivery], and a seeded boot step
that launches no libguestfs appliance."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pragmash.driver_api import NodePlan, SeedPlan, StageContext
from pragmash.drivers.distros.cloud_init import CloudInit
from pragmash.drivers.distros.ubuntu_cloud import NETPLAN_PATH, UbuntuCloud
from pragmash.errors import ConfigError, StepError
from pragmash.images import inject
from pragmash.images.libvirt_xml.domain import render_domain
from pragmash.images.nocloud import (
    Seed,
    dump_yaml,
    instance_nonce,
    node_seed,
    read_cloud_config,
    write_seed,
)
from pragmash.vc.config.delivery import read_delivery
from pragmash.vc.formats.vcout import ComputeOut, FrontendOut, VcOut, vc_out_to_bytes

yaml = pytest.importorskip("yaml")

SCHEMA_DIRS = [
    Path(__file__).resolve().parents[2] / ".venv/share/cloud-init/schemas",
    Path("/usr/lib/python3/dist-packages/cloudinit/config/schemas"),
]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk7 admin@site"
FE_MACS = ("7a:77:6e:40:00:08", "7a:77:6e:40:00:07")
C0_MAC = "7a:77:6e:40:00:14"
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def decided(**changes: Any) -> VcOut:
    fe = FrontendOut(
        name="calit2-fe",
        public_fqdn="calit2-119-222.ucsd.edu",
        public_ip="137.110.119.222",
        public_netmask="255.255.255.0",
        public_gw="137.110.119.1",
        public_mac=FE_MACS[1],
        private_ip="10.1.1.1",
        private_netmask="255.255.0.0",
        private_mac=FE_MACS[0],
    )
    base = VcOut(
        frontend=fe,
        computes=(ComputeOut("calit2-c0", C0_MAC, "10.1.1.254", 1),),
        dns_ip="8.8.8.8",
        dns_search="local",
        dns_domain="",
        key=KEY,
    )
    return VcOut(**{**base.__dict__, **changes})


def plan(role: str = "frontend", **changes: Any) -> NodePlan:
    node = NodePlan(
        name="calit2-fe" if role == "frontend" else "calit2-c0",
        role=role,  # type: ignore[arg-type]
        index=None if role == "frontend" else 0,
        cpus=1,
        template_xml=DOMAIN,
        macs=FE_MACS if role == "frontend" else (C0_MAC,),
        networks=("calit2-private", "bridge:br0") if role == "frontend" else ("calit2-private",),
        disks=("/tmp/disk.qcow2",),
        domain_type="qemu",
        private_ip="10.1.1.1" if role == "frontend" else "10.1.1.254",
        public_ip="137.110.119.222" if role == "frontend" else None,
        authorized_keys=(KEY,),
    )
    return NodePlan(**{**node.__dict__, **changes})


DOMAIN = """<domain type='kvm'><name>t</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices>
<disk type='file' device='disk'><source file='x.img'/><target dev='vda' bus='virtio'/></disk>
<interface type='bridge'><source bridge='eth0'/></interface>
<interface type='bridge'><source bridge='eth1'/></interface>
</devices></domain>"""


def seed_of(node: NodePlan, vc_out: VcOut | None = None, **kw: Any) -> Seed:
    vc = vc_out or decided()
    return node_seed(node, vc, "calit2-fe-abc", {"/root/vc-out.xml": vc_out_to_bytes(vc)}, **kw)


def read_back(seed: Seed) -> dict[str, Any]:
    """The three files as cloud-init reads them (PyYAML's safe loader)."""
    files = seed.files()
    assert files["user-data"].startswith(b"#cloud-config\n")
    return {name: yaml.safe_load(content) for name, content in files.items()}


# -- what the documents hold -------------------------------------------------------------


def test_frontend_seed_holds_the_allocation() -> None:
    docs = read_back(seed_of(plan()))
    assert docs["meta-data"] == {"instance-id": "calit2-fe-abc", "local-hostname": "calit2-119-222"}
    net = docs["network-config"]
    assert net["version"] == 2
    private, public = net["ethernets"].values()
    assert private["match"] == {"macaddress": FE_MACS[0]}
    assert private["addresses"] == ["10.1.1.1/16"]
    assert "routes" not in private
    assert public["match"] == {"macaddress": FE_MACS[1]}
    assert public["addresses"] == ["137.110.119.222/24"]
    assert public["routes"] == [{"to": "0.0.0.0/0", "via": "137.110.119.1"}]
    assert public["nameservers"] == {"addresses": ["8.8.8.8"], "search": ["local"]}
    user = docs["user-data"]
    assert user["hostname"] == "calit2-119-222"
    assert user["fqdn"] == "calit2-119-222.ucsd.edu"
    assert user["disable_root"] is False
    assert user["users"][1] == {"name": "root", "ssh_authorized_keys": [KEY]}
    files = {f["path"]: f for f in user["write_files"]}
    assert files["/root/vc-out.xml"]["content"].encode() == vc_out_to_bytes(decided())
    hosts = files["/etc/hosts"]["content"].splitlines()
    assert "137.110.119.222  calit2-119-222.ucsd.edu" in hosts
    assert "10.1.1.1  calit2-119-222 calit2-fe" in hosts
    assert "10.1.1.254  calit2-c0" in hosts


def test_compute_routes_through_the_frontend() -> None:
    docs = read_back(seed_of(plan("compute"), decided(dns_domain="cluster")))
    (only,) = docs["network-config"]["ethernets"].values()
    assert only["match"] == {"macaddress": C0_MAC}
    assert only["addresses"] == ["10.1.1.254/16"]
    assert only["routes"] == [{"to": "0.0.0.0/0", "via": "10.1.1.1"}]
    user = docs["user-data"]
    assert (user["hostname"], user["fqdn"]) == ("calit2-c0", "calit2-c0.cluster")
    hosts = {f["path"]: f for f in user["write_files"]}["/etc/hosts"]["content"]
    assert "10.1.1.254  calit2-c0.cluster calit2-c0\n" in hosts


def test_no_key_no_users_entry() -> None:
    docs = read_back(seed_of(plan(authorized_keys=())))
    assert "users" not in docs["user-data"]


# -- cloud-init's own schema ---------------------------------------------------------------


def cloud_config_schema() -> dict[str, Any]:
    for folder in SCHEMA_DIRS:
        path = folder / "schema-cloud-config-v1.json"
        if path.is_file():
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
    pytest.skip("cloud-init's schema is not here (scripts/setup extracts it from its package)")


@pytest.mark.parametrize("role", ["frontend", "compute"])
def test_user_data_passes_cloud_inits_schema(role: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = cloud_config_schema()
    extra = {"packages": ["htop"], "runcmd": [["touch", "/root/ready"]]}
    user = read_back(seed_of(plan(role), extra=extra))["user-data"]
    jsonschema.validate(user, schema)  # raises on any unknown key or wrong shape
    assert user["runcmd"] == [["touch", "/root/ready"]]


def test_the_schema_check_would_catch_a_wrong_document() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = cloud_config_schema()
    user = read_back(seed_of(plan()))["user-data"]
    user["write_files"][0]["permissions"] = 644  # cloud-init wants a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(user, schema)


def test_network_config_is_netplan_v2_shaped() -> None:
    """No schema for network-config ships with Debian 12's cloud-init (22.4): the v2 keys
    cloud-init's parser reads, and nothing else."""
    for role in ("frontend", "compute"):
        net = read_back(seed_of(plan(role)))["network-config"]
        assert set(net) == {"version", "ethernets"}
        for entry in net["ethernets"].values():
            assert set(entry) <= {"match", "dhcp4", "dhcp6", "addresses", "routes", "nameservers"}
            assert set(entry["match"]) == {"macaddress"}


# -- hostile values ------------------------------------------------------------------------

HOSTILE = [
    "x\n- path: /etc/shadow\n  content: owned",
    "'; rm -rf / #",
    "#cloud-config\nruncmd: [[reboot]]",
    "{a: b}, &anchor *alias !!python/object:os.system",
    "\x85\u2028\u2029\ufeff\x00\x1b[31m",
    "emoji \U0001f600 and tab\tand cr\r",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_values(value: str) -> None:
    """Whatever vc-out.xml, a recipe's cloud-config or a file holds reads back as the
    same string, in the same place, adding no key and no file."""
    vc = decided()
    files = {
        "/root/vc-out.xml": value.encode("utf-8", "surrogatepass"),
        "/etc/motd": value.encode(),
    }
    extra = {"bootcmd": [value], "write_files": [{"path": "/etc/note", "content": value}]}
    seed = node_seed(plan(), vc, value, files, extra=extra)
    docs = read_back(seed)
    assert docs["meta-data"]["instance-id"] == value
    user = docs["user-data"]
    assert set(user) == {
        "bootcmd", "write_files", "hostname", "fqdn", "prefer_fqdn_over_hostname",
        "manage_etc_hosts", "disable_root", "users",
    }  # fmt: skip
    assert user["bootcmd"] == [value]
    paths = [f["path"] for f in user["write_files"]]
    assert paths == ["/etc/hosts", "/root/vc-out.xml", "/etc/motd", "/etc/note"]
    written = user["write_files"][1]
    if written.get("encoding") == "b64":
        import base64

        assert base64.b64decode(written["content"]) == value.encode()
    else:
        assert written["content"] == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("public_fqdn", "evil.org\n10.0.0.1 bank.com"),
        ("public_ip", "1.2.3.4 bank.com"),
        ("dns_ip", "8.8.8.8\nnameserver 6.6.6.6"),
    ],
)
def test_hostile_names_and_addresses_are_refused(field: str, value: str) -> None:
    vc = decided()
    if field in ("public_fqdn", "public_ip"):
        vc = decided(frontend=FrontendOut(**{**vc.frontend.__dict__, field: value}))
    else:
        vc = decided(**{field: value})
    with pytest.raises(StepError, match="is not"):
        node_seed(plan(), vc, "iid", {}).files()


def test_hostile_node_name_and_key_are_refused() -> None:
    with pytest.raises(StepError, match="not a host name"):
        seed_of(plan("compute", name="c0\n10.0.0.9 bank")).files()
    with pytest.raises(StepError, match="one line"):
        seed_of(plan(authorized_keys=(KEY + "\nssh-rsa AAAA other",))).files()


def test_added_cloud_config_cannot_take_pragmashs_keys(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="'hostname'"):
        seed_of(plan(), extra={"hostname": "other"})
    with pytest.raises(StepError, match="must be a list"):
        seed_of(plan(), extra={"runcmd": "reboot"})


def test_recipe_cloud_config_file_errors_name_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "extra.yaml"
    bad.write_text("packages: [htop\nruncmd: x\n", encoding="utf-8")
    with pytest.raises(StepError, match=r"extra\.yaml:\d+:\d+: not valid YAML"):
        read_cloud_config(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(StepError, match="expected a #cloud-config mapping"):
        read_cloud_config(bad)
    bad.write_text("!!python/object/apply:os.system [id]\n", encoding="utf-8")
    with pytest.raises(StepError, match="not valid YAML"):
        read_cloud_config(bad)  # safe_load: no tags that run code


def test_dump_yaml_reads_back_or_refuses() -> None:
    assert yaml.safe_load(dump_yaml({"a": "line\nline\n"}, "x")) == {"a": "line\nline\n"}


# -- the volume ------------------------------------------------------------------------------


def test_seed_volume_is_fat_labelled_cidata_with_the_three_files(tmp_path: Path) -> None:
    seed = seed_of(plan())
    dest = write_seed(tmp_path / "seeds" / "calit2-fe.cidata.img", seed)
    label = subprocess.run(
        ["mlabel", "-s", "-i", str(dest), "::"], env=MTOOLS_ENV, capture_output=True, text=True
    )
    assert "cidata" in label.stdout
    for name, content in seed.files().items():
        got = subprocess.run(
            ["mtype", "-i", str(dest), f"::/{name}"], env=MTOOLS_ENV, capture_output=True
        )
        assert got.stdout == content, name
    assert not list(dest.parent.glob("*.part"))


def test_instance_nonce_is_kept_per_vc_folder(tmp_path: Path) -> None:
    first = instance_nonce(tmp_path / "vc")
    assert instance_nonce(tmp_path / "vc") == first
    assert instance_nonce(tmp_path / "other") != first


# -- the domain --------------------------------------------------------------------------------


def test_domain_attaches_the_seed_read_only_after_the_disks() -> None:
    from lxml import etree

    from pragmash.driver_api import HostInfo

    node = plan(seed=SeedPlan("/vc/seeds/calit2-fe.cidata.img"))
    root = etree.fromstring(render_domain(node, HostInfo(None, False)).encode())
    disks = root.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]  # type: ignore[union-attr]
    seed = disks[1]
    assert seed.find("source").get("file") == "/vc/seeds/calit2-fe.cidata.img"  # type: ignore[union-attr]
    assert seed.find("readonly") is not None
    assert seed.find("driver").get("type") == "raw"  # type: ignore[union-attr]
    plain = etree.fromstring(render_domain(plan(), HostInfo(None, False)).encode())
    assert len(plain.findall("devices/disk")) == 1


# -- [delivery] ----------------------------------------------------------------------------------


def test_delivery_choice_vc_wins_over_driver() -> None:
    choice = read_delivery(
        {"driver": {"ubuntu_cloud": "disk"}, "vc": {"calit2": "seed"}}, "site.toml"
    )
    assert choice.chosen("calit2", "ubuntu_cloud") == (
        "seed",
        "[delivery] vc.calit2 (site.toml)",
    )
    assert choice.chosen("other", "ubuntu_cloud") == (
        "disk",
        "[delivery] driver.ubuntu_cloud (site.toml)",
    )
    assert choice.chosen("other", "rocks6_client") is None


@pytest.mark.parametrize(
    ("table", "key", "said"),
    [
        ({"vc": {"calit2": "iso"}}, "[delivery] vc.calit2", '"seed"'),
        ({"host": {"a": "seed"}}, "[delivery] host", "unknown key"),
        ({"vc": "seed"}, "[delivery] vc", "vc.NAME"),
        ({"driver": {"bad name": "seed"}}, "[delivery] driver.bad name", "not a driver name"),
    ],
)
def test_delivery_mistakes_name_the_key(table: dict[str, Any], key: str, said: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_delivery(table, "site.toml")
    assert f"site.toml: {key}" in str(err.value)
    assert said in str(err.value)


# -- the driver: seeds, and no appliance --------------------------------------------------------


def test_seeded_pre_boot_makes_seeds_and_launches_no_appliance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_appliance(*_a: object, **_k: object) -> int:
        raise AssertionError("a libguestfs appliance was launched")

    monkeypatch.setattr(inject, "inject_batch", no_appliance)
    vc_out = tmp_path / "vc-out.xml"
    vc_out.write_bytes(vc_out_to_bytes(decided()))
    extra = tmp_path / "extra.yaml"
    extra.write_text("packages: [htop]\n", encoding="utf-8")
    ctx = StageContext("calit2", tmp_path, vc_out)
    nodes = [
        (plan(seed=SeedPlan(str(tmp_path / "seeds/fe.img"), str(extra))), tmp_path / "fe.qcow2"),
        (plan("compute", seed=SeedPlan(str(tmp_path / "seeds/c0.img"))), tmp_path / "c0.qcow2"),
    ]
    for driver in (CloudInit(), UbuntuCloud()):
        results = driver.pre_boot_many(nodes, vc_out, ctx)
        assert set(results) == {"calit2-fe", "calit2-c0"}
        assert results["calit2-fe"].products["seed"] == str(tmp_path / "seeds/fe.img")
        user = subprocess.run(
            ["mtype", "-i", str(tmp_path / "seeds/fe.img"), "::/user-data"],
            env=MTOOLS_ENV,
            capture_output=True,
            check=True,
        ).stdout
        doc = yaml.safe_load(user)
        assert doc["packages"] == ["htop"]  # the recipe's cloud-config
        paths = [f["path"] for f in doc["write_files"]]
        assert NETPLAN_PATH not in paths  # cloud-init makes the network from network-config
        assert "/root/vc-out.xml" in paths
        # each node's volume holds its own seed
        for name, image in (("calit2-fe", "fe.img"), ("calit2-c0", "c0.img")):
            meta = subprocess.run(
                ["mtype", "-i", str(tmp_path / "seeds" / image), "::/meta-data"],
                env=MTOOLS_ENV,
                capture_output=True,
                check=True,
            ).stdout
            assert yaml.safe_load(meta)["instance-id"].startswith(f"{name}-")
        assert list(results) == ["calit2-fe", "calit2-c0"]  # in the nodes' order


def test_disk_delivery_keeps_writing_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ubuntu_cloud with ``disk`` delivery (no seed in the plan): netplan into the disk, as before."""
    seen: list[list[str]] = []

    def fake_inject(
        jobs: list[inject.InjectJob], ctx: StageContext, **_k: object
    ) -> dict[str, Any]:
        seen.extend(list(job.files) for job in jobs)
        return {}

    import pragmash.drivers.distros.base as base

    monkeypatch.setattr(base, "inject_for_nodes", fake_inject)
    vc_out = tmp_path / "vc-out.xml"
    vc_out.write_bytes(vc_out_to_bytes(decided()))
    UbuntuCloud().pre_boot_many(
        [(plan(), tmp_path / "fe.qcow2")], vc_out, StageContext("c", tmp_path, vc_out)
    )
    assert seen and NETPLAN_PATH in seen[0]


def test_the_driver_guide_shows_the_files_exactly_as_made() -> None:
    """docs/drivers.md's seed examples are what node_seed writes for the same allocation."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "drivers.md").read_text()
    for role in ("frontend", "compute"):
        node = plan(role)
        files = node_seed(
            node,
            decided(),
            f"{node.name}-3f9c0a1b2c3d4e5f",
            {"/root/vc-out.xml": b"<vc>...this node's own vc-out...</vc>\n"},
        ).files()
        names = (
            ["meta-data", "network-config", "user-data"]
            if role == "frontend"
            else ["network-config"]
        )
        for name in names:
            assert f"```yaml\n{files[name].decode()}```\n" in guide, (role, name)


# -- scale -N and node plans ----------------------------------------------------------------


def test_scale_removal_takes_the_seeds_with_the_disks(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pragmash.engine.run.vcfolder import VcFolder
    from pragmash.engine.steps.scale_steps import ScaleExecutor, scale_program
    from pragmash.images.nocloud import seed_volume_path

    program = scale_program(3, 1)
    remove = next(s for s in program.statements if s.text.startswith("remove"))
    runtime = SimpleNamespace(folder=VcFolder(tmp_path), vcname="calit2")
    kept, gone = seed_volume_path(tmp_path, "calit2-compute-0"), []
    for name in ("calit2-compute-0", "calit2-compute-1", "calit2-compute-2"):
        seed = seed_volume_path(tmp_path, name)
        seed.parent.mkdir(parents=True, exist_ok=True)
        seed.write_bytes(b"cidata")
        gone.append(seed)
    outcome = ScaleExecutor(runtime, 1.0)._remove(remove, None)  # type: ignore[arg-type]
    assert kept.is_file()
    assert not any(p.is_file() for p in gone[1:])
    assert "calit2-compute-2.cidata.img" in outcome.message
