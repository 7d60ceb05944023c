"""Put files (vc-out.xml above all) into a node's disk before it boots.

PRAGMA images configure themselves from /root/vc-out.xml, so ``vc_driver/pre_boot``
writes it into the image. libguestfs does that without root or loop devices; its
appliance takes most of the time, so all files go in ONE guestfish session. The
first partition is mounted explicitly: pragma_boot's images need not hold an OS
that libguestfs inspection recognizes (``virt-copy-in`` refuses those).

For images that cannot be opened (an unknown file system, an encrypted disk), a
small vfat "config drive" labelled PRAGMASH can carry the same files instead.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pragmash.driver_api import StageContext, StageResult
from pragmash.errors import StepError
from pragmash.images.staging import image_format
from pragmash.images.tools import guestfs_env, run_tool

STAGE = "vc_driver/pre_boot"
CONFIG_DRIVE_LABEL = "PRAGMASH"


@dataclass(frozen=True)
class GuestLink:
    """A symbolic link to put in the guest (``systemctl enable`` is one: a link in a .wants/)."""

    target: str


GuestContent = bytes | Path | GuestLink


def _guest_path(path: str) -> PurePosixPath:
    """A guest path must be absolute and stay put (no ``..``), else it is a caller's bug."""
    guest = PurePosixPath(path)
    if not guest.is_absolute() or ".." in guest.parts or guest == PurePosixPath("/"):
        raise StepError(
            f"cannot put a file at {path!r} in the guest: expected an absolute file path "
            "such as /root/vc-out.xml",
            stage=STAGE,
        )
    return guest


def _materialize(files: Mapping[str, GuestContent], tmp: Path) -> list[tuple[Path, PurePosixPath]]:
    """Write in-memory contents to files so the tools can read them; check Path sources exist.

    Links are not files: they are left out here (see :func:`_links`).
    """
    pairs: list[tuple[Path, PurePosixPath]] = []
    for i, (guest_path, content) in enumerate(files.items()):
        guest = _guest_path(guest_path)
        if isinstance(content, GuestLink):
            continue
        if isinstance(content, Path):
            if not content.is_file():
                raise StepError(f"file {content} to put at {guest} does not exist", stage=STAGE)
            local = content
        else:
            local = tmp / f"{i}-{guest.name}"
            local.write_bytes(content)
        pairs.append((local, guest))
    return pairs


def _links(files: Mapping[str, GuestContent]) -> list[tuple[PurePosixPath, str]]:
    return [(_guest_path(p), c.target) for p, c in files.items() if isinstance(c, GuestLink)]


def inject_files(
    disk: Path,
    files: Mapping[str, GuestContent],
    *,
    partition: str = "/dev/sda1",
    timeout: float = 600.0,
    log_path: Path | None = None,
    kvm_usable: bool = False,
) -> None:
    """Write each file to its guest path (mode 0644, folders made as needed) in one session.

    A :class:`GuestLink` becomes a symbolic link (replacing what was there).
    """
    if not files:
        return
    if not disk.is_file():
        raise StepError(f"disk {disk} not found: stage the image before pre_boot", stage=STAGE)
    fmt = image_format(disk)
    with tempfile.TemporaryDirectory(prefix="pragmash-inject-") as tmp_name:
        pairs = _materialize(files, Path(tmp_name))
        commands: list[list[str]] = []
        for local, guest in pairs:
            commands.append(["mkdir-p", str(guest.parent)])
            commands.append(["upload", str(local), str(guest)])
            commands.append(["chmod", "0644", str(guest)])
        for guest, target in _links(files):
            commands.append(["mkdir-p", str(guest.parent)])
            commands.append(["ln-sf", target, str(guest)])
        argv = ["guestfish", "--rw", f"--format={fmt}", "-a", str(disk), "-m", partition, "--"]
        for n, command in enumerate(commands):
            if n:
                argv.append(":")
            argv.extend(command)
        try:
            run_tool(
                argv,
                timeout=timeout,
                log_path=log_path,
                env=guestfs_env(kvm_usable),
                stage=STAGE,
            )
        except StepError as exc:
            raise StepError(
                f"cannot write {', '.join(str(g) for _, g in pairs)} into {disk} "
                f"({partition}): {exc.message}",
                stage=STAGE,
                output_tail=exc.output_tail,
                hint=exc.hint or "is the first partition the image's / file system?",
            ) from exc


def make_config_drive(
    dest: Path, files: Mapping[str, GuestContent], *, timeout: float = 60.0
) -> Path:
    """A vfat disk labelled PRAGMASH holding the files at their paths (made without root).

    Needs dosfstools (mkfs.vfat) and mtools (mcopy, mmd).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pragmash-cfg-") as tmp_name:
        pairs = _materialize(files, Path(tmp_name))
        payload = sum(local.stat().st_size for local, _ in pairs)
        size_kib = max(1440, math.ceil(payload * 1.25 / 1024) + 512)
        tmp_dest = dest.with_name(dest.name + ".part")
        tmp_dest.unlink(missing_ok=True)
        env = {"MTOOLS_SKIP_CHECK": "1"}
        try:
            run_tool(
                ["mkfs.vfat", "-n", CONFIG_DRIVE_LABEL, "-C", str(tmp_dest), str(size_kib)],
                timeout=timeout,
                stage=STAGE,
            )
            made: set[str] = set()
            for local, guest in pairs:
                parents = list(reversed(guest.parents))[1:]  # skip "/"
                for parent in parents:
                    if str(parent) not in made:
                        run_tool(
                            ["mmd", "-D", "s", "-i", str(tmp_dest), f"::{parent}"],
                            timeout=timeout,
                            env=env,
                            stage=STAGE,
                        )
                        made.add(str(parent))
                run_tool(
                    ["mcopy", "-o", "-i", str(tmp_dest), str(local), f"::{guest}"],
                    timeout=timeout,
                    env=env,
                    stage=STAGE,
                )
            tmp_dest.replace(dest)
        except BaseException:
            tmp_dest.unlink(missing_ok=True)
            raise
    return dest


def inject_for_node(
    node_name: str,
    disk: Path,
    files: Mapping[str, GuestContent],
    ctx: StageContext,
    *,
    what: str,
    timeout: float = 600.0,
    kvm_usable: bool = False,
) -> StageResult:
    """A distro driver's pre_boot: write ``files`` into the node's disk, log and report it.

    Every bundled distro driver's pre_boot is this one step with its own file set;
    ``what`` names the files for the step's message (``"vc-out.xml"``).
    """
    log = ctx.temp_dir / f"{node_name}.inject.log"
    ctx.note(f"{node_name}: writing {', '.join(files)} into {disk.name}")
    inject_files(disk, files, timeout=timeout, log_path=log, kvm_usable=kvm_usable)
    return StageResult(
        "done",
        f"{what} written ({len(files)} file{'s' if len(files) != 1 else ''})",
        products={"injected": ", ".join(f"{disk}:{p}" for p in files), "log": str(log)},
    )
