"""Absurd sizes and unusable folders are refused up front, where they are written.

Each used to fail late: a ``<memory>`` at boot (after allocation), a huge
``--num_compute`` or ``allocate N`` with Python's "cannot fit 'int' into an
index-sized integer", a temp folder with a file in the way with a traceback after
``allocate`` took leases. Now each is exit 2 naming the file and the key, element or
option, before anything is locked or allocated.
"""

from __future__ import annotations

import pytest
from support.runenv import RunEnv

pytestmark = pytest.mark.libvirt

HUGE = "99999999999999999999"


def _first_error(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("error:"))


def _nothing_taken(env: RunEnv) -> None:
    assert env.allocation() is None
    if env.ledger_exists():
        assert env.last_run() is None  # refused before a run was journaled


def test_huge_num_compute_is_refused_before_anything(env: RunEnv) -> None:
    recipe = env.recipe("allocate $num_compute\nboot frontend\n")
    result = env.cli(str(recipe), "--vcname", "calit2", "--num_compute", HUGE)
    assert result.rc == 2, result.err
    assert _first_error(result.err) == (
        f"error: --num_compute {HUGE}: expected at most 1048576 (no site has more CPUs); the "
        f"site has 14 CPUs to hand out in all ({env.site_path}: [resources] cpus 16 - reserve 2)"
    )
    _nothing_taken(env)


@pytest.mark.parametrize("how", ["literal", "set"])
def test_huge_allocate_count_is_a_recipe_error(env: RunEnv, how: str) -> None:
    if how == "literal":
        recipe = env.recipe(f"allocate {HUGE}\n")
        result = env.cli(str(recipe), "--vcname", "calit2")
        where = f"{recipe}:1:10"
    else:
        recipe = env.recipe("param n = 1\nallocate $n\n")
        result = env.cli(str(recipe), "--vcname", "calit2", "--set", f"n={HUGE}")
        where = f"{recipe}:2:10"
    assert result.rc == 2, result.err
    assert _first_error(result.err).startswith(
        f"error: {where}: cannot allocate {HUGE} compute CPUs: no site has more than 1048576"
    )
    assert "index-sized" not in result.err
    _nothing_taken(env)


@pytest.mark.parametrize(
    ("memory", "message"),
    [
        (f"<memory>{HUGE}</memory>", f"{HUGE} KiB is more memory than any machine has"),
        ("<memory unit='TiB'>65</memory>", "65 TiB is more memory than any machine has"),
        ("<memory>\u00b9\u00b2</memory>", "'\u00b9\u00b2' is not a memory size"),
    ],
)
def test_absurd_memory_in_vc_in_is_refused_naming_the_element(
    env: RunEnv, memory: str, message: str
) -> None:
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("<memory>1048576</memory>", memory, 1))
    recipe = env.recipe("allocate 1\nboot frontend\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 2, result.err
    line = _first_error(result.err)
    assert line.startswith(f"error: {vc_in}") and "/vc/frontend/domain/memory" in line
    assert message in line
    _nothing_taken(env)


def test_absurd_vcpu_count_is_refused(env: RunEnv) -> None:
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("<vcpu>1</vcpu>", f"<vcpu>{HUGE}</vcpu>", 1))
    result = env.cli(str(env.recipe("allocate 1\n")), "--vcname", "calit2")
    assert result.rc == 2
    assert f"{HUGE} vCPUs in one domain: expected at most 4096" in _first_error(result.err)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "cpus = 16",
            f"cpus = {HUGE}",
            f"[resources] cpus: expected an integer <= 1048576, got {HUGE}",
        ),
        (
            "reserve = 2",
            "reserve = 2\nmax_cpus_per_node = 100000",
            "[resources] max_cpus_per_node: expected an integer <= 4096, got 100000",
        ),
    ],
)
def test_absurd_site_sizes_are_refused_naming_the_key(
    env: RunEnv, old: str, new: str, message: str
) -> None:
    env.site_path.write_text(env.site_path.read_text().replace(old, new, 1))
    result = env.cli(str(env.recipe("allocate 1\n")), "--vcname", "calit2")
    assert result.rc == 2, result.err
    assert _first_error(result.err) == f"error: {env.site_path}: {message}"


def test_temp_folder_with_a_file_in_the_way_is_refused_before_allocating(env: RunEnv) -> None:
    (env.root / "tmp").write_text("a file where the temp folder should be")
    recipe = env.recipe("allocate 1\nboot frontend\n")
    result = env.cli(str(recipe), "--vcname", "calit2")
    assert result.rc == 2, result.err
    assert _first_error(result.err) == (
        f"error: {env.site_path}: [paths] temp: the temp folder {env.root / 'tmp' / 'calit2'} "
        f"cannot be used: {env.root / 'tmp'} is not a folder (a file is in the way)"
    )
    assert "Traceback" not in result.err
    _nothing_taken(env)


def test_recipe_path_that_is_a_folder_says_so(env: RunEnv) -> None:
    folder = env.root / "recipes"
    folder.mkdir()
    for args in ((str(folder), "--vcname", "calit2"), ("check", str(folder))):
        result = env.cli(*args)
        assert result.rc == 2
        assert _first_error(result.err) == (
            f"error: {folder}: is a folder, not a recipe file (e.g. {folder}/rocks6.prg)"
        )
