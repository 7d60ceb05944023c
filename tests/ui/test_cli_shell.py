"""What a site administrator reaches for around the commands: unknown commands, options
in either place, site discovery, `site check`, shell completion, the man page."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pragmash.errors import EXIT_OK, EXIT_USER
from pragmash.ui.cli.main import main
from pragmash.ui.cli.table import COMMANDS

ROOT = Path(__file__).parents[2]
ROCKS6 = str(ROOT / "recipes" / "rocks6.prg")
DEMO_SITE = ROOT / "pragmash" / "demo" / "site.toml"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "guess"),
    [
        (["stauts", "calit2"], "status"),
        (["ls"], "list"),
        (["hsots"], "hosts"),
        (["destroy", "x"], "clean"),
    ],
)
def test_unknown_command_is_named_with_a_guess(argv: list[str], guess: str) -> None:
    code, _, err = run(*argv)
    assert code == EXIT_USER
    assert f"unknown command {argv[0]!r}" in err
    assert f"did you mean `pragmash {guess}`?" in err
    assert "--vcname" not in err  # not read as a recipe path any more


def test_a_word_nothing_resembles_gets_no_guess() -> None:
    code, _, err = run("qqqqqq")
    assert code == EXIT_USER and "did you mean" not in err and "recipe file" in err


@pytest.mark.parametrize("argv", [["-V"], ["version"], ["--version"]])
def test_every_spelling_of_version(argv: list[str]) -> None:
    code, out, _ = run(*argv)
    assert code == EXIT_OK and out.startswith("pragmash ") and "libvirt-python" in out


def test_global_options_before_or_after_the_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    for argv in (
        ["--site", missing, "list"],
        ["list", "--site", missing],
        [f"--site={missing}", "hosts"],
    ):
        code, _, err = run(*argv)
        assert code == EXIT_USER and "no such site config file" in err and missing in err, argv
    # and before a recipe path: the run form
    code, _, err = run("--site", missing, ROCKS6, "--vcname", "calit2")
    assert code == EXIT_USER and "no such site config file" in err


def test_log_level_anywhere_and_a_bad_one_refused() -> None:
    code, _, err = run("list", "-v")
    assert code == EXIT_OK
    code, _, err = run("--log-level", "loud", "list")
    assert code == EXIT_USER and "expected one of debug, info, warning, error" in err


def test_options_after_double_dash_belong_to_the_remote_command() -> None:
    from pragmash.ui.cli.globals import split_global_options

    rest, options = split_global_options(["ssh", "vc", "--", "ls", "-v", "--site", "x"])
    assert rest == ["ssh", "vc", "--", "ls", "-v", "--site", "x"]
    assert options.site is None and options.log_level == "warning"


def test_site_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "etc-pragmash-site.toml"
    user = tmp_path / "xdg-config" / "pragmash" / "site.toml"
    monkeypatch.setenv("PRAGMASH_SYSTEM_SITE", str(system))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    code, out, _ = run("site")
    assert code == EXIT_OK and "embedded demo site" in out and "none found" in out
    system.write_text(DEMO_SITE.read_text())
    assert f"{system.resolve()} (chosen by the system-wide default" in run("site")[1]
    user.parent.mkdir(parents=True)
    user.write_text(DEMO_SITE.read_text())
    assert "chosen by the user's default" in run("site")[1]
    env_site = tmp_path / "env.toml"
    env_site.write_text(DEMO_SITE.read_text())
    monkeypatch.setenv("PRAGMASH_SITE", str(env_site))
    assert "chosen by $PRAGMASH_SITE" in run("site")[1]
    assert "chosen by --site" in run("--site", str(system), "site")[1]


def test_site_check_asks_hosts_and_folders(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    text = DEMO_SITE.read_text()
    site.write_text(text)
    code, out, _ = run("site", "check", str(site))
    assert code == EXIT_OK and "ok   host default: test:///default" in out
    bad = tmp_path / "bad.toml"
    # a host that does not answer (a unix socket that is not there) and an unwritable folder
    bad.write_text(
        text.replace(
            'uri = "test:///default"', f'uri = "qemu+unix:///system?socket={tmp_path}/none"'
        )
        + "\n"
    )
    code, out, err = run("site", "check", str(bad))
    assert code == EXIT_USER and "BAD  host default" in out and "1 problem(s)" in err


def test_completion_candidates() -> None:
    _, out, _ = run("__complete", "1", "sta")
    assert {"status", "start", "stop"} <= set(out.split())
    _, out, _ = run("__complete", "3", ROCKS6, "--set", "")
    assert "num_compute=" in out.split()
    _, out, _ = run("__complete", "2", "status", "--")
    assert "--json" in out.split() and "--site" in out.split()
    _, out, _ = run("__complete", "2", "--log-level", "")
    assert out.split() == ["debug", "info", "warning", "error"]


def test_completion_offers_held_vcs_and_their_nodes(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(DEMO_SITE.read_text())
    assert run("--site", str(site), ROCKS6, "--vcname", "calit2")[0] == EXIT_OK
    _, out, _ = run("__complete", "4", "--site", str(site), "status", "")
    assert out.split() == ["calit2"]
    _, out, _ = run("__complete", "5", "--site", str(site), "console", "calit2", "")
    assert {"calit2-frontend", "frontend", "compute[0]"} <= set(out.split())
    assert run("--site", str(site), "clean", "calit2", "--yes")[0] == EXIT_OK


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_through_the_shell(tmp_path: Path) -> None:
    """The bash script, sourced in a real bash, completes `pragmash sta<Tab>`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pragmash").symlink_to(Path(sys.executable).parent / "pragmash")
    script = tmp_path / "pragmash.bash"
    script.write_text(run("completion", "bash")[1])
    probe = (
        f"source {script}; COMP_WORDS=(pragmash sta); COMP_CWORD=1; _pragmash; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["status", "start"]


def test_man_page_covers_every_command_and_renders(tmp_path: Path) -> None:
    from pragmash.ui.cli.manpage import man_page

    page = man_page()
    assert page.startswith(".TH PRAGMASH 1")
    for command in COMMANDS:
        assert f"\\fB{command.name}\\fR" in page
    if shutil.which("man") is None:
        pytest.skip("no man(1) to render with")
    path = tmp_path / "pragmash.1"
    path.write_text(page)
    done = subprocess.run(
        ["man", "-l", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANPAGER": "cat", "COLUMNS": "80"},
    )
    assert done.returncode == 0 and "pragmash status VCNAME" in done.stdout


def test_shipped_man_page_is_the_generated_one() -> None:
    """docs/pragmash.1 is `python -m pragmash.ui.cli.manpage`'s output, never hand-edited."""
    from pragmash.ui.cli.manpage import man_page

    shipped = (ROOT / "docs" / "pragmash.1").read_text(encoding="utf-8")
    assert shipped == man_page(), "run: python -m pragmash.ui.cli.manpage > docs/pragmash.1"
