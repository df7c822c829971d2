"""An in-process HTTP stand-in for the parts of Vault the provisioning code uses.

It follows Vault's documented behaviour for exactly the endpoints :class:`components.providers.vault.VaultApi`
calls, plus the few an operator (or a test acting as one) uses by hand:

* KV v2 (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2) on the configured mounts:
  ``GET|POST|PUT|DELETE /v1/<mount>/data/<path>`` with versions, ``options.cas`` (0 = create only, a
  mismatch answers 400 "check-and-set parameter did not match the current version"), soft delete of the latest
  version (reads then answer 404), ``max_versions``; ``GET|POST|PUT|DELETE|LIST /v1/<mount>/metadata/<path>``
  with ``custom_metadata`` (replaced as a whole when sent), and deletion of every version.
* ACL policies (https://developer.hashicorp.com/vault/api-docs/system/policies):
  ``GET|PUT|POST|DELETE /v1/sys/policies/acl/<name>``; names are stored lower-case; the text is parsed and
  a policy that does not parse is refused with 400.
* AppRole roles (https://developer.hashicorp.com/vault/api-docs/auth/approle):
  ``GET|POST|DELETE /v1/auth/approle/role/<name>``; names and ``token_policies`` are lower-cased.
* Tokens: ``X-Vault-Token``. The root token may do anything; tokens minted with :meth:`VaultDouble.mint_token`
  carry ACL policies stored in the double and are held to them: path globs (``*`` suffix, ``+`` segment),
  ``create`` vs ``update`` by existence, ``list``, ``deny``, and ``allowed_parameters``. A missing or unknown
  token, or a path outside the token's policies, answers 403 ``{"errors": ["permission denied"]}``.
* Sealed (``sealed = True``): every request answers 503 ``{"errors": ["Vault is sealed"]}``.

Absent objects answer 404 ``{"errors": []}``. Errors use Vault's ``{"errors": [...]}`` shape.
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.harness.http_double import HttpDouble, JsonHandler

CAS_MISMATCH = "check-and-set parameter did not match the current version"
PERMISSION_DENIED = "permission denied"
SEALED = "Vault is sealed"
DEFAULT_MAX_VERSIONS = 10


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ----------------------------------------------------------------------------------------------
# ACL policy language: the subset Vault policies use (path blocks, lists, nested maps, comments)
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:(?P<comment>(?:\#|//)[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    |(?P<punct>[{}\[\]=,]))""",
    re.VERBOSE,
)


class PolicyParseError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise PolicyParseError(f"unexpected input at offset {pos}: {text[pos : pos + 20]!r}")
        pos = match.end()
        if match.group("comment"):
            continue
        if match.group("string"):
            out.append(("str", json.loads(match.group("string"))))
        elif match.group("ident"):
            out.append(("ident", match.group("ident")))
        else:
            out.append(("punct", match.group("punct")))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None, value: Any = None) -> Any:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value is not None and token[1] != value):
            raise PolicyParseError(f"expected {value or kind}, found {token}")
        self.i += 1
        return token[1]

    def body(self, closing: bool) -> list[tuple[str, Any]]:
        entries: list[tuple[str, Any]] = []
        while True:
            token = self.peek()
            if token is None:
                if closing:
                    raise PolicyParseError("missing '}'")
                return entries
            if token == ("punct", "}"):
                if not closing:
                    raise PolicyParseError("unexpected '}'")
                self.i += 1
                return entries
            if token[0] not in ("ident", "str"):
                raise PolicyParseError(f"expected a key, found {token}")
            key = self.take()
            nxt = self.peek()
            if nxt is not None and nxt[0] == "str":  # block with a label: path "x" { ... }
                label = self.take("str")
                self.take("punct", "{")
                entries.append((key, (label, self.body(True))))
            else:
                self.take("punct", "=")
                entries.append((key, self.value()))

    def value(self) -> Any:
        token = self.peek()
        if token == ("punct", "["):
            self.i += 1
            items: list[Any] = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.i += 1
            self.i += 1
            return items
        if token == ("punct", "{"):
            self.i += 1
            return dict(self.body(True))
        if token is not None and token[0] in ("str", "ident"):
            self.i += 1
            return token[1]
        raise PolicyParseError(f"expected a value, found {token}")


@dataclass(frozen=True)
class Rule:
    """One ``path`` block of an ACL policy."""

    path: str
    capabilities: frozenset[str]
    allowed_parameters: dict[str, list[Any]] | None = None

    def matches(self, request_path: str) -> bool:
        pattern = self.path
        glob = pattern.endswith("*")
        if glob:
            pattern = pattern[:-1]
        pat_parts = pattern.split("/")
        req_parts = request_path.split("/")
        if glob:
            if len(req_parts) < len(pat_parts):
                return False
            for i, part in enumerate(pat_parts):
                last = i == len(pat_parts) - 1
                if part == "+":
                    if last and i >= len(req_parts):
                        return False
                    continue
                if last:
                    if not req_parts[i].startswith(part):
                        return False
                elif req_parts[i] != part:
                    return False
            return True
        if len(req_parts) != len(pat_parts):
            return False
        return all(p == "+" or p == r for p, r in zip(pat_parts, req_parts, strict=True))

    @property
    def priority(self) -> tuple[int, int, int, int]:
        """Higher sorts first: later first wildcard, no trailing glob, fewer '+', longer (Vault's order)."""
        positions = [i for i, ch in enumerate(self.path) if ch in "*+"]
        first = positions[0] if positions else len(self.path) + 1
        return (first, 0 if self.path.endswith("*") else 1, -self.path.count("+"), len(self.path))


def parse_policy(text: str) -> list[Rule]:
    """The path rules of an ACL policy; raises :class:`PolicyParseError` on text Vault would refuse."""
    rules: list[Rule] = []
    for key, value in _Parser(text).body(False):
        if key != "path" or not isinstance(value, tuple):
            raise PolicyParseError(f"unexpected top-level key {key!r}")
        label, entries = value
        attrs = dict(entries)
        caps = attrs.get("capabilities")
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise PolicyParseError(f"path {label!r}: capabilities must be a list of strings")
        allowed = attrs.get("allowed_parameters")
        rules.append(Rule(label, frozenset(caps), dict(allowed) if isinstance(allowed, dict) else None))
    return rules


def _value_allowed(value: Any, patterns: list[Any]) -> bool:
    if not patterns:
        return True
    values = value if isinstance(value, list) else [value]
    return all(any(fnmatch.fnmatchcase(str(v).lower(), str(p)) for p in patterns) for v in values)


def authorize(rules: list[Rule], path: str, capability: str, params: dict[str, Any] | None) -> bool:
    """Whether ``rules`` (from every policy of a token) allow ``capability`` on ``path`` with ``params``."""
    matching = [r for r in rules if r.matches(path)]
    if not matching:
        return False
    best = max(r.priority for r in matching)
    chosen = [r for r in matching if r.priority == best]
    caps: set[str] = set().union(*(r.capabilities for r in chosen))
    if "deny" in caps or capability not in caps:
        return False
    for rule in chosen:
        if rule.allowed_parameters is not None and params:
            allowed = rule.allowed_parameters
            for name, value in params.items():
                if name in allowed:
                    if not _value_allowed(value, allowed[name]):
                        return False
                elif "*" not in allowed:
                    return False
    return True


# ----------------------------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------------------------


@dataclass
class KvVersionState:
    data: dict[str, Any]
    created_time: str
    deletion_time: str = ""
    destroyed: bool = False


@dataclass
class KvSecretState:
    created_time: str = field(default_factory=_now)
    updated_time: str = field(default_factory=_now)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: str = "0s"
    custom_metadata: dict[str, str] = field(default_factory=dict)
    versions: dict[int, KvVersionState] = field(default_factory=dict)

    def metadata_of(self, version: int) -> dict[str, Any]:
        v = self.versions[version]
        return {
            "created_time": v.created_time,
            "custom_metadata": dict(self.custom_metadata) or None,
            "deletion_time": v.deletion_time,
            "destroyed": v.destroyed,
            "version": version,
        }


@dataclass(frozen=True)
class Recorded:
    """One request the double answered."""

    method: str
    path: str
    status: int
    root: bool


class VaultError(Exception):
    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


class _Handler(JsonHandler):
    double: VaultDouble

    def _serve(self) -> None:
        try:
            body = self.parse_json(self.read_body())
        except ValueError:
            self.send_body(400, {"errors": ["failed to parse JSON input"]})
            return
        status, payload = self.double.handle(self.command, self.path, self.headers.get("X-Vault-Token"), body)
        self.send_body(status, payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_PATCH = _serve


class VaultDouble(HttpDouble):
    """A Vault stand-in on ``127.0.0.1``; use as a context manager or call :meth:`start`/:meth:`stop`."""

    handler = _Handler

    def __init__(self, mounts: tuple[str, ...] = ("secret",)) -> None:
        super().__init__()
        self.root_token = "hvs." + secrets.token_urlsafe(24)
        self.sealed = False
        self.mounts = set(mounts)
        self.kv: dict[tuple[str, str], KvSecretState] = {}
        self.policies: dict[str, str] = {}
        self.approles: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, list[str]] = {}
        self.requests: list[Recorded] = []
        self._before_write: dict[tuple[str, str], Callable[[], object]] = {}
        self._lock = threading.RLock()

    @property
    def address(self) -> str:
        """``VAULT_ADDR`` of the running double."""
        return self.url

    # -- test controls ---------------------------------------------------------------------------

    def mint_token(self, *policies: str) -> str:
        """A token carrying the named policies (stored in the double, e.g. via the policies endpoint)."""
        token = "hvs." + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = [p.lower() for p in policies]
        return token

    def before_next_write(self, mount: str, path: str, action: Callable[[], object]) -> None:
        """Run ``action`` just before the next data write to ``mount/path`` is handled (a racing writer)."""
        with self._lock:
            self._before_write[(mount, path)] = action

    def write_by_hand(self, mount: str, path: str, data: dict[str, Any]) -> int:
        """Write a new version as an operator would, bypassing HTTP; returns the version."""
        with self._lock:
            return self._kv_put(mount, path, data, None)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- request handling ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, token: str | None, body: Any) -> tuple[int, dict[str, Any] | None]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        if not parts.path.startswith("/v1/"):
            return 404, {"errors": []}
        path = "/".join(unquote(p) for p in parts.path[len("/v1/") :].split("/"))
        if method == "GET" and query.get("list", [""])[0] == "true":
            method = "LIST"
        if method == "LIST" and not path.endswith("/"):
            path += "/"  # Vault routes (and authorises) list requests on the directory path
        with self._lock:
            root = token == self.root_token
            try:
                status, payload = self._dispatch(method, path, token, body, query)
            except VaultError as error:
                status, payload = error.status, {"errors": error.errors}
            self.requests.append(Recorded(method, path, status, root))
        return status, payload

    def _dispatch(
        self, method: str, path: str, token: str | None, body: Any, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any] | None]:
        if self.sealed:
            raise VaultError(503, SEALED)
        if not token or (token != self.root_token and token not in self.tokens):
            raise VaultError(403, PERMISSION_DENIED)
        if body is not None and not isinstance(body, dict):
            raise VaultError(400, "failed to parse JSON input: body must be a JSON object")
        body = body or {}
        route = self._route(path)
        if route is None:
            raise VaultError(404, f'no handler for route "{path}". route entry not found.')
        kind, arg1, arg2 = route
        if token != self.root_token:
            self._authorize(token, method, path, kind, arg1, arg2, body)
        if kind == "kv-data":
            return self._kv_data(method, arg1, arg2, body, query)
        if kind == "kv-metadata":
            return self._kv_metadata(method, arg1, arg2, body)
        if kind == "policy":
            return self._policy(method, arg1, body)
        return self._approle(method, arg1, body)

    def _route(self, path: str) -> tuple[str, str, str] | None:
        if path.startswith("sys/policies/acl/") and path.count("/") == 3:
            return "policy", path.rsplit("/", 1)[1].lower(), ""
        if path.startswith("auth/approle/role/") and path.count("/") == 3:
            return "approle", path.rsplit("/", 1)[1].lower(), ""
        for mount in sorted(self.mounts, key=len, reverse=True):
            for kind in ("data", "metadata"):
                prefix = f"{mount}/{kind}/"
                if path.startswith(prefix) or (kind == "metadata" and path == prefix[:-1]):
                    return f"kv-{kind}", mount, path[len(prefix) :].strip("/")
        return None

    def _exists(self, kind: str, a: str, b: str) -> bool:
        if kind in ("kv-data", "kv-metadata"):
            return (a, b) in self.kv
        if kind == "policy":
            return a in self.policies
        return a in self.approles

    def _authorize(self, token: str, method: str, path: str, kind: str, a: str, b: str, body: dict[str, Any]) -> None:
        capability = {
            "GET": "read",
            "LIST": "list",
            "DELETE": "delete",
            "PATCH": "patch",
        }.get(method) or ("update" if self._exists(kind, a, b) else "create")
        rules: list[Rule] = []
        for name in self.tokens.get(token, []):
            if name in self.policies:
                rules.extend(parse_policy(self.policies[name]))
        params = body if capability in ("create", "update") else None
        if not authorize(rules, path, capability, params):
            raise VaultError(403, PERMISSION_DENIED)

    # -- KV v2 -----------------------------------------------------------------------------------

    def _kv_put(self, mount: str, path: str, data: dict[str, Any], cas: int | None) -> int:
        secret = self.kv.get((mount, path))
        current = secret.current_version if secret else 0
        if secret is not None and secret.cas_required and cas is None:
            raise VaultError(400, "check-and-set parameter required for this call")
        if cas is not None and cas != current:
            raise VaultError(400, CAS_MISMATCH)
        if secret is None:
            secret = self.kv[(mount, path)] = KvSecretState()
        version = secret.current_version + 1
        secret.versions[version] = KvVersionState(data=dict(data), created_time=_now())
        secret.current_version = version
        secret.updated_time = _now()
        if secret.oldest_version == 0:
            secret.oldest_version = version
        keep = secret.max_versions or DEFAULT_MAX_VERSIONS
        for old in sorted(secret.versions):
            if len(secret.versions) <= keep:
                break
            del secret.versions[old]
        secret.oldest_version = min(secret.versions)
        return version

    def _kv_data(
        self, method: str, mount: str, path: str, body: dict[str, Any], query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any] | None]:
        secret = self.kv.get((mount, path))
        if method == "GET":
            if secret is None or secret.current_version == 0:
                raise VaultError(404)
            version = int(query.get("version", ["0"])[0] or 0) or secret.current_version
            if version not in secret.versions:
                raise VaultError(404)
            state = secret.versions[version]
            meta = secret.metadata_of(version)
            if state.deletion_time or state.destroyed:
                return 404, {"errors": [], "data": {"data": None, "metadata": meta}}
            return 200, {"data": {"data": dict(state.data), "metadata": meta}}
        if method in ("POST", "PUT"):
            if "data" not in body or not isinstance(body["data"], dict):
                raise VaultError(400, "no data provided")
            options = body.get("options") or {}
            cas = options.get("cas")
            hook = self._before_write.pop((mount, path), None)
            if hook is not None:
                hook()
            version = self._kv_put(mount, path, body["data"], None if cas is None else int(cas))
            secret = self.kv[(mount, path)]
            return 200, {"data": secret.metadata_of(version)}
        if method == "DELETE":
            if secret is not None and secret.current_version in secret.versions:
                secret.versions[secret.current_version].deletion_time = _now()
            return 204, None
        raise VaultError(405, "unsupported operation")

    def _kv_metadata(
        self, method: str, mount: str, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        secret = self.kv.get((mount, path))
        if method == "GET":
            if secret is None:
                raise VaultError(404)
            return 200, {
                "data": {
                    "cas_required": secret.cas_required,
                    "created_time": secret.created_time,
                    "current_version": secret.current_version,
                    "custom_metadata": dict(secret.custom_metadata) or None,
                    "delete_version_after": secret.delete_version_after,
                    "max_versions": secret.max_versions,
                    "oldest_version": secret.oldest_version,
                    "updated_time": secret.updated_time,
                    "versions": {
                        str(n): {
                            "created_time": v.created_time,
                            "deletion_time": v.deletion_time,
                            "destroyed": v.destroyed,
                        }
                        for n, v in sorted(secret.versions.items())
                    },
                }
            }
        if method == "LIST":
            prefix = f"{path}/" if path else ""
            names = set()
            for m, p in self.kv:
                if m == mount and p.startswith(prefix):
                    rest = p[len(prefix) :]
                    names.add(rest.split("/", 1)[0] + ("/" if "/" in rest else ""))
            if not names:
                raise VaultError(404)
            return 200, {"data": {"keys": sorted(names)}}
        if method in ("POST", "PUT"):
            custom = body.get("custom_metadata")
            if custom is not None:
                if not isinstance(custom, dict) or len(custom) > 64:
                    raise VaultError(400, "custom_metadata must be a map of at most 64 string values")
                for key, value in custom.items():
                    if not isinstance(value, str) or len(key) > 128 or len(value) > 512:
                        raise VaultError(400, f"custom_metadata key {key!r} has an invalid value")
            if secret is None:
                secret = self.kv[(mount, path)] = KvSecretState()
            if custom is not None:
                secret.custom_metadata = dict(custom)
            if "max_versions" in body:
                secret.max_versions = int(body["max_versions"])
            if "cas_required" in body:
                secret.cas_required = bool(body["cas_required"])
            if "delete_version_after" in body:
                secret.delete_version_after = str(body["delete_version_after"])
            secret.updated_time = _now()
            return 204, None
        if method == "DELETE":
            self.kv.pop((mount, path), None)
            return 204, None
        raise VaultError(405, "unsupported operation")

    # -- ACL policies ----------------------------------------------------------------------------

    def _policy(self, method: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if method == "GET":
            if name not in self.policies:
                raise VaultError(404)
            return 200, {"data": {"name": name, "policy": self.policies[name]}}
        if method in ("PUT", "POST"):
            if name == "root":
                raise VaultError(400, 'cannot update "root" policy')
            text = body.get("policy")
            if not isinstance(text, str) or not text.strip():
                raise VaultError(400, "'policy' parameter not supplied or empty")
            try:
                parse_policy(text)
            except PolicyParseError as error:
                raise VaultError(400, f"failed to parse policy: {error}") from None
            self.policies[name] = text
            return 204, None
        if method == "DELETE":
            if name in ("root", "default"):
                raise VaultError(400, f'cannot delete "{name}" policy')
            self.policies.pop(name, None)
            return 204, None
        raise VaultError(405, "unsupported operation")

    # -- AppRole ---------------------------------------------------------------------------------

    _ROLE_DEFAULTS: dict[str, Any] = {  # noqa: RUF012 - read-only template
        "bind_secret_id": True,
        "local_secret_ids": False,
        "secret_id_bound_cidrs": None,
        "secret_id_num_uses": 0,
        "secret_id_ttl": 0,
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": 0,
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 0,
        "token_policies": [],
        "token_ttl": 0,
        "token_type": "default",
    }

    def _approle(self, method: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if method == "GET":
            if name not in self.approles:
                raise VaultError(404)
            role = dict(self.approles[name])
            role["policies"] = list(role["token_policies"])
            return 200, {"data": role}
        if method in ("POST", "PUT"):
            role = dict(self.approles.get(name) or self._ROLE_DEFAULTS)
            for key, value in body.items():
                if key in ("policies", "token_policies"):
                    items = value.split(",") if isinstance(value, str) else list(value or [])
                    role["token_policies"] = sorted({str(p).strip().lower() for p in items if str(p).strip()})
                elif key in role:
                    role[key] = value
            self.approles[name] = role
            return 204, None
        if method == "DELETE":
            self.approles.pop(name, None)
            return 204, None
        raise VaultError(405, "unsupported operation")
