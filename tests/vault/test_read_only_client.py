"""In a read-only run the Vault client sends only reads (GET, LIST): a write is refused before it is sent,
even when the token could write (here the server's root token)."""

from __future__ import annotations

import pytest

from components.access import ReadOnlyRefusal
from components.providers.vault_client import VaultApi
from tests.harness.openbao import OpenBaoServer
from tests.vault.conftest import fresh_rut


def test_a_read_only_client_reads_and_never_sends_a_write(openbao_server: OpenBaoServer) -> None:
    rut = fresh_rut("K")
    writer = VaultApi(openbao_server.address, openbao_server.root_token)
    writer.kv_write("secret", f"tenants/{rut}/odoo", {"admin_password": "kept"}, 0)
    reader = VaultApi(openbao_server.address, openbao_server.root_token, read_only=True)
    assert reader.kv_read("secret", f"tenants/{rut}/odoo").data == {"admin_password": "kept"}  # type: ignore[union-attr]
    attempts = [
        lambda: reader.kv_write("secret", f"tenants/{rut}/odoo", {"admin_password": "changed"}, 1),
        lambda: reader.kv_write_metadata("secret", f"tenants/{rut}/odoo", {"managed-by": "x"}),
        lambda: reader.kv_delete_all("secret", f"tenants/{rut}/odoo"),
        lambda: reader.policy_write(f"tenant-{rut.lower()}", 'path "secret/*" { capabilities = ["read"] }'),
        lambda: reader.policy_delete(f"tenant-{rut.lower()}"),
        lambda: reader.approle_write(f"tenant-{rut.lower()}", {"token_policies": "tenant-x"}),
        lambda: reader.approle_delete(f"tenant-{rut.lower()}"),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyRefusal, match=r"^Vault: (POST|PUT|DELETE) /v1/\S+ not sent: this run is read-only"):
            attempt()
    after = writer.kv_read("secret", f"tenants/{rut}/odoo")
    assert after is not None and (after.data, after.version) == ({"admin_password": "kept"}, 1)
    assert writer.policy_read(f"tenant-{rut.lower()}") is None
    assert writer.approle_read(f"tenant-{rut.lower()}") is None
