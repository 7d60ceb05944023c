"""The REPL's ``reload``: read a VC's vc-in.xml again while its run waits.

A stuck boot is often a template mistake. The administrator fixes the vc-in.xml in
the repository and the next boot uses it, without quitting, cleaning or
allocating again: the leases, staged disks and journal stay.
"""

from __future__ import annotations

from pragmash.engine.run.session import Prepared
from pragmash.errors import UserError
from pragmash.images.provision import provide_images
from pragmash.vc.formats.vcin import load_vc_in


def reload_vc_in(prep: Prepared) -> list[str]:
    """Read the VC's vc-in.xml again, so a template fixed on disk is used by the next boot.

    Made for the REPL's ``reload``: the administrator edits the repository while the run
    waits, instead of quitting and attaching again. The leases, staged disks and journal
    stay; only what the leases do not fix may change. A change the allocation cannot
    follow (another driver, another number of interfaces) is refused and nothing is
    changed. Returns one line per template that changed.
    """
    old = prep.vcin
    repo = prep.repository
    if repo is None:
        new = load_vc_in(old.path)
        where = str(old.path)
    else:
        # read from where it came from (the server, for a web repository), and its images
        # made ready again, so disks compare like with like
        path = repo.vc_in_path(prep.runtime.vcname)
        where = repo.shown(path)
        new, prep.images = provide_images(
            repo, load_vc_in(path, shown=where), prep.site.image_cache
        )
    if new.driver != old.driver:
        raise UserError(
            f"{where}: /vc/driver changed from {old.driver!r} to {new.driver!r}; the run keeps "
            "its driver",
            hint="quit, then `pragmash repl --attach` (or resume) to load the new driver",
        )
    pairs = [("frontend", old.frontend, new.frontend), ("compute", old.compute, new.compute)]
    changed: list[str] = []
    for role, before, after in pairs:
        if (before is None) != (after is None):
            raise UserError(
                f"{where}: the <{role}> template was added or removed; nothing reloaded"
            )
        if before is None or after is None:
            continue
        if len(after.interfaces) != len(before.interfaces):
            raise UserError(
                f"{where}: the {role} template now has {len(after.interfaces)} interface(s), "
                f"the allocation gave it {len(before.interfaces)} MAC(s); nothing reloaded",
                hint=f"`pragmash clean {prep.runtime.vcname}` and run again to allocate for it",
            )
        if after.domain_xml != before.domain_xml:
            changed.append(f"the {role} template changed")
        if after.disk_paths != before.disk_paths:
            changed.append(
                f"the {role} disks changed: used by nodes not staged yet; staged disks are kept"
            )
    runtime = prep.runtime
    # nodes still on their template's disks (not staged yet) follow the new template
    unstaged = {
        n.name: n.role
        for n in runtime.nodes.values()
        if (tmpl := old.frontend if n.role == "frontend" else old.compute) is not None
        and n.disks == tuple(str(p) for p in tmpl.disk_paths)
    }
    runtime.vcin = new
    if runtime.allocation is not None:
        runtime.adopt(runtime.allocation)
    for name, role in unstaged.items():
        tmpl = new.frontend if role == "frontend" else new.compute
        assert tmpl is not None
        runtime.set_disks(name, tmpl.disk_paths)
    return changed
