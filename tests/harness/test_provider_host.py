"""The provider host harness drives the real ``python -m pulumi.dynamic`` the way the engine does."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import dill
import pytest

from tests.harness.provider_host import (
    UNKNOWN,
    ProviderCallError,
    ProviderHost,
    ProviderHostFactory,
    secret_leaks,
    start_provider_host,
    urn,
)
from tests.harness.trivial_provider import MARKER, Note, NoteProvider

MAX_TEXT = 100


@dataclass
class NotesService:
    """A small notes service on 127.0.0.1 that demands a bearer token."""

    token: str
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_authorization: list[str] = field(default_factory=list)
    url: str = ""


def _handler(service: NotesService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _name(self) -> str | None:
            seen = self.headers.get("Authorization", "")
            service.seen_authorization.append(seen)
            if seen != f"Bearer {service.token}":
                self._reply(401, "unauthorized")
                return None
            return unquote(self.path.removeprefix("/notes/"))

        def do_GET(self) -> None:
            name = self._name()
            if name is None:
                return
            if name in service.notes:
                self._reply(200, service.notes[name])
            else:
                self._reply(404, "no such note")

        def do_PUT(self) -> None:
            name = self._name()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if name is None:
                return
            if len(body["text"]) > MAX_TEXT:
                self._reply(422, f"text longer than {MAX_TEXT} characters")
                return
            revision = service.notes.get(name, {}).get("revision", 0) + 1
            service.notes[name] = {**body, "revision": revision}
            self._reply(200, service.notes[name])

        def do_DELETE(self) -> None:
            name = self._name()
            if name is None:
                return
            if service.notes.pop(name, None) is None:
                self._reply(404, "no such note")
            else:
                self._reply(200, {})

    return Handler


@pytest.fixture(scope="module")
def notes_service() -> Iterator[NotesService]:
    service = NotesService(token=secrets.token_urlsafe(32))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


def _config(service: NotesService, token: str) -> dict[str, Any]:
    return {"smarteros:demo": {"url": service.url}, "smarteros:demoToken": token}


@pytest.fixture(scope="module")
def host(provider_host_factory: ProviderHostFactory, notes_service: NotesService) -> ProviderHost:
    return provider_host_factory(_config(notes_service, notes_service.token))


@pytest.fixture
def service(notes_service: NotesService) -> Iterator[NotesService]:
    yield notes_service
    notes_service.notes.clear()
    notes_service.seen_authorization.clear()


PROVIDER = NoteProvider()


def test_configure_time_credential_is_used_and_never_returned(
    host: ProviderHost, service: NotesService
) -> None:
    note_id, outputs = host.create(PROVIDER, urn(Note, "greeting"), {"name": "greeting", "text": "hola"})

    assert note_id == "greeting"
    assert outputs == {"name": "greeting", "text": "hola", "revision": 1}
    assert service.notes["greeting"]["text"] == "hola"
    assert service.seen_authorization and set(service.seen_authorization) == {f"Bearer {service.token}"}
    assert service.token not in json.dumps(outputs)
    assert service.token not in host.logs()


def test_serialized_provider_carries_no_credential(host: ProviderHost, service: NotesService) -> None:
    host.create(PROVIDER, urn(Note, "memo"), {"name": "memo", "text": "x"})
    serialized = host.serialized(PROVIDER)

    assert secret_leaks(service.token, serialized) == []
    revived = dill.loads(base64.b64decode(serialized))
    assert isinstance(revived, NoteProvider)
    assert not hasattr(revived, "token")


def test_leak_check_finds_a_credential_kept_on_the_provider(service: NotesService) -> None:
    careless = NoteProvider()
    careless.token = service.token

    assert secret_leaks(service.token, ProviderHost.serialized(careless)) == ["pickle"]


def test_serialized_matches_what_a_dynamic_resource_stores() -> None:
    from pulumi.dynamic.dynamic import serialize_provider

    assert ProviderHost.serialized(PROVIDER) == serialize_provider(PROVIDER)
    assert dill.loads(base64.b64decode(ProviderHost.serialized(PROVIDER))).__class__ is NoteProvider


def test_check_failures_come_back_as_field_failures(host: ProviderHost) -> None:
    outcome = host.check(PROVIDER, urn(Note, "bad"), {}, {"name": "Bad Name"})

    assert outcome.failures == [
        ("name", "'Bad Name' is not a note name (lower-case letters, digits, -)"),
        ("text", "text is required"),
    ]
    assert outcome.inputs == {"name": "Bad Name"}


def test_check_passes_unknown_values_through_a_preview(host: ProviderHost) -> None:
    outcome = host.check(PROVIDER, urn(Note, "later"), {}, {"name": "later", "text": UNKNOWN})

    assert outcome.failures == []
    assert outcome.inputs == {"name": "later", "text": UNKNOWN}


def test_lifecycle_round_trip_with_drift(host: ProviderHost, service: NotesService) -> None:
    resource = urn(Note, "plan")
    inputs = {"name": "plan", "text": "v1"}
    note_id, outputs = host.create(PROVIDER, resource, inputs)

    unchanged = host.diff(PROVIDER, note_id, resource, outputs, inputs)
    assert unchanged.changes is False
    assert unchanged.replaces == []

    edited = host.diff(PROVIDER, note_id, resource, outputs, {**inputs, "text": "v2"})
    assert edited.changes is True
    assert edited.replaces == []

    renamed = host.diff(PROVIDER, note_id, resource, outputs, {**inputs, "name": "plan-b"})
    assert renamed.changes is True
    assert renamed.replaces == ["name"]
    assert renamed.delete_before_replace is False

    outputs = host.update(PROVIDER, note_id, resource, outputs, {**inputs, "text": "v2"})
    assert outputs == {"name": "plan", "text": "v2", "revision": 2}
    assert service.notes["plan"]["text"] == "v2"

    service.notes["plan"]["text"] = "edited by hand"
    read_id, live, read_inputs = host.read(PROVIDER, note_id, resource, outputs, {**inputs, "text": "v2"})
    assert read_id == "plan"
    assert live["text"] == "edited by hand"
    assert read_inputs == {}

    host.delete(PROVIDER, note_id, resource, live)
    assert "plan" not in service.notes
    assert "deleted note plan" in host.wait_for_log("deleted note plan")

    gone_id, gone, _ = host.read(PROVIDER, note_id, resource, live)
    assert gone_id == ""
    assert gone == {}
    host.delete(PROVIDER, note_id, resource, live)


def test_provider_exception_surfaces_with_its_message_last(host: ProviderHost, service: NotesService) -> None:
    with pytest.raises(ProviderCallError) as caught:
        host.create(PROVIDER, urn(Note, "essay"), {"name": "essay", "text": "x" * (MAX_TEXT + 1)})

    error = caught.value
    expected = f"note essay: notes service PUT /notes/essay -> 422 text longer than {MAX_TEXT} characters"
    assert error.reason == expected
    assert error.message == f"tests.harness.trivial_provider.NotesServiceError: {expected}"
    assert error.method == "Create"
    assert "Traceback (most recent call last)" in error.details
    assert service.token not in error.details
    assert "essay" not in service.notes


def test_create_refuses_an_unmanaged_note(host: ProviderHost, service: NotesService) -> None:
    service.notes["legacy"] = {"text": "made by hand", "revision": 7}

    with pytest.raises(ProviderCallError) as caught:
        host.create(PROVIDER, urn(Note, "legacy"), {"name": "legacy", "text": "new"})

    assert "import_ resource option" in caught.value.reason
    assert service.notes["legacy"] == {"text": "made by hand", "revision": 7}

    adopted_id, adopted, _ = host.read(
        PROVIDER, "legacy", urn(Note, "legacy"), {}, {"name": "legacy", "text": "new"}
    )
    assert adopted_id == "legacy"
    assert adopted == {"name": "legacy", "text": "made by hand", "revision": 7}


def test_each_host_keeps_its_own_configuration(
    provider_host_factory: ProviderHostFactory, host: ProviderHost, service: NotesService
) -> None:
    wrong = provider_host_factory(_config(service, "not-the-token"))

    assert wrong is not host
    assert provider_host_factory(_config(service, service.token)) is host
    with pytest.raises(ProviderCallError) as caught:
        wrong.create(PROVIDER, urn(Note, "denied"), {"name": "denied", "text": "x"})
    assert caught.value.reason == "note denied: notes service GET /notes/denied -> 401 unauthorized"
    assert "not-the-token" not in caught.value.details
    assert "Bearer not-the-token" in service.seen_authorization

    _, outputs = host.create(PROVIDER, urn(Note, "allowed"), {"name": "allowed", "text": "x"})
    assert outputs["name"] == "allowed"
    assert service.notes["allowed"]["marker"] == MARKER


def test_a_host_stops_on_exit_and_reports_calls_after_that(service: NotesService) -> None:
    with start_provider_host(_config(service, service.token)) as short_lived:
        assert short_lived.running
        assert short_lived.start_seconds is not None
        process = short_lived._process
    assert not short_lived.running
    assert process is not None and process.poll() is not None
    with pytest.raises(RuntimeError, match="not running"):
        short_lived.create(PROVIDER, urn(Note, "late"), {"name": "late", "text": "x"})


def test_configure_is_accepted_once(host: ProviderHost) -> None:
    with pytest.raises(RuntimeError, match="start another host"):
        host.configure({"smarteros:demoToken": "another"})


def test_property_maps_must_not_carry_the_provider_key(host: ProviderHost) -> None:
    with pytest.raises(ValueError, match="__provider"):
        host.create(PROVIDER, urn(Note, "x"), {"name": "x", "text": "x", "__provider": "forged"})
