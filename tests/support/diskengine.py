"""An engine on test:///default that still does the disk work (staging, distro stages), and a driver folder that logs its calls."""

from __future__ import annotations

import io
from pathlib import Path

from pragmash.drivers.libvirt.engine import LibvirtEngine
from pragmash.engine.run import session
from pragmash.engine.run.diskwork import DiskWork
from pragmash.ui.cli import run as cli_run
from support.runenv import RunEnv, make_env


class RealDiskEngine(LibvirtEngine):
    """test:///default, but with staging and distro stages run as on a real engine."""

    @property
    def simulated(self) -> bool:
        return False


SCRIPT = '#!/bin/sh\necho "{stage} $*" >> {log}\n'


def _driver_env(root: Path) -> tuple[RunEnv, Path]:
    env = make_env(root, extra='\n[drivers]\nfolders = ["drivers"]\n')
    folder = env.root / "drivers" / "logdistro"
    folder.mkdir(parents=True)
    log = env.root / "calls.log"
    for stage in ("pre_fix_driver", "post_fix_driver", "pre_boot"):
        script = folder / stage
        script.write_text(SCRIPT.format(stage=stage, log=log))
        script.chmod(0o755)
    vc_in = env.repo / "calit2" / "vc-in.xml"
    vc_in.write_text(vc_in.read_text().replace("rocks6_client", "logdistro"))
    return env, log


def _run(env: RunEnv, text: str, *, allow_run: bool = False) -> tuple[int, str]:
    recipe = env.recipe(text)
    options = session.RunOptions(
        recipe=str(recipe), vcname="calit2", site=str(env.site_path), allow_run=allow_run
    )
    prep = session.prepare(options)
    prep.runtime.engine = RealDiskEngine("test:///default")
    prep.runtime.disk_work = DiskWork.of(prep.runtime.engine, prep.runtime.site)
    run = session.start(prep)
    out, err = io.StringIO(), io.StringIO()
    rc = cli_run.finish(run, out, err)
    return rc, out.getvalue() + err.getvalue()
