"""A fault-injecting HTTP proxy in front of a real Vault-API server (the session's OpenBao, or ``VAULT_ADDR``).

Every answer comes from the real server: the proxy forwards each request unchanged (method, path, query,
``X-Vault-Token``, body) and relays the status and body it gets back. It exists only for the faults a real
server cannot be made to show on demand, and injects exactly these:

* a writer racing the provider between its read and its write (:meth:`VaultFaultProxy.before_next_write`):
  an action (an operator's write, sent to the real server) runs just before the next write to a path is
  forwarded, so the server itself answers the provider's check-and-set;
* a connection dropped in the middle of an answer (:meth:`VaultFaultProxy.cut_next_answer`): the request
  reaches the server and is applied, then the client gets the status line, the headers and half the body,
  and the connection closes.

It also records the requests it relays (method, path, status), so a test can count what a provider sent.
Everything else a server can show (sealed via ``sys/seal``, permission denied, check-and-set conflicts,
deleted versions, 404s, a wrong token) is tested on the server directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from tests.harness.http_double import HttpDouble, JsonHandler


@dataclass(frozen=True)
class Relayed:
    """One request the proxy relayed: method, path under ``/v1/`` and the server's status (0: cut)."""

    method: str
    path: str
    status: int


class _Handler(JsonHandler):
    double: VaultFaultProxy

    def _serve(self) -> None:
        self.double.relay(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_PATCH = _serve


class VaultFaultProxy(HttpDouble):
    """The proxy on a free port of ``127.0.0.1``; use as a context manager or call :meth:`start`/:meth:`stop`."""

    handler = _Handler

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.requests: list[Relayed] = []
        self._before_write: dict[str, Callable[[], object]] = {}
        self._cut: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._session = requests.Session()

    @property
    def address(self) -> str:
        """``VAULT_ADDR`` of the proxy."""
        return self.url

    # -- faults ----------------------------------------------------------------------------------

    def before_next_write(self, path: str, action: Callable[[], object]) -> None:
        """Run ``action`` just before the next POST/PUT to ``/v1/<path>`` is forwarded (a racing writer)."""
        with self._lock:
            self._before_write[path] = action

    def cut_next_answer(self, method: str, path: str) -> None:
        """Forward the next ``method`` to ``/v1/<path>``, then drop the connection halfway through the answer."""
        with self._lock:
            self._cut.add((method, path))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- relaying ---------------------------------------------------------------------------------

    def relay(self, handler: JsonHandler) -> None:
        body = handler.read_body()
        parts = urlsplit(handler.path)
        path = parts.path.removeprefix("/v1/")
        method = handler.command
        with self._lock:
            hook = self._before_write.pop(path, None) if method in ("POST", "PUT") else None
            cut = (method, path) in self._cut
            self._cut.discard((method, path))
        if hook is not None:
            hook()
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("x-vault-token", "content-type")}
        answer = self._session.request(
            method, f"{self.upstream}{handler.path}", headers=headers, data=body or None, timeout=30
        )
        with self._lock:
            self.requests.append(Relayed(method, path, 0 if cut else answer.status_code))
        payload = answer.content
        handler.send_response(answer.status_code)
        handler.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if cut:
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if payload:
            handler.wfile.write(payload)
