"""Well-formed SSH public keys the tests give `--key`."""

from __future__ import annotations

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFIcY+QncGsDyrmpZmyFYXgVP5emyl6OUpaYxXx7+M9B admin@site"


OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C7okWi0dh2l9GKJl other@elsewhere"
