"""The admin API: switch faults at run time. Loopback only, never on the public port.

It listens on its own port bound to 127.0.0.1, and also refuses (403) any peer that is
not a loopback address, in case it is ever bound elsewhere. Endpoints:

  GET  /admin/state                  phase, listening, model, active faults, stats
  GET  /admin/faults                 the fault kinds and what they do
  POST /admin/fault                  body: a FaultSpec object, or a list of them
  POST /admin/clear                  body: {"kind": "..."}; clears one kind
  POST /admin/reset                  clears every fault (listening again if down)

With several targets in one process, `?port=N` picks one; without it a change applies to
all of them and /admin/state lists them all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from exporter.simulate.faults import FAULT_KINDS, FaultSpec
from exporter.simulate.http import HttpError, Request, ResponseWriter, read_request
from exporter.simulate.wire import dumps

__all__ = ["ADMIN_HOST", "AdminServer", "FaultTarget", "is_loopback"]

ADMIN_HOST = "127.0.0.1"
JSON = "application/json"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class FaultTarget(Protocol):
    """What the admin API drives: a Simulator (server.py) is one."""

    @property
    def port(self) -> int: ...

    def set_fault(self, spec: FaultSpec) -> None: ...

    def clear_fault(self, kind: str) -> None: ...

    def clear_faults(self) -> None: ...

    def fault_state(self) -> dict[str, Any]: ...


class AdminServer:
    """Loopback-only JSON API that sets and clears the faults of one or many simulators."""

    def __init__(
        self, target: FaultTarget | Callable[[], Mapping[int, FaultTarget]], port: int = 0
    ) -> None:
        if callable(target):
            self._targets = target
        else:
            sim = target
            self._targets = lambda: {sim.port: sim}
        self._requested_port = port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{ADMIN_HOST}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, ADMIN_HOST, self._requested_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        self._writers.add(writer)
        try:
            while True:
                try:
                    req = await read_request(reader, writer, host)
                except HttpError as exc:
                    await ResponseWriter(writer, False).send(
                        exc.status, dumps({"error": exc.message}), JSON
                    )
                    break
                if req is None:
                    break
                w = ResponseWriter(writer, req.keep_alive)
                status, body = self.handle(req)
                await w.send(status, dumps(body), JSON)
                if not req.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _select(self, req: Request) -> list[FaultTarget]:
        targets = self._targets()
        ports = req.query.get("port")
        if not ports:
            return list(targets.values())
        try:
            port = int(ports[0])
        except ValueError as exc:
            raise LookupError(f"port must be a number, got {ports[0]!r}") from exc
        if port not in targets:
            raise LookupError(f"no simulated target on port {port}")
        return [targets[port]]

    def handle(self, req: Request) -> tuple[int, Any]:
        """(status, JSON body) for one admin request; pure apart from the targets."""
        if not is_loopback(req.peer):
            return 403, {"error": "the admin API only answers loopback clients"}
        route = (req.method, req.path.rstrip("/") or "/")
        try:
            sims = self._select(req)
        except LookupError as exc:
            return 404, {"error": str(exc)}
        try:
            if route == ("GET", "/admin/state"):
                pass
            elif route == ("GET", "/admin/faults"):
                return 200, {"kinds": FAULT_KINDS}
            elif route == ("POST", "/admin/fault"):
                specs = _parse_specs(req.body)
                for sim in sims:
                    for spec in specs:
                        sim.set_fault(spec)
            elif route == ("POST", "/admin/clear"):
                kind = _parse_json(req.body).get("kind")
                if kind not in FAULT_KINDS:
                    return 400, {"error": f"unknown fault kind {kind!r}"}
                for sim in sims:
                    sim.clear_fault(kind)
            elif route == ("POST", "/admin/reset"):
                for sim in sims:
                    sim.clear_faults()
            else:
                return 404, {"error": f"no admin route {req.method} {req.path}"}
        except ValueError as exc:
            return 400, {"error": str(exc)}
        states = [sim.fault_state() for sim in sims]
        if len(self._targets()) == 1 and len(states) == 1:
            return 200, states[0]
        return 200, {"targets": states}


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict | list):
        raise ValueError("body must be a JSON object or list")
    return data  # type: ignore[return-value]


def _parse_specs(body: bytes) -> list[FaultSpec]:
    data: Any = _parse_json(body)
    items = data if isinstance(data, list) else [data]
    return [FaultSpec.from_dict(item) for item in items]
