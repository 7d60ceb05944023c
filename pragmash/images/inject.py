"""Put files (vc-out.xml above all) into a node's disk before it boots.

PRAGMA images configure themselves from /root/vc-out.xml, so ``vc_driver/pre_boot``
writes it into the image. libguestfs does that without root or loop devices; its
appliance takes most of the time, so all files of all the nodes of a ``boot`` step
go in ONE guestfish session, each node's disk one drive of it. The
first partition is mounted explicitly: pragma_boot's images need not hold an OS
that libguestfs inspection recognizes (``virt-copy-in`` refuses those).

For images that cannot be opened (an unknown file system, an encrypted disk), a
small vfat "config drive" labelled PRAGMASH can carry the same files instead.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pragmash import outcomes, stages
from pragmash.driver_api import StageContext, StageResult
from pragmash.errors import StepError
from pragmash.images.fatvolume import make_fat_volume
from pragmash.images.guestfish import read_then_write
from pragmash.images.staging import image_format
from pragmash.images.tools import accel_words, guestfs_env, run_tool
from pragmash.vc.formats.keys import same_key

CONFIG_DRIVE_LABEL = "PRAGMASH"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
MAX_DRIVES = 200  # per appliance launch; libguestfs' direct backend takes up to 255
DRIVE_SECONDS = 5.0  # added to the timeout for each drive of a launch
MARKER = "@@pragmash-inject-"
_SDA_PARTITION = re.compile(r"^/dev/sda(\d*)$")


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
            stage=stages.PRE_BOOT,
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
                raise StepError(
                    f"file {content} to put at {guest} does not exist", stage=stages.PRE_BOOT
                )
            local = content
        else:
            local = tmp / f"{i}-{guest.name}"
            local.write_bytes(content)
        pairs.append((local, guest))
    return pairs


def _links(files: Mapping[str, GuestContent]) -> list[tuple[PurePosixPath, str]]:
    return [(_guest_path(p), c.target) for p, c in files.items() if isinstance(c, GuestLink)]


@dataclass(frozen=True)
class InjectJob:
    """Files for one node's disk. ``partition`` names the / partition as if the disk
    were the only one (``/dev/sda1``); a batch renames it for the drive's place."""

    name: str
    disk: Path
    files: Mapping[str, GuestContent]
    partition: str = "/dev/sda1"
    # SSH public keys to add to root's authorized_keys (``--key``), keeping those there
    authorized_keys: tuple[str, ...] = ()

    @property
    def written(self) -> list[str]:
        """The guest paths this job writes, for messages."""
        return [*self.files, *([AUTHORIZED_KEYS] if self.authorized_keys else [])]


def drive_device(index: int) -> str:
    """The appliance's name for its ``index``-th drive: sda … sdz, sdaa, sdab … (as Linux)."""
    letters = ""
    n = index + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return f"/dev/sd{letters}"


def _partition_on(job: InjectJob, index: int, alone: bool) -> str:
    """The job's partition on drive ``index`` of the launch."""
    match = _SDA_PARTITION.match(job.partition)
    if match:
        return f"{drive_device(index)}{match.group(1)}"
    if alone:
        return job.partition  # an LVM or other name: fine when its disk is the only one
    raise StepError(
        f"{job.name}: cannot put its disk in a shared appliance with / on {job.partition!r}: "
        "expected a partition of the first disk such as /dev/sda1",
        stage=stages.PRE_BOOT,
    )


def inject_batch(
    jobs: Sequence[InjectJob],
    *,
    timeout: float = 600.0,
    log_path: Path | None = None,
    kvm_usable: bool = False,
    progress: Callable[[float, float | None, str], None] | None = None,
) -> int:
    """Write every job's files into its disk, all disks in one libguestfs appliance launch.

    The appliance start is most of the cost (seconds under TCG), and one appliance
    takes many drives: each disk is mounted in turn, written and unmounted. Files get
    mode 0644 and their folders are made as needed. More than ``MAX_DRIVES`` disks
    take more launches. Returns the number of launches.
    """
    if not jobs:
        return 0
    for job in jobs:
        if not job.disk.is_file():
            raise StepError(
                f"{job.name}: disk {job.disk} not found: stage the image before pre_boot",
                stage=stages.PRE_BOOT,
            )
    launches = 0
    done = 0
    with tempfile.TemporaryDirectory(prefix="pragmash-inject-") as tmp_name:
        tmp = Path(tmp_name)
        for first in range(0, len(jobs), MAX_DRIVES):
            chunk = jobs[first : first + MAX_DRIVES]
            _inject_launch(
                chunk,
                tmp,
                timeout=timeout + DRIVE_SECONDS * len(chunk),
                log_path=log_path,
                kvm_usable=kvm_usable,
                progress=progress,
                done_before=done,
                total=len(jobs),
            )
            launches += 1
            done += len(chunk)
    return launches


def _inject_launch(
    jobs: Sequence[InjectJob],
    tmp: Path,
    *,
    timeout: float,
    log_path: Path | None,
    kvm_usable: bool,
    progress: Callable[[float, float | None, str], None] | None,
    done_before: int,
    total: int,
) -> None:
    """One guestfish: every job's disk added as a drive, then mount, write, unmount each."""
    argv = ["guestfish", "--rw"]
    commands: list[list[str]] = [["run"]]
    reads: list[list[str]] = [["run"]]  # authorized_keys to read first, where keys are added
    key_slots: dict[int, tuple[InjectJob, Path]] = {}  # command index -> job whose keys go there
    placed: dict[str, InjectJob] = {}
    for i, job in enumerate(jobs):
        argv += [f"--format={image_format(job.disk)}", "-a", str(job.disk)]
        job_tmp = tmp / str(done_before + i)
        job_tmp.mkdir()
        pairs = _materialize(job.files, job_tmp)
        marker = f"{MARKER}{done_before + i}"
        placed[marker] = job
        partition = _partition_on(job, i, len(jobs) == 1)
        commands.append(["echo", marker])
        commands.append(["mount", partition, "/"])
        for local, guest in pairs:
            commands.append(["mkdir-p", str(guest.parent)])
            commands.append(["upload", str(local), str(guest)])
            commands.append(["chmod", "0644", str(guest)])
        for guest, target in _links(job.files):
            commands.append(["mkdir-p", str(guest.parent)])
            commands.append(["ln-sf", target, str(guest)])
        if job.authorized_keys:
            key_slots[len(commands)] = (job, job_tmp)  # before this job's umount-all
            reads.append(["mount", partition, "/"])
            reads.append(["-download", AUTHORIZED_KEYS, str(job_tmp / "ak.old")])  # may be absent
            reads.append(["umount-all"])
        commands.append(["umount-all"])
    current: list[InjectJob] = []

    def on_line(line: str) -> None:
        job = placed.get(line.strip())
        if job is None:
            return
        current.append(job)
        if progress is not None:
            progress(done_before + len(current) - 1, total, f"writing files into {job.name}")

    def written() -> list[list[str]]:
        """The commands, with each keyed job's merged authorized_keys in its place."""
        flat: list[list[str]] = []
        for n, command in enumerate(commands):
            if n in key_slots:
                flat += _key_commands(*key_slots[n])
            flat.append(command)
        return flat

    try:
        if key_slots:
            # read the images' authorized_keys, then write everything: still one launch
            read_then_write(
                argv,
                reads,
                lambda: written()[1:],  # the appliance already runs
                timeout=timeout,
                stage=stages.PRE_BOOT,
                env=guestfs_env(kvm_usable),
                log_path=log_path,
                on_line=on_line,
            )
        else:
            run_tool(
                [*argv, "--", *_joined(written())],
                timeout=timeout,
                log_path=log_path,
                env=guestfs_env(kvm_usable),
                on_line=on_line,
                stage=stages.PRE_BOOT,
            )
    except StepError as exc:
        failed = current[-1] if current else jobs[0]
        raise StepError(
            f"cannot write {', '.join(failed.written)} into {failed.name}'s disk {failed.disk} "
            f"({failed.partition}): {exc.message}",
            stage=stages.PRE_BOOT,
            output_tail=exc.output_tail,
            hint=exc.hint or "is the first partition the image's / file system?",
        ) from exc
    if progress is not None:
        progress(done_before + len(jobs), total, "files written")


def _key_commands(job: InjectJob, job_tmp: Path) -> list[list[str]]:
    """Write the job's merged authorized_keys (read from its disk as ``ak.old``, if there)."""
    old, new = job_tmp / "ak.old", job_tmp / "ak.new"
    existing = old.read_text(encoding="utf-8", errors="replace") if old.is_file() else ""
    new.write_text(merge_authorized_keys(existing, job.authorized_keys), encoding="utf-8")
    return [
        ["mkdir-p", "/root/.ssh"],
        ["chmod", "0700", "/root/.ssh"],
        ["upload", str(new), AUTHORIZED_KEYS],
        ["chmod", "0600", AUTHORIZED_KEYS],
    ]


def _joined(commands: Sequence[Sequence[str]]) -> list[str]:
    """Commands as guestfish's command line takes them: words, ``:`` between commands."""
    words: list[str] = []
    for n, command in enumerate(commands):
        if n:
            words.append(":")
        words.extend(command)
    return words


def merge_authorized_keys(existing: str, keys: Sequence[str]) -> str:
    """``existing`` authorized_keys text with each of ``keys`` added unless already there."""
    lines = existing.splitlines()
    for key in keys:
        if not any(same_key(line, key) for line in lines):
            lines.append(key)
    return "".join(line + "\n" for line in lines)


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
    """Write each file to its guest path in one disk (one appliance launch).

    A :class:`GuestLink` becomes a symbolic link (replacing what was there).
    ``authorized_keys`` are added to root's ``/root/.ssh/authorized_keys`` (0600, in a
    0700 folder), keeping the keys already there and never adding one twice.
    """
    if not files and not authorized_keys:
        return
    inject_batch(
        [InjectJob(disk.name, disk, files, partition, tuple(authorized_keys))],
        timeout=timeout,
        log_path=log_path,
        kvm_usable=kvm_usable,
    )


def make_config_drive(dest: Path, files: Mapping[str, GuestContent]) -> Path:
    """A FAT volume labelled PRAGMASH holding the files at their paths (made without root
    or a tool process: :mod:`pragmash.images.fatvolume`). Links are left out."""
    on_volume: dict[PurePosixPath, bytes | Path] = {}
    for guest_path, content in files.items():
        if isinstance(content, GuestLink):
            continue
        if isinstance(content, Path) and not content.is_file():
            raise StepError(
                f"file {content} to put at {guest_path} does not exist", stage=stages.PRE_BOOT
            )
        on_volume[_guest_path(guest_path)] = content
    return make_fat_volume(dest, CONFIG_DRIVE_LABEL, on_volume, stage=stages.PRE_BOOT)


def inject_for_nodes(
    jobs: Sequence[InjectJob],
    ctx: StageContext,
    *,
    what: str,
    timeout: float = 600.0,
    kvm_usable: bool = False,
) -> dict[str, StageResult]:
    """A distro driver's pre_boot for many nodes: their files in one launch, logged, reported.

    ``what`` names the files for each node's message (``"vc-out.xml"``).
    """
    if not jobs:
        return {}
    log = ctx.temp_dir / "inject.log"
    names = ", ".join(job.name for job in jobs)
    accel = accel_words(kvm_usable)
    ctx.note(f"writing {what} into {len(jobs)} disk(s) in one appliance under {accel}: {names}")
    launches = inject_batch(
        jobs, timeout=timeout, log_path=log, kvm_usable=kvm_usable, progress=ctx.progress
    )
    shared = f"one appliance for {len(jobs)} nodes, " if len(jobs) > 1 and launches == 1 else ""
    return {
        job.name: StageResult(
            outcomes.DONE,
            f"{what}{' and SSH key(s) for root' if job.authorized_keys else ''} written"
            f" ({len(job.written)} file{'s' if len(job.written) != 1 else ''};"
            f" {shared}under {'KVM' if kvm_usable else 'TCG'})",
            products={
                "injected": ", ".join(f"{job.disk}:{p}" for p in job.written),
                "log": str(log),
                "appliance_launches": str(launches),
                "appliance": accel,
            },
        )
        for job in jobs
    }
