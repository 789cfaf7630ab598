"""The server behind ``redraft serve``: uvicorn, with the bounds it lacks on its own.

uvicorn's HTTP/1.1 protocol has no deadline for a request's headers (its keep-alive timer is
cancelled by the first byte that arrives) and accepts every connection it is offered. A client
that opens connections and sends a header byte now and then (slowloris) then held 200 of them
for a minute, and at ``ulimit -n 128`` starved every other client while the accept loop spun on
``EMFILE``. Here each connection must finish a request's headers within ``header_timeout_s`` of
opening (or of its previous response), and connections beyond ``max_connections`` are closed as
they arrive, so the process never runs out of file descriptors.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from redraft._extras import require

HEADER_TIMEOUT_S = 10.0
"""How long a connection may take to send a whole request head."""


def max_connections() -> int:
    """Most connections served at once: half of this process's file-descriptor limit (the rest is
    the database, the indexes and the interpreter's own), at most 256.

    Example:
        >>> 8 <= max_connections() <= 256
        True
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(8, min(256, soft // 2))


def bounded_protocol(header_timeout_s: float, limit: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline on every request head and a cap on connections."""
    require("uvicorn", "view")
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limit:
                # Closed at once: its descriptor is free again before the next accept.
                self.transport.abort()
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.abort()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a whole request head arrived
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.our_state is not h11.MUST_CLOSE:
                self._arm()  # the next request on this connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return BoundedH11Protocol


def server(
    app: Any,
    host: str,
    port: int,
    *,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    limit: int | None = None,
) -> Any:
    """A ``uvicorn.Server`` for ``app`` with the bounds above (call ``.run()`` to serve).

    Example:
        >>> from redraft.view import create_app  # needs: redraft[view]  # doctest: +SKIP
        >>> srv = server(create_app("sqlite:///redraft.db"), "127.0.0.1", 8765)  # needs: a database  # doctest: +SKIP
        >>> srv.run()  # needs: to serve until stopped  # doctest: +SKIP
    """
    uvicorn = require("uvicorn", "view")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=bounded_protocol(header_timeout_s, limit or max_connections()),
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,  # a request head over 16 KB is refused (400)
    )
    return uvicorn.Server(config)


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` at ``host:port`` with the bounds above until stopped (``redraft serve``)."""
    server(app, host, port).run()


def url_host(host: str) -> str:
    """``host`` as it goes in a URL: an IPv6 address in brackets.

    Example:
        >>> url_host("::1"), url_host("127.0.0.1")
        ('[::1]', '127.0.0.1')
    """
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
