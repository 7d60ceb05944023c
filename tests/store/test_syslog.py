"""A site's ``[logging] syslog``: every command's records also reach the system log.

A unix datagram socket made by the test stands in for journald's or rsyslog's
``/dev/log``; what pragmash sends there is read back, as a syslog daemon would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.runenv import make_env

from pragmash.errors import ConfigError
from pragmash.store.runlog import stop_syslog
from pragmash.vc.config.site import load_site


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield path, sock
    finally:
        stop_syslog()
        sock.close()


def _received(sock: socket.socket) -> list[str]:
    lines = []
    while True:
        try:
            lines.append(sock.recv(65536).decode("utf-8", errors="replace"))
        except BlockingIOError:
            return lines


def test_a_run_and_a_status_reach_the_sites_syslog(
    tmp_path: Path, syslog_socket: tuple[Path, socket.socket]
) -> None:
    path, sock = syslog_socket
    env = make_env(tmp_path / "site", extra=f'\n[logging]\nsyslog = "{path}"\n')
    recipe = env.recipe("allocate 1\nboot frontend\n")
    assert env.cli(str(recipe), "--vcname", "calit2").rc == 0
    assert env.cli("status", "calit2").rc == 0
    got = _received(sock)
    # "<PRI>pragmash[PID]: LEVEL logger: message", PRI = facility user (1) * 8 + level
    assert any("pragmash[" in g and "run 1 of calit2 started" in g for g in got), got
    assert any(g.startswith("<14>pragmash[") for g in got), got  # user.info
    assert not any(" DEBUG " in g for g in got)  # syslog_level defaults to info


def test_a_missing_socket_is_a_warning_and_the_command_goes_on(tmp_path: Path) -> None:
    env = make_env(tmp_path / "site", extra='\n[logging]\nsyslog = "/nonexistent/log"\n')
    try:
        result = env.cli("list")
    finally:
        stop_syslog()
    assert result.rc == 0, result
    assert "cannot log to syslog at /nonexistent/log" in result.err
    assert "[logging] syslog" in result.err


@pytest.mark.parametrize(
    "table,said",
    [
        ('syslog = "dev/log"', "expected the path of a local syslog socket"),
        ('syslog_level = "loud"', "syslog_level"),
    ],
)
def test_bad_logging_settings_name_the_key(tmp_path: Path, table: str, said: str) -> None:
    env = make_env(tmp_path / "site", extra=f"\n[logging]\n{table}\n")
    with pytest.raises(ConfigError) as err:
        load_site(env.site_path)
    assert said in str(err.value) and "[logging]" in str(err.value)
