"""In a read-only run the Metabase client sends only reads: a write is refused before it leaves the process."""

from __future__ import annotations

import pytest

from components.access import ReadOnlyRefusal
from components.providers.metabase.client import MetabaseClient
from tests.metabase.double import MetabaseDouble


def test_a_read_only_client_reads_and_never_sends_a_write(metabase_double: MetabaseDouble) -> None:
    client = MetabaseClient(metabase_double.url, metabase_double.api_key, retries=0, read_only=True)
    groups = client.list_groups()
    assert groups  # reads go through
    sent = len(metabase_double.requests)
    revision = client.data_graph_revision()
    attempts = [
        lambda: client.create_group("read-only-probe"),
        lambda: client.update_group(int(groups[0]["id"]), "renamed"),
        lambda: client.delete_group(int(groups[0]["id"])),
        lambda: client.create_collection("probe", "", None),
        lambda: client.put_data_graph(revision, {}),
        lambda: client.create_database({"name": "probe", "engine": "postgres", "details": {}}),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyRefusal, match=r"^Metabase: (POST|PUT|DELETE) /api/\S+ not sent: this run is"):
            attempt()
    # Only the revision read reached Metabase.
    assert [method for method, _ in metabase_double.requests[sent:]] == ["GET"]
    assert [g["name"] for g in client.list_groups()] == [g["name"] for g in groups]
