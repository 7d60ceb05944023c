"""``pragmash import-site``: pragma_boot's configuration files, read without running them.

Sample files of each form are in tests/data/pragma_boot_conf: a 2015-era
etc/site_conf.conf + etc/kvm_rocks.conf (the templates' forms, with hosts, an http
repository, additional_interfaces and a line that would create a file if it ran), and a
2013 site_conf.conf + drivers/kvm_rocks/net_conf.conf. Every output is loaded with the
site loader runs use.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pragmash.errors import ConfigError
from pragmash.ui.cli.main import main
from pragmash.vc.config.import_site import read_python_conf, read_shell_conf
from pragmash.vc.config.site import load_site

DATA = Path(__file__).parents[1] / "data" / "pragma_boot_conf"


def _import(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(["import-site", *args], out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "site.toml"
    path.write_text(text)
    return load_site(path, {"HOME": str(tmp_path)})


def test_2015_files_become_a_site_that_loads(tmp_path: Path) -> None:
    ran = Path("/tmp/pragmash-import-site-ran")
    ran.unlink(missing_ok=True)
    rc, text, err = _import(str(DATA / "2015"))
    assert rc == 0, err
    assert not ran.exists()  # site_conf.conf's open() was read, never run
    site = _load(tmp_path, text)
    assert [a.ip for a in site.public_pool] == ["198.202.88.50", "198.202.88.51", "198.202.88.52"]
    assert (site.netmask, site.gateway, site.dns) == ("255.255.255.0", "198.202.88.1", "8.8.8.8")
    assert (site.vlan_first, site.vlan_last) == (4, 19)  # range(4,20) ends before 20
    assert [(h.name, h.uri) for h in site.hosts] == [
        ("vm-container-0-0", "qemu+ssh://root@vm-container-0-0/system"),
        ("vm-container-0-1", "qemu+ssh://root@vm-container-0-1/system"),
    ]
    assert site.cpu_reserve == 2
    assert site.temp_dir == Path("/state/partition1/temp")
    assert site.repository == "http://calit2-119-121.ucsd.edu/vcs/"
    # what cannot be mapped is named, in the file and on stderr, never guessed
    assert all(a.fqdn.endswith(".invalid") for a in site.public_pool)
    assert "# FILL IN the FQDN DNS gives 198.202.88.50" in text
    assert "FILL IN: [network] public: the FQDN of 198.202.88.51" in err
    assert "additional_interfaces {'openflow': 'ovs'}" in text and "additional_interfaces" in err
    assert "SHA256SUMS" in err
    assert "site_conf.conf line 13: marker: not a literal" in err


def test_2013_files_with_net_conf_map_fully(tmp_path: Path) -> None:
    rc, text, err = _import(str(DATA / "2013"))
    assert rc == 0, err
    site = _load(tmp_path, text)
    assert [(a.ip, a.fqdn) for a in site.public_pool] == [
        ("137.110.119.222", "calit2-119-222.ucsd.edu")
    ]
    assert site.gateway == "137.110.119.1" and site.temp_dir == Path("/state/partition2/temp")
    assert site.uri == "qemu:///system" and "FILL IN" not in err


def test_output_file_and_explicit_paths(tmp_path: Path) -> None:
    target = tmp_path / "site.toml"
    rc, out, err = _import(
        "--kvm-rocks", str(DATA / "2015" / "etc" / "kvm_rocks.conf"), "-o", str(target)
    )
    assert rc == 0 and out == "" and f"wrote {target}" in err
    assert load_site(target, {"HOME": str(tmp_path)}).vlan_last == 19
    rc, _, err = _import(
        "--kvm-rocks", str(DATA / "2015" / "etc" / "kvm_rocks.conf"), "-o", str(target)
    )
    assert rc == 2 and "give --force" in err


@pytest.mark.parametrize(
    ("repository", "words"),
    [
        ("{'repository_class': 'clonezilla', 'repository_dir': '/v'}", "'clonezilla'"),
        ("{'repository_class': 'cloudfront', 'repository_url': 'https://x'}", "'cloudfront'"),
    ],
)
def test_repositories_pragmash_cannot_read_are_named(
    tmp_path: Path, repository: str, words: str
) -> None:
    conf = tmp_path / "site_conf.conf"
    conf.write_text(f"temp_directory = '/t'\nrepository_settings = {repository}\n")
    kvm = DATA / "2015" / "etc" / "kvm_rocks.conf"
    rc, text, err = _import("--site-conf", str(conf), "--kvm-rocks", str(kvm))
    assert rc == 0, err
    assert f"repository_class {words}" in err and "# FILL IN: repository" in text
    assert _load(tmp_path, text).repository is None


def test_python_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    conf = tmp_path / "kvm_rocks.conf"
    conf.write_text('netmask = "255.255.255.0"\npublic_ips = ["1.2.3.4",\n')
    rc, _, err = _import("--kvm-rocks", str(conf))
    assert rc == 2 and f"{conf}:2:" in err and "Traceback" not in err


def test_only_literals_and_range_are_read(tmp_path: Path) -> None:
    conf = tmp_path / "kvm_rocks.conf"
    conf.write_text(
        "import os\nvlans = range(4, 8)\ngw = os.environ['GW']\nx = range(1, 'a')\nn = 3\n"
    )
    read = read_python_conf(conf)
    assert read.values == {"vlans": range(4, 8), "n": 3}
    assert len(read.skipped) == 3 and "line 3: gw: not a literal" in read.skipped[1]


def test_shell_values_that_would_expand_are_not_read(tmp_path: Path) -> None:
    conf = tmp_path / "net_conf.conf"
    conf.write_text('# c\npublic_ip="1.2.3.4"\nfqdn=$(hostname)\ngw=`x`\ndns=8.8.8.8 # dns\n')
    read = read_shell_conf(conf)
    assert read.values == {"public_ip": "1.2.3.4", "dns": "8.8.8.8"}
    assert [s.split(":")[0] for s in read.skipped] == ["line 3", "line 4"]
    bad = tmp_path / "bad.conf"
    bad.write_text('fqdn="unclosed\n')
    with pytest.raises(ConfigError) as info:
        read_shell_conf(bad)
    assert f"{bad}:1" in info.value.message


def test_incomplete_files_say_the_result_does_not_load_yet(tmp_path: Path) -> None:
    conf = tmp_path / "kvm_rocks.conf"
    conf.write_text('dns = "8.8.8.8"\n')
    rc, text, err = _import("--kvm-rocks", str(conf))
    assert rc == 2
    assert "FILL IN: [network] netmask" in err and "does not load yet" in err
    assert "# FILL IN: netmask" in text


def test_nothing_found_is_a_clear_error(tmp_path: Path) -> None:
    rc, _, err = _import(str(tmp_path))
    assert rc == 2 and "no pragma_boot configuration found" in err
