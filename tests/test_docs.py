"""The docs cannot drift: every keyword of the grammar is documented, every example parses."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from pragmash.driver_api import DistroDriver, NodePlan, StageContext
from pragmash.drivers.pragma_boot.folder import _ARG_NAMES
from pragmash.engine.run.session import BUILTINS
from pragmash.language.parser import parse_recipe
from pragmash.language.vocabulary import FIX_METHODS, STATEMENT_WORDS, WAIT_STATES

ROOT = Path(__file__).parent.parent
GRAMMAR = ROOT / "grammar" / "pragmash.lark"
LANGUAGE = ROOT / "docs" / "language.md"
DRIVERS = ROOT / "docs" / "drivers.md"
EXAMPLE = ROOT / "docs" / "examples" / "motd_driver.py"


def grammar_keywords() -> list[str]:
    """Statement keywords and literal words, read from the grammar file itself."""
    text = GRAMMAR.read_text(encoding="utf-8")
    words = re.findall(r"^[A-Z_]+: /([a-z_]+)\(\?!", text, re.MULTILINE)
    words += [f"{d}/" for d in ("ve_driver", "vc_driver") if "v[ec]_driver" in text]
    words += re.findall(r'"([a-z]+)"', text)
    return sorted(set(words))


def examples(doc: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)


def test_grammar_keywords_are_found() -> None:
    keywords = grammar_keywords()
    for expected in ("allocate", "run", "include", "param", "via", "timeout", "all", "ve_driver/"):
        assert expected in keywords


@pytest.mark.parametrize("keyword", grammar_keywords())
def test_every_grammar_keyword_is_documented(keyword: str) -> None:
    spans = re.findall(r"`([^`\n]+)`", LANGUAGE.read_text(encoding="utf-8"))
    end = "" if keyword.endswith("/") else r"(?!\w)"
    pattern = re.compile(rf"(?<![\w/]){re.escape(keyword)}{end}")
    assert any(pattern.search(span) for span in spans), (
        f"docs/language.md shows `{keyword}` in no code span"
    )


@pytest.mark.parametrize("word", STATEMENT_WORDS)
def test_every_statement_has_a_section(word: str) -> None:
    headings = re.findall(r"^### (.+)$", LANGUAGE.read_text(encoding="utf-8"), re.MULTILINE)
    assert any(f"`{word}" in h for h in headings), f"no '### `{word}…`' section"


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_variable_is_documented(name: str) -> None:
    assert f"| `${name}` |" in LANGUAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("word", [*FIX_METHODS, *WAIT_STATES])
def test_fix_methods_and_wait_states_are_documented(word: str) -> None:
    assert f"`{word}`" in LANGUAGE.read_text(encoding="utf-8")


def test_targets_are_documented() -> None:
    text = LANGUAGE.read_text(encoding="utf-8")
    for target in ("frontend", "compute", "compute[i]", "compute[i:j]", "all"):
        assert f"| `{target}` |" in text


LANGUAGE_EXAMPLES = examples(LANGUAGE, "prg")


def test_language_doc_has_examples() -> None:
    assert len(LANGUAGE_EXAMPLES) >= len(STATEMENT_WORDS)


@pytest.mark.parametrize("block", LANGUAGE_EXAMPLES, ids=lambda b: b.splitlines()[0][:40])
def test_every_example_parses(block: str) -> None:
    program = parse_recipe(block, str(LANGUAGE))
    assert program.statements


def test_every_statement_word_has_an_example() -> None:
    used = {
        word
        for block in LANGUAGE_EXAMPLES
        for word in STATEMENT_WORDS
        if re.search(rf"(^|;\s*){re.escape(word)}", block, re.MULTILINE)
    }
    assert used == set(STATEMENT_WORDS)


# -- the driver guide ---------------------------------------------------------------------


def test_driver_guide_shows_the_example_file_verbatim() -> None:
    blocks = examples(DRIVERS, "python")
    assert EXAMPLE.read_text(encoding="utf-8") in blocks


def test_driver_guide_seed_table_matches_the_adapter() -> None:
    rows = dict(re.findall(r"^   \| `(\w+)` \| `([^`]+)` \|$", DRIVERS.read_text(), re.MULTILINE))
    assert rows == {script: " ".join(args) for script, args in _ARG_NAMES.items()}


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("motd_driver", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _node() -> NodePlan:
    return NodePlan(
        "calit2-compute-0", "compute", 0, 1, "<domain/>", ("7a:77:6e:00:00:03",),
        ("default",), (), "qemu", private_ip="10.1.1.254",
    )  # fmt: skip


def test_worked_example_is_a_distro_driver(tmp_path: Path) -> None:
    driver = _load_example().distro_driver()
    assert isinstance(_load_example().MotdDriver(), DistroDriver)
    assert driver.name == "motd_example"
    ctx = StageContext(vcname="calit2", temp_dir=tmp_path, vc_out_path=tmp_path / "vc-out.xml")
    assert driver.pre_fix(_node(), tmp_path / "d.img", ctx).outcome == "skipped"
    assert driver.post_fix(_node(), tmp_path / "d.img", ctx).outcome == "skipped"
    files = driver.guest_files(_node(), tmp_path / "vc-out.xml")
    assert files["/root/vc-out.xml"] == tmp_path / "vc-out.xml"
    assert (
        files["/etc/motd"]
        == b"calit2-compute-0: compute of a PRAGMA virtual cluster (10.1.1.254)\n"
    )


@pytest.mark.vm
def test_worked_example_writes_into_a_real_image(tmp_path: Path) -> None:
    from support.vmimage import build_test_image

    image = build_test_image(tmp_path / "img")
    vc_out = tmp_path / "vc-out.xml"
    vc_out.write_text("<vc>the whole VC's</vc>\n", encoding="utf-8")
    (tmp_path / "calit2-compute-0.xml").write_text("<vc/>\n", encoding="utf-8")  # its own
    notes: list[str] = []
    ctx = StageContext(vcname="calit2", temp_dir=tmp_path, vc_out_path=vc_out, note=notes.append)
    result = _load_example().distro_driver().pre_boot(_node(), image.disk_raw, vc_out, ctx)
    assert result.outcome == "done"
    out = subprocess.run(
        ["guestfish", "--ro", "--format=raw", "-a", str(image.disk_raw), "-m", "/dev/sda1",
         "--", "cat", "/etc/motd", ":", "cat", "/root/vc-out.xml"],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    assert "calit2-compute-0: compute of a PRAGMA virtual cluster" in out
    assert "<vc/>" in out
