"""``--key FILE``: the SSH public key(s) a VC's root account will accept, as pragma_boot's ``key=``.

The key goes into vc-out.xml as ``<key>`` (pragma_boot's ``set_key``: the file's text,
trailing newlines dropped) and, through the distro driver's pre_boot, into
``/root/.ssh/authorized_keys`` in each image. It is checked here, before anything
runs: one OpenSSH public key a line (``ssh-ed25519 AAAA… comment``), never a
private key — a private key pasted by mistake must not be copied into every node.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path

from pragmash.errors import UserError

MAX_KEY_FILE = 64 * 1024
# The key types OpenSSH writes into .pub files (plain and FIDO "sk-" ones).
_KEY_TYPE = re.compile(
    r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)"
    r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
)
# The comment is free text for OpenSSH; here printable, so it cannot break the XML or a shell.
_COMMENT = re.compile(r"[\x20-\x7e]*")
# How many length-prefixed strings each key type's blob holds (its type name first), and
# the length of the last one where it is fixed (an ed25519 key is 32 bytes), from the
# OpenSSH wire format (RFC 4253 6.6, RFC 8709, PROTOCOL.u2f): a truncated key shows here.
_BLOB_SHAPE: dict[str, tuple[int, int | None]] = {
    "ssh-rsa": (3, None),  # type, e, n
    "ssh-dss": (5, None),  # type, p, q, g, y
    "ssh-ed25519": (2, 32),  # type, key
    "ecdsa-sha2-nistp256": (3, 65),  # type, curve, uncompressed point
    "ecdsa-sha2-nistp384": (3, 97),
    "ecdsa-sha2-nistp521": (3, 133),
    "sk-ssh-ed25519@openssh.com": (3, None),  # type, key, application
    "sk-ecdsa-sha2-nistp256@openssh.com": (4, None),  # type, curve, point, application
}


def _blob_strings(blob: bytes) -> list[bytes] | None:
    """The blob as its length-prefixed strings; None when a length runs past the end."""
    strings: list[bytes] = []
    at = 0
    while at < len(blob):
        if at + 4 > len(blob):
            return None
        size = int.from_bytes(blob[at : at + 4], "big")
        if at + 4 + size > len(blob):
            return None
        strings.append(blob[at + 4 : at + 4 + size])
        at += 4 + size
    return strings


def _blob_is_whole(kind: str, blob: bytes) -> bool:
    """Whether ``blob`` is a whole key of type ``kind``: its own type name, then as many
    parts as the type has, the last of its fixed size."""
    strings = _blob_strings(blob)
    count, last = _BLOB_SHAPE.get(kind, (0, None))
    if strings is None or not strings or strings[0] != kind.encode():
        return False
    if count and len(strings) != count:
        return False
    return last is None or len(strings[-1]) == last


def parse_public_keys(text: str, source: str) -> tuple[str, ...]:
    """The keys of an authorized_keys-style text, one per line; errors name ``source:LINE``."""
    if "PRIVATE KEY" in text:
        raise UserError(
            f"{source}: is a private key: expected the public key (the .pub file, e.g."
            " ~/.ssh/id_ed25519.pub); nothing was copied anywhere"
        )
    keys: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        where = f"{source}:{number}"
        if len(fields) < 2 or not _KEY_TYPE.fullmatch(fields[0]):
            # the line is not shown: a file given by mistake may hold secrets (/etc/shadow)
            raise UserError(
                f"{where}: is not an SSH public key: expected 'ssh-ed25519 AAAA… comment'"
                " (or ssh-rsa, ecdsa-sha2-…), as in a .pub file"
            )
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"{where}: the key data of {fields[0]} is not base64") from None
        # the blob starts with the key type again: a mixed-up line shows here
        if not blob[4:].startswith(fields[0].encode()):
            raise UserError(f"{where}: the key data does not match its type {fields[0]!r}")
        if not _blob_is_whole(fields[0], blob):
            raise UserError(
                f"{where}: the {fields[0]} key is cut short or damaged ({len(blob)} bytes of"
                " key data that do not make a whole key): copy the .pub file's line again"
            )
        comment = fields[2] if len(fields) > 2 else ""
        if not _COMMENT.fullmatch(comment):
            raise UserError(f"{where}: the key's comment holds control or non-ASCII characters")
        keys.append(" ".join(f for f in (fields[0], fields[1], comment) if f))
    if not keys:
        raise UserError(f"{source}: holds no SSH public key: expected one per line")
    return tuple(keys)


def read_public_keys(given: str | Path) -> tuple[str, ...]:
    """The public key(s) in the file ``given`` (``~`` expanded), checked (see
    :func:`parse_public_keys`). Only a regular file is read: a FIFO or a device would
    block or never end (it is opened without waiting, then looked at)."""
    try:
        path = Path(given).expanduser()
    except RuntimeError:
        raise UserError(f"--key {given}: names no user's home on this machine") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UserError(f"--key {path}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise UserError(f"--key {path}: cannot be read: {getattr(exc, 'strerror', exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"--key {path}: is not a regular file: expected a .pub file")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise UserError(f"--key {path}: cannot be read: {exc.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_KEY_FILE:
        raise UserError(f"--key {path}: larger than {MAX_KEY_FILE} bytes: not a public key file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise UserError(f"--key {path}: is not text: expected an SSH public key") from None
    return parse_public_keys(text, f"--key {path}")


def same_key(line: str, key: str) -> bool:
    """Whether an authorized_keys line holds ``key`` (options and comments aside)."""
    wanted = key.split()[:2]
    words = line.split()
    return any(words[i : i + 2] == wanted for i in range(len(words) - 1))
