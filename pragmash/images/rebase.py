"""A node's overlay made ready for another host: the same bytes, a new backing path.

On the head node a node's qcow2 overlay names the local base as its backing file.
On a host that does not share the head node's disks the base is a volume at another
path; the overlay is copied (it is small: only what ``pre_boot`` wrote) and its
header rewritten to name that path (``qemu-img rebase -u``: no data is read or
moved, the base's content being the same by digest).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pragmash import stages
from pragmash.errors import StepError
from pragmash.images.tools import run_tool

QEMU_IMG_TIMEOUT = 120.0


def rebased_copy(overlay: Path, backing: str, backing_format: str, work_dir: Path) -> Path:
    """A copy of ``overlay`` in ``work_dir`` whose backing file is ``backing``.

    The caller removes the copy when it has sent it. The original is left as it is, so
    the head node's own view of the disk (for ``fix``, for debugging) keeps working.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{overlay.stem}-", suffix=".qcow2", dir=work_dir)
    os.close(fd)
    copy = Path(name)
    try:
        shutil.copyfile(overlay, copy)
        run_tool(
            [
                *("qemu-img", "rebase", "-u", "-f", "qcow2"),
                "-b",
                backing,
                "-F",
                backing_format,
                str(copy),
            ],
            timeout=QEMU_IMG_TIMEOUT,
            stage=stages.STAGE,
        )
    except OSError as exc:
        copy.unlink(missing_ok=True)
        raise StepError(f"cannot copy {overlay} for upload: {exc}", stage=stages.STAGE) from exc
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    return copy
