"""Whether a run may write: ``pulumi up`` writes; previews and the drift check only read.

A run is *read-only* when the environment variable ``SMARTEROS_READ_ONLY`` is ``true`` (the workflows'
``preview`` environment sets it for ``pulumi preview`` and the drift check). In a read-only run:

* **Credentials come from the environment only**: ``CLOUDFLARE_API_TOKEN``, ``PGUSER``/``PGPASSWORD``,
  ``VAULT_TOKEN`` and ``METABASE_API_KEY``, the read-only identities of README's "Previews with credentials
  that cannot write". A credential in the stack's config is refused, by the program and by every provider,
  naming the key: whoever can run a preview holds the stack's passphrase and can decrypt its config, so a
  writing credential there is a writing credential in the preview's hands.
* **PostgreSQL** is reached as ``PGUSER`` (the config's ``user`` is the provisioner; the default here is
  :data:`PREVIEW_ROLE`), every transaction read-only (``default_transaction_read_only``), and the provider
  refuses to open a writing transaction.
* **Vault and Metabase** clients send only reads (``GET``, ``LIST``); anything else is refused before it
  leaves the process.

So a read-only run changes nothing even when handed a writing identity by mistake; the identities
themselves (``vault/preview.hcl``, ``sql/preview.sql``) are what guarantee it against a hostile program.
"""

from __future__ import annotations

from collections.abc import Mapping

READ_ONLY_ENV = "SMARTEROS_READ_ONLY"
PREVIEW_ROLE = "smarteros_preview"
"""The PostgreSQL role ``sql/preview.sql`` creates; a read-only run connects as it unless ``PGUSER`` says."""

READ_METHODS = frozenset({"GET", "LIST", "HEAD"})

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"", "false", "0", "no"})


class AccessError(Exception):
    """The environment does not say clearly whether this run may write."""


class ReadOnlyRefusal(Exception):
    """A write that a read-only run does not send; the message says what it was and why."""

    def __init__(self, system: str, what: str) -> None:
        self.system = system
        self.what = what
        super().__init__(
            f"{system}: {what} not sent: this run is read-only ({READ_ONLY_ENV}=true); "
            "changes are applied by `pulumi up` with the writing credentials"
        )


def read_only(environ: Mapping[str, str]) -> bool:
    """True when ``environ`` marks the run read-only; an unclear value is an error, never a guess."""
    value = environ.get(READ_ONLY_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise AccessError(  # the value is not repeated: whatever was put there by mistake stays out of logs
        f"{READ_ONLY_ENV} must be true or false (got something else): it decides whether this run may write"
    )
