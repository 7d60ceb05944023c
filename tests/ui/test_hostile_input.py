"""Hostile command lines, site files and recipes (issue 27, item 15): words, not tracebacks.

Each test failed before the fix it names: a traceback (``--mem '²'``, ``~nosuchuser`` or a
NUL in ``[paths]``), a leak (``--key`` echoing a line of a file that is not a key), a hang
(``--key`` on a FIFO), a check that let a mistake through (a truncated key, one host
listed twice by two spellings of its path, ``--mem`` held to all hosts' memory together),
or an unhelpful message (a recipe's bad byte by its offset, libxml2's own warning).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import libvirt
import pytest
from support.clirun import cli
from support.multihost import Host, write_hosts_site

from pragmash.errors import EXIT_USER
from pragmash.up_tests import parse_up_test

ROOT = Path(__file__).resolve().parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")
SMALL = ROOT / "tests" / "data" / "sites" / "small.toml"
PRAGMASH = Path(sys.executable).with_name("pragmash")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFIcY+QncGsDyrmpZmyFYXgVP5emyl6OUpaYxXx7+M9B admin@site"

pytestmark = pytest.mark.libvirt


@pytest.fixture(autouse=True)
def _demo_engine(testconn: libvirt.virConnect) -> None:
    """The demo site's test:///default, wiped of calit2's domains after each test."""


def test_mem_with_a_unicode_digit_is_a_usage_error() -> None:
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--mem", "\u00b2")
    assert code == EXIT_USER
    assert "--mem '\u00b2': expected MiB as FRONTEND[:COMPUTE]" in err


def test_an_up_test_port_with_a_unicode_digit_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 'port:N'"):
        parse_up_test("port:\u00b2")


BAD_PATHS = {"an unknown user": "~nosuchuser/x", "a NUL": "a\\u0000b"}


@pytest.mark.parametrize("value", BAD_PATHS.values(), ids=BAD_PATHS.keys())
@pytest.mark.parametrize(
    "key", ["state", "repository", "temp"], ids=["state", "repository", "temp"]
)
def test_a_path_setting_no_path_can_be_is_named_by_its_key(
    tmp_path: Path, key: str, value: str
) -> None:
    """RuntimeError "Could not determine home directory" or ValueError "embedded null byte"."""
    site = tmp_path / "site.toml"
    lines = SMALL.read_text(encoding="utf-8").splitlines()
    site.write_text(
        "\n".join(f'{key} = "{value}"' if line.startswith(f"{key} =") else line for line in lines),
        encoding="utf-8",
    )
    code, _, err = cli("hosts", "--site", str(site))
    assert code == EXIT_USER, err
    assert f"{site}: [paths] {key}:" in err
    assert ("no user 'nosuchuser'" if "~" in value else "holds a NUL character") in err


def test_site_state_and_key_paths_naming_no_user_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli("hosts", "--site", "~nosuchuser/site.toml")
    assert code == EXIT_USER and "no user 'nosuchuser'" in err
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--key", "~nosuchuser/id.pub")
    assert code == EXIT_USER and "--key ~nosuchuser/id.pub" in err
    monkeypatch.setenv("PRAGMASH_STATE_DIR", "~nosuchuser/state")
    code, _, err = cli("hosts")
    assert code == EXIT_USER and "$PRAGMASH_STATE_DIR" in err


def test_key_does_not_show_a_line_of_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$s3cr3t$hash:19000:0:99999:7:::\n", encoding="utf-8")
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--key", str(shadow))
    assert code == EXIT_USER
    assert f"--key {shadow}:1: is not an SSH public key" in err
    assert "s3cr3t" not in err and "root:" not in err


def test_key_refuses_a_truncated_ed25519_key(tmp_path: Path) -> None:
    kind, data, comment = KEY.split()
    cut = tmp_path / "cut.pub"
    cut.write_text(f"{kind} {data[:-12]} {comment}\n", encoding="utf-8")  # 9 bytes short
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--key", str(cut))
    assert code == EXIT_USER, err
    assert "the ssh-ed25519 key is cut short or damaged" in err


def test_key_on_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """open() of a FIFO waited for a writer forever. (If it still did, the writer here
    comes after 3 s with a line that is not a key, so the test ends either way.)"""
    fifo = tmp_path / "key.pub"
    os.mkfifo(fifo)

    def late_writer() -> None:
        time.sleep(3)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return  # no reader waiting: the fix refused the FIFO without opening it so
        with os.fdopen(fd, "w") as pipe:
            pipe.write("not a key\n")

    writer = threading.Thread(target=late_writer, daemon=True)
    writer.start()
    code, _, err = cli(ROCKS6, "--vcname", "calit2", "--key", str(fifo))
    writer.join()
    assert code == EXIT_USER
    assert f"--key {fifo}: is not a regular file" in err


def test_one_host_written_two_ways_is_listed_twice(tmp_path: Path) -> None:
    site = write_hosts_site(tmp_path, [Host("a", 4), Host("b", 4)])
    text = site.read_text(encoding="utf-8")
    site.write_text(text.replace(f"test://{tmp_path}/b.xml", f"test://{tmp_path}/./a.xml"))
    code, _, err = cli("hosts", "--site", str(site))
    assert code == EXIT_USER, err
    assert "hosts 'a' and 'b' have the same uri" in err


def test_mem_is_held_to_each_hosts_memory_not_all_together(tmp_path: Path) -> None:
    """Two 4096 MiB hosts: a 5000 MiB node passed the early check (8192 in all), and the
    run then failed exit 3 "not enough CPUs", naming the first host for both."""
    site = write_hosts_site(tmp_path, [Host("a", 4, 4096), Host("b", 4, 4096)])
    recipe = tmp_path / "r.prg"
    recipe.write_text("allocate $num_compute\nboot all\n", encoding="utf-8")
    argv = [str(recipe), "--vcname", "calit2", "--num_compute", "2", "--site", str(site)]
    code, _, err = cli(*argv, "--mem", "5000")
    assert code == EXIT_USER, err
    assert "--mem: a frontend would get 5000 MiB, but the largest host (a) has 4096 MiB" in err
    code, _, err = cli(*argv, "--mem", "3500")  # each fits a host; three do not fit two
    assert code == EXIT_USER, err
    assert "not enough memory: the VC's 3 nodes need 3 CPUs (10500 MiB)" in err
    assert "b 3 of 4 CPUs free (reserve 1), 4096 of 4096 MiB" in err


def test_a_recipe_that_is_not_utf8_names_the_line_and_column_of_the_bad_byte(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.prg"
    bad.write_bytes(b"param a = 1\necho h\xe9llo\n")
    code, _, err = cli("check", str(bad), "--vcname", "calit2")
    assert code == EXIT_USER
    assert f"{bad}:2:7: byte 0xe9 is not UTF-8" in err
    assert "position 18" not in err


def test_a_missing_test_host_file_is_said_once_without_libxml2s_warning(
    tmp_path: Path,
) -> None:
    """libxml2 (inside libvirt) wrote "I/O warning : failed to load external entity" to the
    process's stderr, below pragmash's own message: seen only from another process."""
    site = write_hosts_site(tmp_path, [Host("a", 4), Host("b", 4)])
    (tmp_path / "b.xml").unlink()
    done = subprocess.run(
        [str(PRAGMASH), "hosts", "--site", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert f"the test driver's host file {tmp_path}/b.xml is missing" in done.stdout
    assert "I/O warning" not in done.stderr
