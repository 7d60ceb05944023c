"""Reaching inside running guests: the QEMU guest agent, ssh, and the exec statement over either."""
