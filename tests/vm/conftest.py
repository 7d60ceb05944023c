"""Set-up only the real-QEMU tier (tests/vm/) uses; the tier's markers and the skip or
failure when it cannot run stay in tests/conftest.py, since mixed files elsewhere hold vm tests too."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixed_debian_bases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the first slow module that converts the Debian test image with
    virt-v2v leaves the fixed base (hard links), for the next one to take.

    One conversion per run of the suite instead of one per module: 4–8 minutes each
    under TCG. test_v2v_slow converts (and proves the conversion); test_vm_debian boots
    what it made, or converts itself when run alone.
    """
    return tmp_path_factory.mktemp("fixed-debian-bases")
