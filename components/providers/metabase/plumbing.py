"""What every Metabase provider shares: credentials from ``configure`` (never on the serialised object), one
client per provider object and process, input normalisation and error reporting that names the tenant."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from pulumi.dynamic import CheckFailure, ConfigureRequest, DiffResult, ResourceProvider

from components.access import ReadOnlyRefusal, read_only
from components.config import MetabaseConfig, secret_from_raw, section_from_raw

from .client import ApiFailure, MetabaseClient, MetabaseError

_CLIENTS: weakref.WeakKeyDictionary[ResourceProvider, MetabaseClient] = weakref.WeakKeyDictionary()
_SHARED: dict[tuple[str, str, bool], MetabaseClient] = {}
_CLIENTS_LOCK = threading.Lock()


def _is_unknown(value: Any) -> bool:
    from pulumi.output import Unknown
    from pulumi.runtime.rpc import UNKNOWN

    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def _plain(value: Any) -> Any:
    """A property value with Pulumi's secret wrapper removed (values may arrive wrapped over gRPC)."""
    from pulumi.runtime.rpc import unwrap_rpc_secret

    value = unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _norm(value: Any) -> Any:
    """Numbers arrive as floats over gRPC: compare 5.0 and 5 as equal, and None/'' as equal."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == "":
        return None
    return value


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _norm(v) for k, v in props.items() if k != "__provider"}


def _int(value: Any) -> int:
    return int(_norm(value))


def _collection_ref(value: Any) -> int | str:
    value = _norm(value)
    return "root" if value in (None, "root") else int(value)


def _group_ids(values: Any) -> set[int]:
    return {_int(v) for v in values or [] if _norm(v) is not None}


def _is_not_found(exc: ApiFailure) -> bool:
    return exc.status == 404


_T = TypeVar("_T")


def _unless_absent(call: Callable[[], _T]) -> _T | None:
    """The answer of ``call``, or None when Metabase answers 404 (the object is gone)."""
    try:
        return call()
    except ApiFailure as exc:
        if _is_not_found(exc):
            return None
        raise


@contextmanager
def _absent_is_done() -> Iterator[None]:
    """Treat a 404 inside the block as success: removing what is already gone changes nothing."""
    try:
        yield
    except ApiFailure as exc:
        if not _is_not_found(exc):
            raise


def owner_label(tenant: str | None) -> str:
    """Who an object belongs to, for tags and messages: ``tenant 76953480-6`` or ``platform``."""
    return f"tenant {tenant}" if tenant else "platform"


@contextmanager
def _reporting(tenant: str | None) -> Iterator[None]:
    """Turn an API failure into a one-line error naming the tenant (the host prints the last line)."""
    try:
        yield
    except (ApiFailure, ReadOnlyRefusal) as exc:
        raise MetabaseError(f"{owner_label(tenant)}: {exc}") from None


def _fail(failures: list[CheckFailure], field: str, reason: str) -> None:
    failures.append(CheckFailure(field, reason))


def _check_known(news: Mapping[str, Any], field: str) -> bool:
    return field in news and not _is_unknown(news[field])


class _MetabaseProvider(ResourceProvider):
    """Shared plumbing: credentials from ``configure``, kept off the serialised object."""

    serialize_as_secret_always = False
    fields: ClassVar[tuple[str, ...]] = ()
    replace_fields: ClassVar[tuple[str, ...]] = ()
    filled_later: ClassVar[tuple[str, ...]] = ()
    """Replace fields that may be empty at first (the connection's id while it is deferred): filling them in is
    an update."""
    name_field: ClassVar[str | None] = None

    def configure(self, req: ConfigureRequest) -> None:
        """Read the Metabase URL and API key from stack config (env fallback), per process."""
        settings = section_from_raw(req.config, "metabase", MetabaseConfig)
        url = settings.url
        if "url" not in settings.model_fields_set:
            url = os.environ.get("METABASE_URL", settings.url)
        api_key = secret_from_raw(req.config, "metabaseApiKey", os.environ) or ""
        with _CLIENTS_LOCK:
            _CLIENTS[self] = _shared_client(url, api_key, read_only(os.environ))

    def _client(self) -> MetabaseClient:
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(self)
            if client is None:
                default_url = MetabaseConfig.model_validate({}).url
                client = _shared_client(
                    os.environ.get("METABASE_URL", default_url),
                    os.environ.get("METABASE_API_KEY", ""),
                    read_only(os.environ),
                )
                _CLIENTS[self] = client
            return client

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def _group(self, value: Any) -> int:
        """A group id from an input: a number, or a built-in group's ``magic_group_type`` (``all-internal-users``,
        ``admin``), which Metabase's built-in groups are identified by (their ids are only usually 1 and 2)."""
        value = _norm(value)
        if isinstance(value, str) and not value.isdigit():
            with _reporting(None):
                builtins = self._client().builtin_group_ids()
            if value not in builtins:
                raise MetabaseError(f"Metabase has no built-in group {value!r} (known: {', '.join(sorted(builtins))})")
            return builtins[value]
        return int(value)

    def _group_ref(self, inputs: Mapping[str, Any], gid: int) -> Any:
        """How the edge names its group (``group_ref`` output): as the program gave it (a built-in group's
        ``magic_group_type`` or an id), so a later diff resolves a built-in name without a call."""
        if "group_ref" in inputs:
            return inputs["group_ref"]
        with _reporting(None):
            builtins = self._client().builtin_group_ids()
        return next((name for name, found in sorted(builtins.items()) if found == gid), gid)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        from .decisions import plan_diff

        news = _inputs(news)
        group = news.get("group_id")
        if isinstance(group, str) and not group.isdigit() and not _is_unknown(group):
            recorded = _inputs(olds)
            if recorded.get("group_ref") == group and recorded.get("group_id") is not None:
                # Resolved when the edge was written: a preview compares without asking Metabase (and so
                # needs no Metabase key at all).
                news["group_id"] = recorded["group_id"]
            else:
                news["group_id"] = self._group(group)  # outputs hold the id the built-in group resolved to
        return plan_diff(_inputs(olds), news, self.fields, self.replace_fields, self.name_field, self.filled_later)


def _shared_client(url: str, api_key: str, reads_only: bool) -> MetabaseClient:
    """One client per Metabase and key in this process (called with ``_CLIENTS_LOCK`` held), so providers
    share its connection pool and its short-lived graph cache."""
    key = (url, api_key, reads_only)
    client = _SHARED.get(key)
    if client is None:
        client = _SHARED[key] = MetabaseClient(url, api_key, read_only=reads_only)
    return client
