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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pragmash.driver_api import StageContext, StageResult
from pragmash.errors import StepError
from pragmash.images.guestfish import read_then_write
from pragmash.images.staging import image_format
from pragmash.images.tools import guestfs_env, run_tool
from pragmash.vc.keys import same_key

STAGE = "vc_driver/pre_boot"
CONFIG_DRIVE_LABEL = "PRAGMASH"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


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
    authorized_keys: Sequence[str] = (),
) -> None:
    """Write each file to its guest path (mode 0644, folders made as needed) in one session.

    A :class:`GuestLink` becomes a symbolic link (replacing what was there).
    ``authorized_keys`` are added to root's ``/root/.ssh/authorized_keys`` (0600, in a
    0700 folder), keeping the keys already there and never adding one twice.
    """
    if not files and not authorized_keys:
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
        argv = ["guestfish", "--rw", f"--format={fmt}", "-a", str(disk), "-m", partition]
        written = [str(g) for _, g in pairs] + ([AUTHORIZED_KEYS] if authorized_keys else [])
        try:
            if authorized_keys:
                _with_keys(
                    argv, commands, authorized_keys, Path(tmp_name), timeout, log_path, kvm_usable
                )
            else:
                argv.append("--")
                for n, command in enumerate(commands):
                    if n:
                        argv.append(":")
                    argv.extend(command)
                run_tool(
                    argv,
                    timeout=timeout,
                    log_path=log_path,
                    env=guestfs_env(kvm_usable),
                    stage=STAGE,
                )
        except StepError as exc:
            raise StepError(
                f"cannot write {', '.join(written)} into {disk} ({partition}): {exc.message}",
                stage=STAGE,
                output_tail=exc.output_tail,
                hint=exc.hint or "is the first partition the image's / file system?",
            ) from exc


def merge_authorized_keys(existing: str, keys: Sequence[str]) -> str:
    """``existing`` authorized_keys text with each of ``keys`` added unless already there."""
    lines = existing.splitlines()
    for key in keys:
        if not any(same_key(line, key) for line in lines):
            lines.append(key)
    return "".join(line + "\n" for line in lines)


def _with_keys(
    argv: list[str],
    commands: list[list[str]],
    keys: Sequence[str],
    tmp: Path,
    timeout: float,
    log_path: Path | None,
    kvm_usable: bool,
) -> None:
    """The same commands plus the merged authorized_keys, in one read-then-write session."""
    old, new = tmp / "authorized_keys.old", tmp / "authorized_keys.new"

    def then() -> list[list[str]]:
        existing = old.read_text(encoding="utf-8", errors="replace") if old.is_file() else ""
        new.write_text(merge_authorized_keys(existing, keys), encoding="utf-8")
        return [
            *commands,
            ["mkdir-p", "/root/.ssh"],
            ["chmod", "0700", "/root/.ssh"],
            ["upload", str(new), AUTHORIZED_KEYS],
            ["chmod", "0600", AUTHORIZED_KEYS],
        ]

    read_then_write(
        argv,
        [["-download", AUTHORIZED_KEYS, str(old)]],  # '-': a missing file is no error
        then,
        timeout=timeout,
        stage=STAGE,
        env=guestfs_env(kvm_usable),
        log_path=log_path,
    )


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
    authorized_keys: Sequence[str] = (),
) -> StageResult:
    """A distro driver's pre_boot: write ``files`` into the node's disk, log and report it.

    Every bundled distro driver's pre_boot is this one step with its own file set;
    ``what`` names the files for the step's message (``"vc-out.xml"``).
    """
    log = ctx.temp_dir / f"{node_name}.inject.log"
    paths = [*files, *([AUTHORIZED_KEYS] if authorized_keys else [])]
    ctx.note(f"{node_name}: writing {', '.join(paths)} into {disk.name}")
    inject_files(
        disk,
        files,
        timeout=timeout,
        log_path=log,
        kvm_usable=kvm_usable,
        authorized_keys=authorized_keys,
    )
    if authorized_keys:
        what += f" and {len(authorized_keys)} SSH key(s) for root"
    return StageResult(
        "done",
        f"{what} written ({len(paths)} file{'s' if len(paths) != 1 else ''})",
        products={"injected": ", ".join(f"{disk}:{p}" for p in paths), "log": str(log)},
    )
