"""pragmash: boot PRAGMA virtual clusters by running recipes."""

from __future__ import annotations

__version__ = "0.1.0"
