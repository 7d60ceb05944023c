"""``pragmash check RECIPE``: parse and check a recipe against a VC, run nothing.

It loads what a run loads (:func:`pragmash.engine.run.session.prepare`, images not
fetched) so that every problem a run would meet before its first step is listed here.
"""

from __future__ import annotations

from typing import TextIO

from pragmash.driver_api import describe_up_tests
from pragmash.engine.run import session
from pragmash.errors import EXIT_OK, UserError
from pragmash.language import ast
from pragmash.language.program import flatten
from pragmash.ui.arguments import command_parser
from pragmash.ui.run_arguments import add_run_options, run_options
from pragmash.vc.config.repository import site_repository


def cmd_check(args: list[str], out: TextIO, err: TextIO) -> int:
    """Parse and check a recipe; change nothing."""
    p = command_parser("check", "Parse and check a recipe without running it.")
    p.add_argument("recipe")
    p.add_argument(
        "--vcname",
        default=None,
        help="check targets against this VC (default: the first in the repository)",
    )
    add_run_options(p)
    ns = p.parse_args(args)
    session.require_recipe_file(ns.recipe)
    opened = session.opened_site(ns.site)
    site = opened.config
    vcname = ns.vcname
    if vcname is None:
        repo = site_repository(site, ns.base_path)
        vcname = next(iter(sorted(repo.entries)), None)
        if vcname is None:
            raise UserError(f"{repo.location}: the repository holds no VC to check against")
    prep = session.prepare(run_options(ns, vcname=vcname), site=opened, fetch_images=False)
    params = [
        s.statement for s in flatten(prep.program.statements) if isinstance(s.statement, ast.Param)
    ]
    out.write(
        f"{ns.recipe}: ok ({len(flatten(prep.program.statements))} steps, checked against VC {vcname})\n"
    )
    if params:
        out.write("parameters (--set NAME=VALUE):\n")
        for param in params:
            assert isinstance(param, ast.Param)
            default = (
                param.default.literal
                if param.default and param.default.literal is not None
                else "(computed)"
            )
            out.write(f"  {param.name:<20} default {default}\n")
    runtime = prep.runtime
    out.write(
        f"'wait … up': {vcname}'s nodes are up when running and "
        f"{describe_up_tests(runtime.up_tests)} (chosen by {runtime.up_tests_source})\n"
    )
    return EXIT_OK
