"""The WebSocket API (`/web`): the package protocol over the Users repository, per-principal limits,
broadcast of user changes across processes, and its AsyncAPI document (`/asyncapi.json`).

- `protocol`: the messages, one msgspec tagged struct per package, and how a frame is decoded.
- `packages`: what each package does, through the same `UserRepository` as the HTTP routes.
- `connection`: one connection's life: authentication, limits, the receive loop, sending.
- `runtime`: what a process's connections share (`Realtime`, on `Services`) and the sweep.
- `broadcast`: publishing user changes and fanning them out (Litestar channels).
- `limits`: per-principal connection slots and the message window.
- `metrics`: the counters `/metrics` reports.
- `asyncapi`, `endpoint`: the document, and the routes.
"""

from cqlstar.realtime.runtime import Realtime, RealtimePlugin

__all__ = ["Realtime", "RealtimePlugin"]
