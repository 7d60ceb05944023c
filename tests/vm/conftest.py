"""Set-up only the real-QEMU tier (tests/vm/) uses; the tier's markers and the skip or
failure when it cannot run stay in tests/conftest.py, since mixed files elsewhere hold vm tests too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from support import secondhost
from support.netns import running_netns
from support.secondhost import SecondHost, trunk, untrunk
from support.vmsite import TRUNK_BRIDGE, remove_vmtest_domains


@pytest.fixture(scope="session")
def fixed_debian_bases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the first slow module that converts the Debian test image with
    virt-v2v leaves the fixed base (hard links), for the next one to take.

    One conversion per run of the suite instead of one per module: 4–8 minutes each
    under TCG. test_v2v_slow converts (and proves the conversion); test_vm_debian boots
    what it made, or converts itself when run alone.
    """
    return tmp_path_factory.mktemp("fixed-debian-bases")


@pytest.fixture
def system_conn() -> Iterator[libvirt.virConnect]:
    """qemu:///system, with no ``vmtest`` domain or network before or after the test."""
    connection = libvirt.open("qemu:///system")
    remove_vmtest_domains(connection)
    yield connection
    remove_vmtest_domains(connection)
    connection.close()


@pytest.fixture
def trunked_host2() -> Iterator[SecondHost]:
    """A second libvirt host (support/secondhost.py) whose VLAN bridge is trunked to ours.

    For the two-host site of support/vmsite.py (``write_two_host_site``): the bridge is
    its private network's, so guests on the two hosts reach each other.
    """
    why = secondhost.missing()
    if why is not None:
        pytest.fail(f"the two-host test cannot run: {why}")
    first = running_netns()
    assert first is not None  # guest_net: tests/conftest.py runs these only then
    with SecondHost() as host:
        trunk(TRUNK_BRIDGE, first, host.netns)
        try:
            yield host
        finally:
            untrunk(TRUNK_BRIDGE, first, host.netns)
