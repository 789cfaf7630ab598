"""Which hosts are this machine: the one rule behind "keys stay on loopback" (the OpenAI client)
and "serve binds to loopback unless told otherwise" (``redraft serve``)."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
"""The names a browser on this machine uses for it (the Host headers ``redraft serve`` accepts)."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, without a port) is this machine.

    Example:
        >>> is_loopback_host("127.0.0.2"), is_loopback_host("localhost"), is_loopback_host("0.0.0.0")
        (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
