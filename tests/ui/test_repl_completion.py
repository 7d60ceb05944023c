"""The REPL's completer and lexer, tested directly with prompt_toolkit Documents."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from pragmash.language.vocabulary import FIX_METHODS, WAIT_STATES
from pragmash.ui.repl.completion import ReplCompleter
from pragmash.ui.repl.debugger import Repl
from pragmash.ui.repl.session import RecipeLexer

NODES = ["calit2-frontend", "calit2-compute-0", "calit2-compute-1"]
VARIABLES = ["vcname", "num_compute", "vc_out"]


def complete(text: str) -> list[str]:
    completer = ReplCompleter(Repl.command_names(aliases=False), lambda: NODES, lambda: VARIABLES)
    doc = Document(text, cursor_position=len(text))
    return [
        c.text for c in completer.get_completions(doc, CompleteEvent(completion_requested=True))
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ste", ["step"]),
        ("con", ["console", "continue"]),
        ("al", ["allocate"]),
        ("show ", ["vc-out", "nodes", "node", "vars", "journal", "leases"]),
        ("show node calit2-c", ["calit2-compute-0", "calit2-compute-1"]),
        ("help ret", ["retry"]),
        ("break bo", ["boot"]),
        ("boot comp", ["compute", "compute["]),
        ("boot calit2-f", ["calit2-frontend"]),
        ("fix all via virt-", ["virt-customize", "virt-v2v"]),
        ("wait frontend r", ["running"]),
        ("wait frontend up ti", ["timeout"]),
        ("wait frontend con", ["console"]),
        ("echo $vc", ["$vc_out", "$vcname"]),
        ("echo ${num", ["${num_compute}"]),
        ("echo at:$vcn", ["at:$vcname"]),
        ("ve_driver/de", ["ve_driver/destroy"]),
        ("vc_driver/pre_b", ["vc_driver/pre_boot"]),
        ("ve_driver/state comp", ["compute", "compute["]),
        ("allocate 2; bo", ["boot"]),
    ],
)
def test_completes_what_fits_there(text: str, expected: list[str]) -> None:
    assert complete(text) == expected


def test_methods_and_states_are_the_languages_own() -> None:
    """The completer offers exactly what the checker accepts: one vocabulary, no copies."""
    assert complete("fix all via ") == list(FIX_METHODS)
    offered = complete("wait frontend ")
    assert [w for w in offered if w in WAIT_STATES] == list(WAIT_STATES)


def test_no_completion_where_nothing_fits() -> None:
    assert complete("echo hello wor") == []
    assert complete("step") == []  # already whole
    assert complete("wait frontend up timeout ") == []
    assert complete("wait frontend console ") == []  # the text is the user's


def test_completions_replace_only_the_word_being_typed() -> None:
    completer = ReplCompleter(Repl.command_names(aliases=False), lambda: NODES, lambda: VARIABLES)
    doc = Document("boot calit2-co", cursor_position=len("boot calit2-co"))
    found = list(completer.get_completions(doc, CompleteEvent(completion_requested=True)))
    assert {c.start_position for c in found} == {-len("calit2-co")}
    assert {c.display_meta_text for c in found} == {"node"}


def test_lexer_colours_commands_statements_and_words() -> None:
    lexer = RecipeLexer(Repl.command_names())
    pieces = lexer.lex_line('boot compute[1]; echo "$vcname" $x # note')
    styled = {p[1]: p[0] for p in pieces if p[0]}
    assert styled["boot"] == "class:keyword"
    assert styled["compute[1]"] == "class:target"
    assert styled["echo"] == "class:keyword"
    assert styled['"$vcname"'] == "class:string"
    assert styled["$x"] == "class:variable"
    assert styled["# note"] == "class:comment"
    assert "".join(p[1] for p in pieces) == 'boot compute[1]; echo "$vcname" $x # note'
    assert lexer.lex_line("show nodes")[0] == ("class:command", "show")
    assert lexer.lex_line("ve_driver/boot all")[0] == ("class:driver", "ve_driver/boot")
    assert ("class:number", "2m") in lexer.lex_line("wait frontend up timeout 2m")


def test_lexer_reads_documents_line_by_line() -> None:
    get_line = RecipeLexer(()).lex_document(Document("allocate 2\nboot all"))
    assert get_line(1)[0] == ("class:keyword", "boot")
    assert get_line(5) == []
