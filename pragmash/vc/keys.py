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
import re
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
            raise UserError(
                f"{where}: {line[:60]!r} is not an SSH public key: expected"
                " 'ssh-ed25519 AAAA… comment' (or ssh-rsa, ecdsa-sha2-…), as in a .pub file"
            )
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"{where}: the key data of {fields[0]} is not base64") from None
        # the blob starts with the key type again: a truncated or mixed-up line shows here
        if not blob[4:].startswith(fields[0].encode()):
            raise UserError(f"{where}: the key data does not match its type {fields[0]!r}")
        comment = fields[2] if len(fields) > 2 else ""
        if not _COMMENT.fullmatch(comment):
            raise UserError(f"{where}: the key's comment holds control or non-ASCII characters")
        keys.append(" ".join(f for f in (fields[0], fields[1], comment) if f))
    if not keys:
        raise UserError(f"{source}: holds no SSH public key: expected one per line")
    return tuple(keys)


def read_public_keys(path: Path) -> tuple[str, ...]:
    """The public key(s) in ``path``, checked (see :func:`parse_public_keys`)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise UserError(f"--key {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"--key {path}: cannot be read: {exc.strerror}") from None
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
