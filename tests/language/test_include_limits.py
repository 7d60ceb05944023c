"""Includes reach only the recipe's folder tree, the site's recipe folders and the bundled
recipes, and nest at most MAX_INCLUDE_DEPTH deep.

A refused include never shows the target's content: it is refused before it is read.
"""

from __future__ import annotations

import importlib.resources
import io
import os
from pathlib import Path

import pytest

from pragmash.errors import RecipeError
from pragmash.language.includes import MAX_INCLUDE_DEPTH
from pragmash.language.parser import parse_file
from pragmash.ui.cli import main as cli

SECRET = "TOPSECRET: root:$6$hash"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    recipes = tmp_path / "recipes"
    (recipes / "lib").mkdir(parents=True)
    (recipes / "lib" / "part.prg").write_text("echo part\n", encoding="utf-8")
    return recipes


def _refusal(recipe: Path, search_path: tuple[Path, ...] = ()) -> RecipeError:
    with pytest.raises(RecipeError) as err:
        parse_file(recipe, search_path=search_path)
    shown = err.value.render()
    assert "TOPSECRET" not in shown and "root:" not in shown
    return err.value


@pytest.mark.parametrize(
    "target", ["../secret.txt", "../../../../../../../../etc/shadow", "/etc/passwd"]
)
def test_include_outside_the_allowed_folders_is_refused_unread(tree: Path, target: str) -> None:
    recipe = tree / "r.prg"
    recipe.write_text(f'allocate 1\ninclude "{target}"\n', encoding="utf-8")
    err = _refusal(recipe)
    assert err.span.line == 2
    assert err.message.startswith(f"include '{target}' is refused: it is ")
    assert "outside the folders includes may come from" in err.message


def test_symlink_inside_the_tree_to_a_file_outside_is_refused(tree: Path) -> None:
    os.symlink(tree.parent / "secret.txt", tree / "lib" / "innocent.prg")
    recipe = tree / "r.prg"
    recipe.write_text('include "lib/innocent.prg"\n', encoding="utf-8")
    err = _refusal(recipe)
    assert f"it is {tree.parent / 'secret.txt'}" in err.message


def test_bundled_lookup_cannot_climb_out_of_the_bundled_recipes(tree: Path) -> None:
    # resolved: in a checkout pragmash/recipes is a symlink to recipes/, and ".." climbs
    # from where the files really are
    bundled = Path(str(importlib.resources.files("pragmash.recipes"))).resolve()
    beside = sorted(p for p in bundled.parent.iterdir() if p.is_file())[0]  # a file next to it
    recipe = tree / "r.prg"
    recipe.write_text(f'include "../{beside.name}"\n', encoding="utf-8")
    err = _refusal(recipe)
    assert f"{beside.name}, outside the folders" in err.message


def test_includes_inside_the_tree_the_site_folders_and_the_bundled_recipes_work(
    tree: Path, tmp_path: Path
) -> None:
    site_recipes = tmp_path / "site-recipes"
    site_recipes.mkdir()
    (site_recipes / "site-part.prg").write_text('include "../site-recipes/x.prg"\n')
    (site_recipes / "x.prg").write_text("echo x\n")
    recipe = tree / "r.prg"
    recipe.write_text(
        'include "lib/part.prg"\ninclude "site-part.prg"\ninclude "common/boot-frontend.prg"\n',
        encoding="utf-8",
    )
    program = parse_file(recipe, search_path=(site_recipes,))
    assert len(program.statements) == 3
    # a nested include may climb back within the recipe's own tree
    (tree / "lib" / "up.prg").write_text('include "../lib/part.prg"\n')
    recipe.write_text('include "lib/up.prg"\n', encoding="utf-8")
    assert parse_file(recipe).statements


def test_deep_include_chain_is_an_error_naming_the_chain(tmp_path: Path) -> None:
    for i in range(100):
        (tmp_path / f"f{i}.prg").write_text(f'include "f{i + 1}.prg"\n', encoding="utf-8")
    (tmp_path / "f100.prg").write_text("echo bottom\n", encoding="utf-8")
    with pytest.raises(RecipeError) as err:
        parse_file(tmp_path / "f0.prg")
    chain = " -> ".join(
        [str(tmp_path / "f0.prg")]
        + [str(tmp_path / f"f{i}.prg") for i in range(1, MAX_INCLUDE_DEPTH)]
        + [f"f{MAX_INCLUDE_DEPTH}.prg"]
    )
    assert err.value.message == f"includes nest deeper than {MAX_INCLUDE_DEPTH} files: {chain}"
    assert err.value.span.file == str(tmp_path / f"f{MAX_INCLUDE_DEPTH - 1}.prg")
    # a chain within the limit is fine
    (tmp_path / f"f{MAX_INCLUDE_DEPTH - 1}.prg").write_text("echo bottom\n", encoding="utf-8")
    assert parse_file(tmp_path / "f0.prg").statements


def test_check_command_reports_the_refusal_with_exit_2(tree: Path) -> None:
    recipe = tree / "r.prg"
    recipe.write_text('include "../../../../../../../../etc/shadow"\n', encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["check", str(recipe)], out=out, err=err)
    assert rc == 2
    first = err.getvalue().splitlines()[0]
    assert first.startswith(
        f"error: {recipe}:1:9: include '../../../../../../../../etc/shadow' is refused: "
        "it is /etc/shadow, outside the folders includes may come from"
    )
    assert "root:" not in err.getvalue()
