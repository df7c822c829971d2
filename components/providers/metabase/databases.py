"""Database connections: one PostgreSQL connection per tenant that logs in as the tenant's role.

Owns the connection's name and details and its ownership tag; closes the connection to every group but the
tenant's and Administrators before the create call returns, and deletes a connection it just made when it
cannot close it. Leaves its synced tables, questions and sync settings alone. Register it with
``retain_on_delete``: deleting a Metabase database deletes every question built on it.

Metabase (``src/metabase/warehouses_rest/api.clj``, ``src/metabase/warehouses/util.clj``,
``src/metabase/permissions/models/data_permissions.clj``, v50 to v0.6x):

* ``POST /api/database {engine, name, details}`` has no ``description``: the tag is written with ``PUT``;
* a new database gives every group its lowest create-queries level on any database, or
  ``query-builder-and-native`` when it has no rows at all (``new-database-permissions``): it is open until
  closed;
* when ``ssl`` is not true, Metabase tries SSL first and stores ``ssl: true`` when that works
  (``test-connection-details``): ``ssl: false`` here means "not required", never a downgrade, so it is
  neither reported as drift nor sent back;
* ``GET`` masks the password; ``PUT`` merges the details sent into the stored ones and retests only when they
  changed; a failed connection test answers 400 with a humanised ``message``;
* ``POST`` always tests the login first and offers no way to skip it: the body schema is closed, ``is_stub``
  is refused ("is_stub may not be set via the API") and ``test-connection-details`` runs before the insert
  (``src/metabase/warehouses_rest/api.clj`` at commit 004f0ce6 of the current line;
  ``src/metabase/api/database.clj`` at commit 005fb02b, the v50 line, tests the same way without ``is_stub``).

So a tenant whose role may not log in (``login: false``: suspended, cancelled, or a trial past its date) cannot
get a connection. When no connection of this stack exists yet, creating one is deferred
(:func:`.decisions.connection_step`): the resource is created with the id ``deferred:<tenant>`` and no
``database_id``, sends nothing to Metabase while the tenant stays closed (a refresh reads nothing and reports
no drift), and the first converge that sees the tenant open creates the connection, closed to other groups as
any new one, in an update. The id stays (Pulumi never changes an id on update); the Metabase id is the
``database_id`` output, which the permission edges take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi import Input, ResourceOptions
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from ..base import DynamicResource
from .client import ApiFailure, MetabaseClient, MetabaseError
from .decisions import (
    DEFERRED,
    connection_details,
    connection_step,
    metabase_id,
    opens_deferred,
    render_user,
    split_description,
    tag_owner,
    tagged_description,
    template_problem,
)
from .edges import close_database, post_without_resend
from .plumbing import (
    _absent_is_done,
    _check_known,
    _fail,
    _group_ids,
    _inputs,
    _MetabaseProvider,
    _norm,
    _plain,
    _reporting,
    _unless_absent,
    owner_label,
)


def _same_target(live: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    """Whether a live connection reaches the same server and database as the tenant role the inputs describe."""
    details = live.get("details") or {}
    wanted = connection_details(inputs)
    return (
        live.get("engine") == "postgres"
        and details.get("host") == wanted["host"]
        and _norm(details.get("port")) == wanted["port"]
        and (details.get("dbname") or details.get("db")) == wanted["dbname"]
        and details.get("user") == wanted["user"]
    )


class DatabaseConnectionProvider(_MetabaseProvider):
    """Owns one PostgreSQL connection (name and connection details) logging in as a tenant role; leaves
    its tables, questions and sync settings alone.

    Metabase returns the password masked, so the password is compared through the input only: a new input
    value is a change, the mask is never one. Deleting the connection deletes every question built on it, so
    components register it with ``retain_on_delete``.
    """

    fields = (
        "name", "host", "port", "dbname", "role", "user_template", "password", "ssl", "additional_options", "stack",
    )

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        for field in ("name", "host", "dbname", "role"):
            if _check_known(news, field) and not str(_plain(news[field]) or "").strip():
                _fail(failures, field, f"{field} must not be empty")
        if _check_known(news, "user_template"):
            problem = template_problem(str(_plain(news["user_template"])))
            if problem:
                _fail(failures, "user_template", problem)
        if _check_known(news, "port"):
            port = _norm(news["port"])
            if not isinstance(port, int) or not 0 < port < 65536:
                _fail(failures, "port", f"{port!r} is not a TCP port")
        if _check_known(news, "password") and not _plain(news["password"]):
            _fail(failures, "password", "the tenant role's password is required")
        return CheckResult(news, failures)

    @staticmethod
    def _create_body(inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The POST body: Metabase's schema has no ``description`` (it would be dropped)."""
        return {"engine": "postgres", "name": inputs["name"], "details": connection_details(inputs)}

    @staticmethod
    def _update_body(inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The PUT body. ``ssl`` goes only when required: Metabase may have upgraded the connection to SSL, and
        sending ``false`` would turn it off (or fail where the server requires SSL)."""
        details = connection_details(inputs)
        if not details["ssl"]:
            details.pop("ssl")
        return {
            "name": inputs["name"],
            "description": tagged_description("", tag_owner(inputs)),
            "details": details,
        }

    def _outs(self, inputs: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        details = live.get("details") or {}
        user = details.get("user")
        role = inputs.get("role")
        # The role is what the template produced the user from; a user changed by hand shows as a role change.
        if user != render_user(str(inputs.get("user_template") or "{role}"), str(role)):
            role = user
        required = bool(inputs.get("ssl"))
        return {
            **inputs,
            "name": live.get("name"),
            "host": details.get("host"),
            "port": _norm(details.get("port")),
            "dbname": details.get("dbname") or details.get("db"),
            "role": role,
            # Required and missing is drift; used without being required is Metabase's opportunistic SSL.
            "ssl": required and bool(details.get("ssl")),
            "ssl_in_use": bool(details.get("ssl")),
            "additional_options": details.get("additional-options") or None,
            "user": user,
            "engine": live.get("engine"),
            "owner": split_description(live.get("description"))[1],
            "database_id": int(live["id"]),
        }

    def _deferred_outs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of a connection that does not exist in Metabase yet: its inputs, no Metabase id."""
        return {**inputs, "ssl_in_use": False, "user": None, "engine": None, "owner": None, "database_id": None}

    def _converge_new(self, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """Adopt this stack's connection, or create it when the tenant's role may log in; None when creating
        it is deferred (:func:`.decisions.connection_step`). Returns the live connection's outputs."""
        tenant = inputs.get("tenant")
        who = owner_label(tenant)
        client = self._client()
        owner = tag_owner(inputs)
        name = inputs["name"]
        allowed = _group_ids(inputs.get("allowed_group_ids"))
        with _reporting(tenant):
            namesakes = sorted(
                (d for d in client.list_databases() if d.get("name") == name), key=lambda d: int(d["id"])
            )
            # Ours: tagged by this stack, or untagged but exactly this tenant's connection (a run that stopped
            # between the create and the tag). Anything else with the name is refused.
            ours = [
                d
                for d in namesakes
                if split_description(d.get("description"))[1] == owner
                or (split_description(d.get("description"))[1] is None and _same_target(d, inputs))
            ]
            if len(ours) > 1:
                extra = [int(d["id"]) for d in ours[1:]]
                close_database(client, int(ours[0]["id"]), allowed)
                for dbid in extra:
                    close_database(client, dbid, set())
                raise MetabaseError(
                    f"{who}: Metabase has {len(ours)} connections named {name!r} that log in as this tenant "
                    f"(ids {', '.join(str(int(d['id'])) for d in ours)}); the duplicates (ids "
                    f"{', '.join(map(str, extra))}) were closed to every group but Administrators: delete them "
                    "in Metabase (Admin > Databases) and run again"
                )
            if namesakes and not ours:
                dbid = namesakes[0]["id"]
                raise MetabaseError(
                    f"{who}: Metabase database {name!r} already exists (id {dbid}) "
                    f"without this stack's ownership tag; adopt it with the import_ resource option (id {dbid})"
                )
            step = connection_step(bool(_norm(inputs.get("login", True))), bool(ours))
            if step == "defer":
                return None
            fresh = step == "create"
            if ours:
                live = ours[0]
            else:
                live = post_without_resend(
                    lambda: client.create_database(self._create_body(inputs)),
                    lambda: self._find_new(client, inputs),
                )
        dbid = int(live["id"])
        self._close_or_undo(client, who, name, dbid, allowed, fresh)
        with _reporting(tenant):
            try:
                live = client.update_database(dbid, self._update_body(inputs))
            except ApiFailure as exc:
                raise MetabaseError(
                    f"{who}: Metabase database {name!r} (id {dbid}) is closed to other groups, but its "
                    f"ownership tag could not be written; the next run adopts it: {exc}"
                ) from None
        return self._outs(inputs, live)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        outs = self._converge_new(inputs)
        if outs is None:
            return CreateResult(f"{DEFERRED}:{inputs.get('tenant') or inputs['name']}", self._deferred_outs(inputs))
        return CreateResult(str(outs["database_id"]), outs)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """The inputs' diff; and a deferred connection whose tenant may now log in is due: an update creates it."""
        result = super().diff(id_, olds, news)
        if not result.changes and opens_deferred(_inputs(olds), _inputs(news), id_):
            return DiffResult(changes=True, replaces=[], stables=[], delete_before_replace=False)
        return result

    def _find_new(self, client: MetabaseClient, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The connection a create that may have gone through made (nothing with this name existed before)."""
        found = [d for d in client.list_databases() if d.get("name") == inputs["name"] and _same_target(d, inputs)]
        return min(found, key=lambda d: int(d["id"])) if found else None

    def _close_or_undo(
        self, client: MetabaseClient, who: str, name: str, dbid: int, allowed: set[int], fresh: bool
    ) -> None:
        """Close the connection to every group but ``allowed`` and Administrators; a fresh one that cannot be
        closed is deleted (it has no questions yet), so no other group can ever query it."""
        try:
            close_database(client, dbid, allowed)
            return
        except ApiFailure as exc:
            problem = exc
        if not fresh:
            raise MetabaseError(
                f"{who}: Metabase database {name!r} (id {dbid}) could not be closed to other groups: {problem}"
            ) from None
        try:
            with _absent_is_done():
                client.delete_database(dbid)
        except ApiFailure as exc:
            raise MetabaseError(
                f"{who}: Metabase database {name!r} (id {dbid}) was created but could not be closed to other "
                f"groups ({problem}) nor deleted ({exc}); delete it in Metabase (Admin > Databases)"
            ) from None
        raise MetabaseError(
            f"{who}: Metabase database {name!r} was created (id {dbid}) but could not be closed to other groups, "
            f"so it was deleted again: {problem}"
        ) from None

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        dbid = metabase_id(id_, inputs.get("database_id"))
        if dbid is None:
            return ReadResult(id_, inputs)  # deferred: nothing in Metabase to read, nothing drifted
        with _reporting(inputs.get("tenant")):
            live = _unless_absent(lambda: self._client().get_database(dbid, reader=f"database {id_}"))
        if live is None:
            return ReadResult("", {})
        return ReadResult(id_, self._outs(inputs, live))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        dbid = metabase_id(id_, _inputs(olds).get("database_id"))
        if dbid is None:
            outs = self._converge_new(inputs)
            return UpdateResult(self._deferred_outs(inputs) if outs is None else outs)
        with _reporting(inputs.get("tenant")):
            live = self._client().update_database(dbid, self._update_body(inputs))
        return UpdateResult(self._outs(inputs, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        dbid = metabase_id(id_, inputs.get("database_id"))
        if dbid is None:
            return  # never created
        with _reporting(inputs.get("tenant")), _absent_is_done():
            self._client().delete_database(dbid)


class DatabaseConnection(DynamicResource, module="metabase", name="DatabaseConnection"):
    """A Metabase PostgreSQL connection that logs in as a tenant's role, so row-level security limits every
    query to the tenant's rows. Owns the connection details; leaves synced tables and questions alone.
    Creating it closes it to every group but ``allowed_group_ids`` and Administrators before the call returns.
    While ``login`` is false (the tenant is closed) and no connection exists yet, creating it waits for the
    first converge with ``login`` true: Metabase refuses a connection it cannot log in with. Register it
    with ``retain_on_delete``: deleting a Metabase database deletes its questions."""

    database_id: Any

    def __init__(
        self,
        name: str,
        *,
        connection_name: Input[str],
        host: str,
        port: int,
        dbname: str,
        role: Input[str],
        user_template: str,
        password: Input[str],
        ssl: bool,
        additional_options: str,
        tenant: str | None,
        stack: str | None = None,
        allowed_group_ids: list[Input[int]] | None = None,
        login: Input[bool] = True,
        opts: ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "name": connection_name,
            "stack": stack,
            "host": host,
            "port": port,
            "dbname": dbname,
            "role": role,
            "user_template": user_template,
            "password": password,
            "ssl": ssl,
            "additional_options": additional_options,
            "tenant": tenant,
            "login": login,
            "user": None,
            "engine": None,
            "owner": None,
            "database_id": None,
        }
        if allowed_group_ids is not None:
            props["allowed_group_ids"] = allowed_group_ids
        super().__init__(DatabaseConnectionProvider(), name, props, opts)
