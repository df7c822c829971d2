"""Tenant files as YAML: parse with positions, refuse what is unsafe, build plain data plus an index of the
node of every key and value, so every rule can point at ``path:line:col``.

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: only ``true``/``false`` are booleans and
integers are plain decimals. Every scalar and key is checked for credentials and for control, invisible or
bidirectional characters before anything else sees it; comments are checked for credentials too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from components import limits
from components.credentials import credential_kind
from components.problems import Loc, Problem, field_path, show

MAX_EXPANDED_NODES = 10_000
"""Upper bound on the nodes a file may expand to once aliases are followed (an alias bomb is refused)."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a tenant file may use (a real one needs four levels)."""

MAX_FILE_BYTES = 1_000_000

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TenantLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader with YAML 1.2-style booleans and integers."""


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_TenantLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TenantLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_TenantLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))

_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


@dataclass
class _Document:
    """A tenant file as plain data, with the node of every key and value by location."""

    data: Any
    values: dict[Loc, yaml.Node]
    keys: dict[Loc, yaml.Node]
    reported: set[Loc]


class _FileChecker:
    """Turns one file's text into plain data, collecting every problem with its position."""

    def __init__(self, path: str, opaque_keys: frozenset[str] = frozenset(), *, random_tokens: bool = True) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.constructor = yaml.constructor.SafeConstructor()
        self.opaque_keys = opaque_keys  # keys whose text value is kept unexamined (Pulumi's `secure:`)
        self.random_tokens = random_tokens

    def add(self, node_or_mark: Any, loc: Loc, message: str) -> None:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.problems.append(Problem(self.path, line, col, field_path(loc), message))

    def parse(self, text: str) -> _Document | None:
        try:
            too_deep = _too_deep(text)
            if too_deep is not None:
                self.add(too_deep, (), f"the document is nested more than {MAX_DEPTH} levels deep")
                return None
            loader = _TenantLoader(text)
            try:
                root = loader.get_single_node()
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            if "expected a single document" in f"{exc.context} {exc.problem}":
                self.add(exc.problem_mark, (), "a tenant file holds one YAML document; a second one starts here")
            else:
                detail = str(exc.problem or exc.context or "invalid YAML")
                if credential_kind(detail) or len(detail) > 200:
                    detail = "invalid YAML"
                mark = exc.problem_mark or exc.context_mark
                self.add(mark, (), f"YAML syntax error: {limits.escape_invisible(detail)}")
            return None
        except yaml.YAMLError:
            self.add(None, (), "YAML syntax error")
            return None
        if root is None:
            self.problems.append(Problem(self.path, 1, 1, "", "the file is empty; expected the tenant's fields"))
            return None
        if not self._within_budget(root):
            return None
        if not isinstance(root, yaml.MappingNode):
            kind = credential_kind(root.value) if isinstance(root, yaml.ScalarNode) else None
            if kind:
                self.add(root, (), f"the file looks like a credential ({kind}); credentials belong in Vault")
            self.add(root, (), f"expected a mapping of tenant fields, found {self._kind(root)}")
            return None
        doc = _Document(None, {}, {}, set())
        doc.data = self._build(root, (), doc)
        return doc

    @staticmethod
    def _kind(node: yaml.Node) -> str:
        # Never the value itself: a file that is not a tenant file (a connection string, a copied
        # system file) must not have its content repeated in CI logs.
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        return "a single value"

    def _within_budget(self, root: yaml.Node) -> bool:
        """Count nodes as if every alias were expanded, without expanding anything."""
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(node: yaml.Node) -> int:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in active:
                raise _Recursive(node)
            total = 1
            if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
                active.add(key)
                children: Iterator[yaml.Node] = (
                    (c for pair in node.value for c in pair) if isinstance(node, yaml.MappingNode) else iter(node.value)
                )
                for child in children:
                    total += size(child)
                    if total > MAX_EXPANDED_NODES:
                        break
                active.discard(key)
            sizes[key] = total
            return total

        try:
            total = size(root)
        except _Recursive as exc:
            self.add(exc.node, (), "an alias refers to the node that contains it (recursive YAML)")
            return False
        except RecursionError:
            self.add(root, (), "the document is nested too deeply")
            return False
        if total > MAX_EXPANDED_NODES:
            self.add(
                root,
                (),
                f"anchors and aliases expand this document beyond {MAX_EXPANDED_NODES} nodes "
                "(an alias bomb?); write the values out instead",
            )
            return False
        return True

    def _build(self, node: yaml.Node, loc: Loc, doc: _Document) -> Any:
        doc.values[loc] = node
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                return self._refuse_tag(node, loc, doc)
            out: dict[str, Any] = {}
            seen: dict[str, yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    self.add(key_node, loc, "merge keys ('<<') are not supported; write the keys out")
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                    shown = show(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "a collection"
                    self.add(key_node, loc, f"keys must be text, found {shown}")
                    continue
                key = key_node.value
                problem = _key_problem(key)
                if problem:
                    self.add(key_node, loc, problem)  # the key is never repeated, not even in the field
                    continue
                if key in seen:
                    first = seen[key].start_mark
                    self.add(
                        key_node,
                        (*loc, key),
                        f"duplicate key (first defined at line {first.line + 1})",
                    )
                    continue
                seen[key] = key_node
                doc.keys[(*loc, key)] = key_node
                if key in self.opaque_keys and isinstance(value_node, yaml.ScalarNode):
                    doc.values[(*loc, key)] = value_node
                    out[key] = value_node.value
                    continue
                out[key] = self._build(value_node, (*loc, key), doc)
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                return self._refuse_tag(node, loc, doc)
            return [self._build(child, (*loc, i), doc) for i, child in enumerate(node.value)]
        # Whatever the tag: `!!int "postgres://..."` is a credential too.
        kind = credential_kind(node.value, random_tokens=self.random_tokens)
        if kind:
            self.add(node, loc, f"looks like a credential ({kind}); credentials belong in Vault")
            doc.reported.add(loc)
            return _Redacted()
        if node.tag not in _SCALAR_TAGS:
            return self._refuse_tag(node, loc, doc)
        found = limits.forbidden_character(node.value)
        if found:
            index, code, what = found
            self.add(node, loc, f"holds {code}, {what}, at character {index + 1}; retype the text without it")
            doc.reported.add(loc)
            return _Redacted()
        if node.tag == "tag:yaml.org,2002:str":
            return node.value
        try:
            return self.constructor.construct_object(node)
        except Exception:  # any constructor failure is a bad value (`!!bool maybe`, `!!timestamp soon`)
            what = "date" if node.tag.endswith(":timestamp") else _short_tag(node.tag)[2:]
            self.add(node, loc, f"{show(node.value)} is not a valid {what}")
            doc.reported.add(loc)
            return _Redacted()

    def _refuse_tag(self, node: yaml.Node, loc: Loc, doc: _Document) -> Any:
        tag = _short_tag(node.tag)
        shown = f"'{tag}'" if len(tag) <= 60 and not credential_kind(tag) else "with this name"
        self.add(node, loc, f"tag {limits.escape_invisible(shown)} is not allowed; use plain YAML values")
        doc.reported.add(loc)
        return _Redacted()


def _key_problem(key: str) -> str | None:
    """Why a mapping key cannot be used (and must not be repeated in a message), or ``None``."""
    kind = credential_kind(key)
    if kind:
        return f"a key looks like a credential ({kind}); credentials belong in Vault"
    if len(key) > limits.KEY_MAX_LENGTH:
        return f"a key is {len(key)} characters long; no key of a tenant file is longer than {limits.KEY_MAX_LENGTH}"
    found = limits.forbidden_character(key)
    if found:
        return f"a key holds {found[1]}, {found[2]}; retype it without it"
    return None


def comment_problems(text: str, *, random_tokens: bool = True) -> list[tuple[int, int, str]]:
    """``(line, column, message)`` for every YAML comment that holds something like a credential.

    Comments are what lies between the scanner's tokens after a ``#``; each character is looked at once.
    """
    if "#" not in text:
        return []
    loader = _TenantLoader(text)
    gaps: list[tuple[int, int, int, int]] = []  # (start, end, line, column) of each stretch between tokens
    previous = (0, 0, 0)
    try:
        while loader.check_token():
            token = loader.get_token()
            gaps.append((previous[0], token.start_mark.index, previous[1], previous[2]))
            end = token.end_mark
            if end.index >= previous[0]:
                previous = (end.index, end.line, end.column)
    except yaml.YAMLError:
        pass  # the parser reports the syntax error; the rest of the file is still looked at
    finally:
        loader.dispose()
    gaps.append((previous[0], len(text), previous[1], previous[2]))
    found: list[tuple[int, int, str]] = []
    for start, end, line, column in gaps:
        position = start
        while True:
            hash_at = text.find("#", position, end)
            if hash_at < 0:
                break
            newline_before = text.rfind("\n", start, hash_at)
            line += text.count("\n", position, hash_at)
            at_column = hash_at - newline_before if newline_before >= 0 else column + hash_at - start + 1
            line_end = text.find("\n", hash_at, end)
            line_end = end if line_end < 0 else line_end
            kind = credential_kind(text[hash_at + 1 : line_end], random_tokens=random_tokens)
            if kind:
                message = f"a comment looks like a credential ({kind}); remove it from the file"
                found.append((line + 1, at_column, message))
            position = line_end
    return found


def _too_deep(text: str) -> Any:
    """The YAML mark where the document first nests deeper than :data:`MAX_DEPTH`, or ``None``.

    The composer recurses once per level, so a file of a few hundred kilobytes of ``[`` would
    otherwise exhaust the stack before any rule could report it.
    """
    loader = _TenantLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()
    return None


class _Recursive(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__("recursive alias")
        self.node = node


class _Redacted(str):
    """Stands in for a value already reported (a credential, a refused tag), so no later message
    repeats it or reports it twice."""

    def __new__(cls) -> _Redacted:
        return super().__new__(cls, "")
