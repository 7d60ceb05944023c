"""Recipes from elsewhere may not run host commands or bring their own driver scripts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from support.clirun import cli

from pragmash.vc.repository.vcdb import demo_repository_path

DATA = Path(__file__).parents[1] / "data"
SEED = DATA / "seed_driver"
SITE_A = DATA / "sites" / "site-a.toml"

REFUSED = "'run' is refused"


def shared_recipe(folder: Path, command: str, *, name: str = "shared.prg") -> Path:
    """A recipe as another site might share it: allocate, then a host command."""
    folder.mkdir(parents=True, exist_ok=True)
    recipe = folder / name
    recipe.write_text(
        f"# {name}: downloaded from another site\nallocate 1\nrun {command}\nboot frontend\n",
        encoding="utf-8",
    )
    return recipe


def site_with(tmp_path: Path, extra: str) -> Path:
    site = tmp_path / "site" / "site.toml"
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(SITE_A.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return site


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """What the shared recipe tries to delete; it must survive a refused run."""
    target = tmp_path / "x"
    target.mkdir()
    (target / "precious").write_text("keep me", encoding="utf-8")
    return target


def test_run_is_refused_by_default(tmp_path: Path, victim: Path) -> None:
    recipe = shared_recipe(tmp_path / "shared", f"rm -rf {victim}")
    code, out, err = cli(str(recipe), "--vcname", "calit2")
    assert code == 2
    assert f"{recipe}:3:1: {REFUSED}" in err
    assert "[policy] allow_run = true" in err and "--allow-run" in err
    assert f"run rm -rf {victim}" in err  # the offending line is shown
    assert (victim / "precious").read_text(encoding="utf-8") == "keep me"
    assert "allocate" not in out  # refused before the first step ran


def test_check_refuses_the_literal_rm_rf(tmp_path: Path) -> None:
    recipe = shared_recipe(tmp_path / "shared", "rm -rf /tmp/x")
    code, _, err = cli("check", str(recipe))
    assert code == 2
    assert f"{recipe}:3:1: {REFUSED}" in err
    assert "run rm -rf /tmp/x" in err


def test_run_in_a_shared_include_is_refused_where_it_is_written(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared_recipe(shared / "common", "rm -rf /tmp/x", name="helpers.prg")
    main_recipe = shared / "main.prg"
    main_recipe.write_text('include "common/helpers.prg"\n', encoding="utf-8")
    code, _, err = cli("check", str(main_recipe))
    assert code == 2
    assert f"{shared / 'common' / 'helpers.prg'}:3:1: {REFUSED}" in err


def test_allow_run_on_the_command_line_permits_it(tmp_path: Path, victim: Path) -> None:
    recipe = shared_recipe(tmp_path / "shared", f"rm -rf {victim}")
    code, out, err = cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert code == 0, err
    assert not victim.exists()
    assert re.search(r"ok\s+\S+shared.prg:3:1\s+run rm -rf", out), out


def test_site_policy_permits_it(tmp_path: Path, victim: Path) -> None:
    site = site_with(tmp_path, "[policy]\nallow_run = true\n")
    recipe = shared_recipe(tmp_path / "shared", f"rm -rf {victim}")
    code, _, err = cli(str(recipe), "--vcname", "calit2", "--site", str(site))
    assert code == 0, err
    assert not victim.exists()


def test_run_never_goes_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    recipe = shared_recipe(tmp_path / "shared", f'echo "hi; touch {marker}"')
    code, out, err = cli(str(recipe), "--vcname", "calit2", "--allow-run")
    assert code == 0, err
    assert f"hi; touch {marker}" in out
    assert not marker.exists()


# -- driver folders ---------------------------------------------------------------------


def repository_naming(driver: str, dest: Path) -> Path:
    shutil.copytree(demo_repository_path(), dest)
    vcin = dest / "calit2" / "vc-in.xml"
    text = vcin.read_text(encoding="utf-8").replace(
        "<driver>rocks6_client</driver>", f"<driver>{driver}</driver>"
    )
    vcin.write_text(text, encoding="utf-8")
    return dest


def test_driver_folder_next_to_the_recipe_is_not_picked_up(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    recipe = shared_recipe(shared, "true")
    recipe.write_text("allocate 1\nboot frontend\n", encoding="utf-8")
    shutil.copytree(SEED, shared / "evil_driver")  # brought along with the recipe
    shutil.copytree(SEED, shared / "drivers" / "evil_driver")
    repo = repository_naming("evil_driver", tmp_path / "repo")
    shutil.copytree(SEED, repo / "calit2" / "evil_driver")  # or with the images
    code, _, err = cli(str(recipe), "--vcname", "calit2", "--base_path", str(repo))
    assert code == 2
    assert "unknown distro driver 'evil_driver'" in err
    assert "/vc/driver" in err  # says who named it


def test_driver_folder_from_the_site_config_is_used(tmp_path: Path) -> None:
    site = site_with(tmp_path, '[drivers]\nfolders = ["trusted-drivers"]\n')
    shutil.copytree(SEED, site.parent / "trusted-drivers" / "site_driver")
    repo = repository_naming("site_driver", tmp_path / "repo")
    recipe = tmp_path / "r.prg"
    recipe.write_text("allocate 1\nboot frontend\n", encoding="utf-8")
    code, out, err = cli("check", str(recipe), "--base_path", str(repo), "--site", str(site))
    assert code == 0, err
    assert "ok" in out
    # Named in the error when missing: the site's folders are listed as searched.
    repo2 = repository_naming("absent_driver", tmp_path / "repo2")
    code, _, err = cli("check", str(recipe), "--base_path", str(repo2), "--site", str(site))
    assert code == 2
    assert str(site.parent / "trusted-drivers") in err


def test_exec_passes_the_same_gate_as_run(tmp_path: Path) -> None:
    """A command inside the guests is a command too: refused unless the site allows it."""
    recipe = tmp_path / "inside.prg"
    recipe.write_text('allocate 1\nboot all\nexec compute "rm -rf /"\n', encoding="utf-8")
    code, _, err = cli("check", str(recipe))
    assert code == 2
    assert f"{recipe}:3:1: 'exec' is refused" in err and "--allow-run" in err
    code, out, err = cli(str(recipe), "--vcname", "calit2")
    assert code == 2 and "'exec' is refused" in err and "allocate" not in out
    code, out, _ = cli(str(recipe), "--vcname", "calit2", "--allow-run", "--dry-run")
    assert code == 0
    assert "calit2-compute-0: exec rm -rf / (guest agent, else ssh; timeout 5m)" in out
    site = site_with(tmp_path, "[policy]\nallow_run = true\n")
    code, out, err = cli("check", str(recipe), "--site", str(site))
    assert code == 0, err
