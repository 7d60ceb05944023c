"""Names a shell completes: the VCs a site holds, a VC's nodes, a recipe's parameters.

Read-only and quick: a site with no ledger yet has no VCs (none is made for asking),
and nothing here contacts an engine.
"""

from __future__ import annotations

from pathlib import Path

from pragmash.language import ast
from pragmash.language.parser import parse_recipe
from pragmash.language.program import flatten
from pragmash.store import allocation as alloc_mod
from pragmash.store.ledger import Ledger
from pragmash.vc.config.site import SiteConfig


def held_vcs(site: SiteConfig) -> list[str]:
    """The VCs holding an allocation in the site's ledger."""
    if not Path(site.ledger_path).is_file():
        return []
    with Ledger(site) as ledger:
        return alloc_mod.allocated_vcs(ledger)


def node_names(site: SiteConfig, vcname: str) -> list[str]:
    """A VC's nodes as commands take them: their names, ``frontend``, ``compute[N]``."""
    if not Path(site.ledger_path).is_file():
        return []
    with Ledger(site) as ledger:
        held = alloc_mod.current_allocation(ledger, vcname)
    if held is None:
        return []
    names = [n.name for n in held.nodes] + ["frontend"]
    names += [f"compute[{n.index}]" for n in held.nodes if n.index is not None]
    return names


def recipe_params(recipe: Path) -> list[str]:
    """The ``param`` names a recipe declares (``--set NAME=VALUE`` takes them)."""
    try:
        program = parse_recipe(recipe.read_text("utf-8"), str(recipe), search_path=())
    except Exception:  # a half-written recipe completes nothing, it must not fail the shell
        return []
    return [
        s.statement.name for s in flatten(program.statements) if isinstance(s.statement, ast.Param)
    ]
