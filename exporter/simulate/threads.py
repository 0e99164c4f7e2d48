"""The simulator's socket and thread plumbing: a bound but not yet listening socket, and a call
into the simulator's event loop from any thread (tests and the admin API set faults so)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["T", "bind_socket", "call_in_loop"]

T = TypeVar("T")


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound, not yet listening TCP socket: connecting to it is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def call_in_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], T]) -> T:
    """fn() in `loop`'s thread, waiting for its result (directly when already there, or when
    the loop is not running)."""
    if loop is None or not loop.is_running() or _in_loop_thread(loop):
        return fn()
    done = threading.Event()
    values: list[T] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            values.append(fn())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    loop.call_soon_threadsafe(call)
    if not done.wait(10.0):
        raise TimeoutError("simulator loop did not answer")
    if errors:
        raise errors[0]
    return values[0]


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
