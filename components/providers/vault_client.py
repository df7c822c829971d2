"""The Vault HTTP API as the providers call it: one method per documented endpoint over ``hvac``'s adapter,
with timeouts, safe retries, and errors that carry the server's own answer."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import hvac.adapters
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.access import READ_METHODS, ReadOnlyRefusal

REQUEST_TIMEOUT = 10.0
"""Seconds before any single request to Vault is abandoned."""


# --------------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------------


class VaultRequestError(Exception):
    """Vault answered with an error status, or could not be reached."""

    def __init__(self, method: str, path: str, status: int | None, answer: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.answer = answer
        super().__init__(f"{method} {path}: {status or 'no answer'} {answer}")

    @property
    def cas_mismatch(self) -> bool:
        return self.status == 400 and "check-and-set" in self.answer


def _segments(*parts: str) -> str:
    """URL path from segments, each quoted on its own (``/`` inside a part separates segments)."""
    out: list[str] = []
    for part in parts:
        out.extend(quote(seg, safe="") for seg in part.split("/") if seg)
    return "/".join(out)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_MULTI_ERROR = re.compile(r"^\s*\d+ errors? occurred:\s*(?P<items>.*)$", re.DOTALL)


def vault_messages(errors: Iterable[Any]) -> list[str]:
    """The messages in a Vault ``errors`` list. Vault wraps some answers in a Go multierror, such as
    ``"1 error occurred:\\n\\t* permission denied\\n\\n"`` for a 403; each bullet becomes one message."""
    messages: list[str] = []
    for error in errors:
        text = str(error)
        wrapped = _MULTI_ERROR.match(text)
        if wrapped is None:
            messages.append(text.strip())
            continue
        items = [item.strip() for item in re.split(r"(?:^|\n)\s*\* ", wrapped.group("items")) if item.strip()]
        messages.extend(items or [text.strip()])
    return [m for m in messages if m]


@dataclass(frozen=True)
class KvVersion:
    """The latest version of a KV v2 secret."""

    data: dict[str, str]
    version: int
    custom_metadata: dict[str, str]


class VaultApi:
    """The Vault endpoints this project calls, one method each, over ``hvac``'s HTTP adapter.

    Requests time out after :data:`REQUEST_TIMEOUT` seconds. Connection failures are retried with backoff;
    5xx answers (a sealed Vault answers 503) are retried twice, quickly, for idempotent methods only, then
    reported. A 404 on a read means "absent" and returns None.
    """

    def __init__(
        self, address: str, token: str, *, timeout: float = REQUEST_TIMEOUT, read_only: bool = False
    ) -> None:
        self.read_only = read_only
        """Send reads only; anything else raises :class:`~components.access.ReadOnlyRefusal` unsent."""
        retry = Retry(
            total=4,
            connect=3,
            read=0,
            status=2,
            other=0,
            backoff_factor=0.1,
            status_forcelist=(500, 502, 503, 504),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._adapter = hvac.adapters.RawAdapter(base_uri=address, token=token, timeout=timeout, session=session)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the decoded JSON body (None when empty), or :class:`VaultRequestError`."""
        if self.read_only and method.upper() not in READ_METHODS:
            raise ReadOnlyRefusal("Vault", f"{method.upper()} /v1/{path}")
        try:
            response = self._adapter.request(method, f"/v1/{path}", raise_exception=False, **kwargs)
        except requests.Timeout:
            raise VaultRequestError(method, path, None, f"(timed out after {REQUEST_TIMEOUT:.0f}s)") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            # The request was sent and may have been applied: the answer broke off.
            raise VaultRequestError(method, path, None, "(connection lost before a complete answer)") from None
        except requests.RequestException as error:
            raise VaultRequestError(method, path, None, f"(could not connect: {type(error).__name__})") from None
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if response.ok:
            return body
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list):
            answer = "; ".join(vault_messages(errors)) or "(no message)"
        else:
            answer = response.reason or "(no message)"
        raise VaultRequestError(method, path, response.status_code, _one_line(answer))

    def _read(self, path: str) -> Any:
        try:
            return self._request("GET", path)
        except VaultRequestError as error:
            if error.status == 404:
                return None
            raise

    # KV v2 — https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2

    def kv_read(self, mount: str, path: str) -> KvVersion | None:
        """``GET /v1/:mount/data/:path``: the latest version, or None when absent or deleted."""
        body = self._read(_segments(mount, "data", path))
        if body is None:
            return None
        data = body.get("data") or {}
        meta = data.get("metadata") or {}
        return KvVersion(
            data=dict(data.get("data") or {}),
            version=int(meta.get("version") or 0),
            custom_metadata=dict(meta.get("custom_metadata") or {}),
        )

    def kv_write(self, mount: str, path: str, data: Mapping[str, str], cas: int) -> int:
        """``POST /v1/:mount/data/:path`` with ``options.cas``; returns the new version."""
        body = self._request("POST", _segments(mount, "data", path), json={"data": dict(data), "options": {"cas": cas}})
        return int(((body or {}).get("data") or {}).get("version") or 0)

    def kv_read_metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        """``GET /v1/:mount/metadata/:path``: versions and custom metadata, or None when absent."""
        body = self._read(_segments(mount, "metadata", path))
        return None if body is None else dict(body.get("data") or {})

    def kv_write_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None:
        """``POST /v1/:mount/metadata/:path`` setting only ``custom_metadata`` (other settings untouched)."""
        self._request("POST", _segments(mount, "metadata", path), json={"custom_metadata": dict(custom_metadata)})

    def kv_delete_all(self, mount: str, path: str) -> None:
        """``DELETE /v1/:mount/metadata/:path``: the secret, every version and its metadata."""
        self._request("DELETE", _segments(mount, "metadata", path))

    # ACL policies — https://developer.hashicorp.com/vault/api-docs/system/policies

    def policy_read(self, name: str) -> str | None:
        """``GET /v1/sys/policies/acl/:name``: the policy text, or None when absent."""
        body = self._read(_segments("sys/policies/acl", name))
        return None if body is None else str((body.get("data") or {}).get("policy") or "")

    def policy_write(self, name: str, text: str) -> None:
        """``PUT /v1/sys/policies/acl/:name``."""
        self._request("PUT", _segments("sys/policies/acl", name), json={"policy": text})

    def policy_delete(self, name: str) -> None:
        """``DELETE /v1/sys/policies/acl/:name``."""
        self._request("DELETE", _segments("sys/policies/acl", name))

    # AppRole — https://developer.hashicorp.com/vault/api-docs/auth/approle

    def approle_read(self, name: str) -> dict[str, Any] | None:
        """``GET /v1/auth/approle/role/:name``: the role's settings, or None when absent."""
        body = self._read(_segments("auth/approle/role", name))
        return None if body is None else dict(body.get("data") or {})

    def approle_write(self, name: str, params: Mapping[str, Any]) -> None:
        """``POST /v1/auth/approle/role/:name``."""
        self._request("POST", _segments("auth/approle/role", name), json=dict(params))

    def approle_delete(self, name: str) -> None:
        """``DELETE /v1/auth/approle/role/:name``."""
        self._request("DELETE", _segments("auth/approle/role", name))
