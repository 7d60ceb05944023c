"""Names of VCs, nodes and domains, and how a VC's nodes are named.

One rule for every name, because a name ends up as a libvirt domain name, a file
name in the state and temp folders and a key in the ledger: it must be safe in all
three. Node names derive from the VC's name so that two VCs never collide on a host.
"""

from __future__ import annotations

import re

from pragmash.errors import UserError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_EXPECTED = "1 to 63 letters, digits, '-' or '_', starting with a letter or digit"


def validate_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid ``kind`` name (VC, node, domain); raise UserError."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise UserError(f"bad {kind} name {value!r}: expected {_EXPECTED}")
    return value


def frontend_name(vcname: str) -> str:
    """The frontend node (and domain) name of VC ``vcname``."""
    return f"{vcname}-frontend"


def compute_name(vcname: str, index: int) -> str:
    """The name of compute node ``index`` (0-based) of VC ``vcname``."""
    return f"{vcname}-compute-{index}"


def is_node_of(vcname: str, name: str) -> bool:
    """Whether ``name`` is one of VC ``vcname``'s node names, exactly.

    A prefix (``VCNAME-``) is not enough: VC ``a-b``'s nodes start with ``a-``. No other
    VC can make ``a-frontend`` or ``a-compute-N``, whatever its name.
    """
    rest = name.removeprefix(f"{vcname}-")
    return rest != name and (
        rest == "frontend" or re.fullmatch(r"compute-(0|[1-9][0-9]*)", rest) is not None
    )
