"""--key and --mem on the demo site (test:///default): vc-out.xml's <key>, domains' memory.

What reaches the guests (authorized_keys, MemTotal) is checked on real QEMU in
tests/vm/test_vm_live.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support.clirun import cli
from support.keys import KEY, OTHER

from pragmash.errors import EXIT_OK, EXIT_USER, UserError
from pragmash.images.guestfish import line_of
from pragmash.images.inject import merge_authorized_keys
from pragmash.store.allocation import current_allocation
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import load_site
from pragmash.vc.formats.keys import parse_public_keys
from pragmash.vc.formats.vcout import read_vc_out

pytestmark = pytest.mark.libvirt

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")
# A public key made for these tests only (its private half was never kept).


def vc_out_path() -> Path:
    return load_site(None, os.environ).temp_dir / "calit2" / "vc-out.xml"


def nothing_allocated() -> bool:
    return current_allocation(Ledger(load_site(None, os.environ)), "calit2") is None


def test_key_goes_into_vc_out_as_pragma_boots_key_element(
    tmp_path: Path, testconn: libvirt.virConnect
) -> None:
    key = tmp_path / "id_ed25519.pub"
    key.write_text(KEY + "\n\n")
    code, out, err = cli(
        ROCKS6, "--vcname", "calit2", "--key", str(key), "--set", "fix_method=none"
    )
    assert code == EXIT_OK, out + err
    root = etree.parse(str(vc_out_path())).getroot()
    assert [c.tag for c in root] == ["frontend", "compute", "network", "key"]
    assert root.findtext("key") == KEY
    assert read_vc_out(vc_out_path()).key == KEY


def test_without_key_vc_out_has_no_key_element(testconn: libvirt.virConnect) -> None:
    code, out, err = cli(ROCKS6, "--vcname", "calit2", "--set", "fix_method=none")
    assert code == EXIT_OK, out + err
    assert etree.parse(str(vc_out_path())).getroot().find("key") is None
    assert read_vc_out(vc_out_path()).key is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n",
            "is a private key: expected the public key",
        ),
        ("hello world\n", ":1: is not an SSH public key"),
        ("ssh-ed25519 not*base64 x\n", ":1: the key data of ssh-ed25519 is not base64"),
        ("ssh-rsa " + KEY.split()[1] + "\n", "does not match its type 'ssh-rsa'"),
        ("\n# nothing\n", "holds no SSH public key"),
    ],
)
def test_a_bad_key_file_is_refused_before_anything_runs(
    tmp_path: Path, testconn: libvirt.virConnect, text: str, words: str
) -> None:
    key = tmp_path / "key"
    key.write_text(text)
    code, out, err = cli(ROCKS6, "--vcname", "calit2", "--key", str(key))
    assert code == EXIT_USER
    assert f"--key {key}" in err and words in err
    assert "allocate" not in out
    assert nothing_allocated()


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--key", str(tmp_path / "absent.pub"))
    assert code == EXIT_USER
    assert f"--key {tmp_path / 'absent.pub'}: no such file" in err


def test_several_keys_comments_and_blank_lines() -> None:
    keys = parse_public_keys(f"# ours\n{KEY}\n\n{OTHER}\n", "k")
    assert keys == (KEY, OTHER)


def test_authorized_keys_are_merged_not_replaced_nor_doubled() -> None:
    existing = f'from="10.0.0.0/8" {OTHER}\n'
    merged = merge_authorized_keys(existing, [KEY])
    assert merged == f'from="10.0.0.0/8" {OTHER}\n{KEY}\n'
    assert merge_authorized_keys(merged, [KEY, OTHER]) == merged  # a retried pre_boot
    assert merge_authorized_keys("", [KEY]) == KEY + "\n"


def test_guestfish_words_are_quoted_for_guestfish_not_a_shell() -> None:
    line = line_of(["upload", '/tmp/a "b"\\c', "/root/.ssh/authorized_keys"])
    assert line == 'upload "/tmp/a \\"b\\"\\\\c" "/root/.ssh/authorized_keys"\n'
    with pytest.raises(Exception, match="line break"):
        line_of(["write", "/x", "a\nb"])


# -- --mem --------------------------------------------------------------------------------


def memory_of(conn: libvirt.virConnect, name: str) -> int:
    """The domain's memory in MiB, from its live XML."""
    return int(conn.lookupByName(name).maxMemory()) // 1024


def test_mem_overrides_the_templates_and_status_shows_it(testconn: libvirt.virConnect) -> None:
    code, out, err = cli(
        ROCKS6, "--vcname", "calit2", "--mem", "512:256", "--set", "fix_method=none"
    )
    assert code == EXIT_OK, out + err
    assert memory_of(testconn, "calit2-frontend") == 512
    assert memory_of(testconn, "calit2-compute-0") == 256
    code, out, err = cli("status", "calit2", "--json")
    assert code == EXIT_OK, err
    memory = {n["name"]: n["memory_mib"] for n in json.loads(out)["nodes"]}
    assert memory == {"calit2-frontend": 512, "calit2-compute-0": 256, "calit2-compute-1": 256}
    code, out, _ = cli("status", "calit2")
    assert "MiB" in out and " 512 " in out


def test_one_number_sets_both_and_no_mem_keeps_the_templates(
    testconn: libvirt.virConnect,
) -> None:
    assert cli(ROCKS6, "--vcname", "calit2", "--mem", "300", "--set", "fix_method=none")[0] == 0
    assert memory_of(testconn, "calit2-frontend") == memory_of(testconn, "calit2-compute-1") == 300
    assert cli("clean", "calit2")[0] == EXIT_OK
    assert cli(ROCKS6, "--vcname", "calit2", "--set", "fix_method=none")[0] == EXIT_OK
    assert memory_of(testconn, "calit2-frontend") == 1024  # the template's 1048576 KiB
    _, out, _ = cli("status", "calit2", "--json")
    assert {n["memory_mib"] for n in json.loads(out)["nodes"]} == {1024}


def test_mem_beyond_the_host_is_refused_before_anything_is_taken(
    testconn: libvirt.virConnect,
) -> None:
    host = testconn.getInfo()[1]  # test:///default says 3072 MiB
    code, out, err = cli(ROCKS6, "--vcname", "calit2", "--mem", f"{host + 1}:256")
    assert code == EXIT_USER
    assert (
        f"--mem: a frontend would get {host + 1} MiB, but the host (test:///default) has {host} MiB"
        in err
    )
    assert "allocate" not in out
    assert nothing_allocated()


def test_a_vc_whose_nodes_together_exceed_the_host_takes_nothing(
    testconn: libvirt.virConnect,
) -> None:
    code, _out, err = cli(ROCKS6, "--vcname", "calit2", "--mem", "1500:1000")
    assert code == EXIT_USER
    assert "not enough memory on test:///default" in err
    assert "1 x 1500 MiB (frontend) + 2 x 1000 MiB (compute) = 3500 MiB" in err
    assert nothing_allocated()


@pytest.mark.parametrize("text", ["0", "abc", "1:2:3", "-5", "512:"])
def test_a_bad_mem_is_a_usage_error(text: str) -> None:
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--mem", text)
    assert code == EXIT_USER
    assert "expected MiB as FRONTEND[:COMPUTE]" in err


def test_parse_errors_are_user_errors() -> None:
    with pytest.raises(UserError):
        parse_public_keys("ssh-ed25519\n", "k")
