"""The site config loader: good files, the embedded demo site, and every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pragmash.driver_api import UpTest
from pragmash.errors import ConfigError
from pragmash.vc.config.site import EMBEDDED_SOURCE, SYSTEM_STATE_DIR, PublicAddress, load_site

DATA = Path(__file__).parents[1] / "data" / "sites"

MINIMAL = """
[network]
netmask = "255.255.255.0"
gateway = "192.0.2.1"
public = [ { ip = "192.0.2.10", fqdn = "vc-a.example.org" } ]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_small_site_loads_every_key() -> None:
    site = load_site(DATA / "small.toml", env={"HOME": "/home/tester"})
    assert site.source == str((DATA / "small.toml").resolve())
    assert not site.embedded
    assert site.engine == "libvirt"
    assert site.uri == "test:///default"
    assert site.domain_type == "qemu"
    assert site.public_pool[0] == PublicAddress("192.0.2.10", "vc-a.example.org")
    assert len(site.public_pool) == 3
    assert (site.netmask, site.gateway, site.dns) == ("255.255.255.0", "192.0.2.1", "192.0.2.53")
    assert (site.dns_search, site.dns_domain) == ("example.org", "example.org")
    assert (site.vlan_first, site.vlan_last) == (10, 12)
    assert site.mac_prefix == "7a:77:6e"
    assert (site.cpu_capacity, site.cpu_reserve, site.smp) == (16, 2, False)
    assert site.bridges == {"eth0.2": "private-net", "eth1": "public-net"}
    assert site.default_network == "default"
    # relative paths resolve against the file's folder, "~" is expanded, absolute kept
    base = DATA.resolve()
    assert site.state_dir == base / "state"
    assert site.temp_dir == base / "tmp"
    assert site.image_cache == Path("~/images").expanduser()
    assert site.repository == base / "repo"
    assert site.driver_dirs == (base / "drivers",)
    assert site.recipe_dirs == (base / "recipes", Path("/abs/recipes"))
    assert site.staging == "copy"
    assert site.allow_run is True
    assert site.ledger_path == base / "state" / "ledger.sqlite3"


def test_minimal_site_gets_defaults(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "xs")}
    site = load_site(write(tmp_path, MINIMAL), env=env)
    assert site.engine == "libvirt"
    assert site.domain_type == "auto"
    assert site.boot_parallelism == 4
    assert (site.vlan_first, site.vlan_last) == (2, 4094)
    assert site.state_dir == SYSTEM_STATE_DIR / "site"  # the site's, not the user's (issue 27)
    assert site.temp_dir == tmp_path / "home" / ".cache" / "pragmash" / "tmp"
    assert site.repository is None
    assert site.driver_dirs == ()


def test_embedded_demo_site(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    site = load_site(None, env=env)
    assert site.embedded
    assert site.source == EMBEDDED_SOURCE
    assert site.uri == "test:///default"
    assert site.public_pool[0].fqdn == "calit2-119-222.ucsd.edu"
    assert site.state_dir == tmp_path / "state" / "pragmash" / "demo"
    assert site.temp_dir == tmp_path / "cache" / "pragmash" / "demo" / "tmp"
    assert site.image_cache == tmp_path / "cache" / "pragmash" / "images"
    assert site.repository is None


def test_pragmash_site_env_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    site = load_site(None, env={"PRAGMASH_SITE": str(path), "HOME": "/nonexistent"})
    assert site.source == str(path.resolve())
    assert not site.embedded


def test_state_dir_env_overrides_every_site(tmp_path: Path) -> None:
    override = tmp_path / "override"
    env = {"PRAGMASH_STATE_DIR": str(override)}
    assert load_site(DATA / "small.toml", env=env).state_dir == override
    assert load_site(None, env=env).state_dir == override


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such site config file") as info:
        load_site(tmp_path / "nope.toml", env={"HOME": "/nonexistent"})
    assert info.value.file == str(tmp_path / "nope.toml")


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[network]\nnetmask = "255.255.255.0"\ngateway = \n')
    with pytest.raises(ConfigError) as info:
        load_site(path, env={"HOME": "/nonexistent"})
    assert info.value.file == f"{path.resolve()}:3:11"
    assert "invalid TOML" in info.value.message


def test_up_overrides_per_vc(tmp_path: Path) -> None:
    text = _with('[up]\ncalit2 = ["port:22", "console:ready$"]\ntiny = ["marker"]\n')
    site = load_site(write(tmp_path, text), env={"HOME": "/nonexistent"})
    assert site.up_overrides == {
        "calit2": (UpTest("port", port=22), UpTest("console", "ready$")),
        "tiny": (UpTest("marker"),),
    }
    assert load_site(write(tmp_path, MINIMAL), env={"HOME": "/nonexistent"}).up_overrides == {}


def _with(section_text: str) -> str:
    """MINIMAL plus extra sections; [network] keys are replaced by section_text's if given."""
    return MINIMAL + "\n" + section_text


# (TOML text, the key the error must name, a word the message must contain)
BAD: list[tuple[str, str, str]] = [
    (MINIMAL + "\n[engin]\nuri = 'x'\n", "[engin]", "did you mean 'engine'"),
    (_with("[resources]\ncpu = 4\n"), "[resources] cpu", "did you mean 'cpus'"),
    (_with("[resources]\ncpus = '4'\n"), "[resources] cpus", "expected an integer"),
    (_with("[resources]\ncpus = true\n"), "[resources] cpus", "expected an integer"),
    (_with("[resources]\ncpus = 4\nreserve = 4\n"), "[resources] reserve", "fewer than cpus"),
    (_with("[resources]\nsmp = 'yes'\n"), "[resources] smp", "true or false"),
    (_with("[engine]\nuri = 'qemu/system'\n"), "[engine] uri", "libvirt URI"),
    (_with("[engine]\ndomain_type = 'xen'\n"), "[engine] domain_type", "'auto' or 'kvm'"),
    (_with("[engine]\nboot_parallelism = 0\n"), "[engine] boot_parallelism", ">= 1"),
    (_with("[images]\nstaging = 'link'\n"), "[images] staging", "'overlay' or 'copy'"),
    (_with("[drivers]\nfolders = [1]\n"), "[drivers] folders", "list of strings"),
    (_with("[policy]\nallow_run = 1\n"), "[policy] allow_run", "true or false"),
    (_with("[paths]\nstate = ''\n"), "[paths] state", "folder path"),
    (MINIMAL.replace('"255.255.255.0"', '"255.255.0.255"'), "[network] netmask", "netmask"),
    (MINIMAL.replace('gateway = "192.0.2.1"', 'gateway = "192.0.2"'), "[network] gateway", "IPv4"),
    (MINIMAL.replace('gateway = "192.0.2.1"', ""), "[network] gateway", "missing"),
    (MINIMAL.replace('"192.0.2.1"', '"198.51.100.1"'), "[network] gateway", "outside"),
    (
        MINIMAL.replace("} ]", '}, { ip = "198.51.100.9", fqdn = "b.example.org" } ]'),
        "[network] public[1] ip",
        "outside",
    ),
    (MINIMAL.replace('"192.0.2.10"', '"192.0.2.1"'), "[network] public[0] ip", "the gateway"),
    (MINIMAL.replace('"192.0.2.1"', '"192.0.2.0"'), "[network] gateway", "network or broadcast"),
    (MINIMAL.replace('"192.0.2.10"', '"192.0.2.300"'), "[network] public[0] ip", "IPv4"),
    (MINIMAL.replace("vc-a.example.org", "vc_a"), "[network] public[0] fqdn", "fully qualified"),
    (MINIMAL.replace("vc-a.example.org", "-a.example.org"), "[network] public[0] fqdn", "fully"),
    (
        MINIMAL.replace("fqdn =", "fdqn ="),
        "[network] public[0] fdqn",
        "did you mean 'fqdn'",
    ),
    (
        MINIMAL.replace(
            'public = [ { ip = "192.0.2.10", fqdn = "vc-a.example.org" } ]',
            'public = [ { ip = "192.0.2.10", fqdn = "a.example.org" },'
            ' { ip = "192.0.2.10", fqdn = "b.example.org" } ]',
        ),
        "[network] public[1] ip",
        "already public[0]",
    ),
    (
        MINIMAL.replace(
            'public = [ { ip = "192.0.2.10", fqdn = "vc-a.example.org" } ]', "public = []"
        ),
        "[network] public",
        "empty",
    ),
    (
        MINIMAL.replace('public = [ { ip = "192.0.2.10", fqdn = "vc-a.example.org" } ]', ""),
        "[network] public",
        "missing",
    ),
    (MINIMAL + 'mac_prefix = "7a:77"\n', "[network] mac_prefix", "three hex octets"),
    (MINIMAL + 'mac_prefix = "7b:77:6e"\n', "[network] mac_prefix", "multicast"),
    (MINIMAL + 'mac_prefix = "00:16:3e"\n', "[network] mac_prefix", "locally administered"),
    (MINIMAL + "vlans = [0, 10]\n", "[network] vlans", "1..4094"),
    (MINIMAL + "vlans = [10, 4095]\n", "[network] vlans", "1..4094"),
    (MINIMAL + "vlans = [20, 10]\n", "[network] vlans", "first <= last"),
    (MINIMAL + "vlans = [20]\n", "[network] vlans", "[first, last]"),
    (MINIMAL + "bridges = { eth1 = 3 }\n", "[network] bridges.eth1", "site network name"),
    (MINIMAL + 'dns = "dns.example.org"\n', "[network] dns", "IPv4"),
    (_with("[up]\ncalit2 = ['ssh']\n"), "[up] calit2", "unknown up test 'ssh'"),
    (_with("[up]\ncalit2 = 'agent'\n"), "[up] calit2", "non-empty list of up tests"),
    (_with("[up]\ncalit2 = []\n"), "[up] calit2", "non-empty list of up tests"),
    (_with("[up]\ncalit2 = ['port:99999']\n"), "[up] calit2", "1 to 65535"),
    (_with("[up]\ncalit2 = ['console:[']\n"), "[up] calit2", "not a regular expression"),
    (_with("[up]\n'bad name' = ['agent']\n"), "[up] bad name", "not a VC name"),
    (_with("[downloads]\ndeadline = 0\n"), "[downloads] deadline", ">= 1"),
    (_with("[downloads]\ndeadline = 1.5\n"), "[downloads] deadline", "expected an integer"),
    (_with("[downloads]\nmin_rate = -1\n"), "[downloads] min_rate", ">= 0"),
    (_with("[downloads]\nmin_rate = '1k'\n"), "[downloads] min_rate", "expected an integer"),
    (_with("[downloads]\nrate_window = 86401\n"), "[downloads] rate_window", "<= 86400"),
    (_with("[downloads]\nmax_unsized_gib = 0\n"), "[downloads] max_unsized_gib", ">= 1"),
    (_with("[downloads]\ndeadlines = 5\n"), "[downloads] deadlines", "did you mean 'deadline'"),
]


def test_downloads_default_to_the_old_constants_and_are_read(tmp_path: Path) -> None:
    """``[downloads]``: 120 s, 1 kB/s over 60 s, 64 GiB unless the site says otherwise."""
    env = {"HOME": "/nonexistent"}
    default = load_site(write(tmp_path, MINIMAL), env=env).downloads
    assert (default.deadline, default.min_rate, default.rate_window) == (120, 1024, 60)
    assert default.unsized_limit == 64 << 30
    text = _with(
        "[downloads]\ndeadline = 30\nmin_rate = 0\nrate_window = 10\nmax_unsized_gib = 2\n"
    )
    given = load_site(write(tmp_path, text), env=env).downloads
    assert (given.deadline, given.min_rate, given.rate_window) == (30, 0, 10)
    assert given.unsized_limit == 2 << 30


@pytest.mark.parametrize(("text", "key", "words"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_mistakes_name_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_site(path, env={"HOME": "/nonexistent"})
    assert info.value.key == key
    assert info.value.file == str(path.resolve())
    assert words in info.value.message
    assert info.value.message.startswith(f"{path.resolve()}: {key}: ")
