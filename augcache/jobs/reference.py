"""The references written from the code: every config key with its type, default and
description, from the schema (``workflow/schemas/config.schema.yaml``, the one place a key is
described), and every output of the workflow, from the table of paths
(:data:`augcache.core.paths.OUTPUTS`). ``config/README.md`` and the documentation site's reference
pages are this module's output (``python -m augcache.jobs.reference > config/README.md``; the
suite checks that the file is current and that no key or path lacks a description)."""

from __future__ import annotations

import json
import sys

HEADER = "# Configuration\n"
GENERATED = ("<!-- Written from workflow/schemas/config.schema.yaml by `python -m augcache.jobs.reference "
             "> config/README.md`: edit the schema, not this file. -->\n")


def load_schema() -> dict:
    import yaml

    from augcache.jobs.settings import SCHEMA

    return yaml.safe_load(SCHEMA.read_text())


def keys(schema: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Every key of the schema, dotted (``eval.knn.k``), with its node, parents first. Keys are the
    ``properties`` of objects; the alternatives of a ``oneOf`` (a preprocessing given two ways) and
    the free names of an ``additionalProperties`` map (the variants) are described by their key."""
    found = []
    for name, node in schema.get("properties", {}).items():
        found.append((prefix + name, node))
        found += keys(node, f"{prefix}{name}.")
    return found


def undescribed(schema: dict) -> list[str]:
    """The keys that have no description."""
    return [name for name, node in keys(schema) if not str(node.get("description", "")).strip()]


def _value(value) -> str:
    return "`" + json.dumps(value, ensure_ascii=False).replace("\"", "") + "`" if not isinstance(value, str) \
        else f"`{value}`"


def type_of(node: dict) -> str:
    """A key's type in words: its JSON types, enum values or alternatives."""
    if "enum" in node:
        return "one of " + ", ".join(_value(v) for v in node["enum"])
    if "const" in node:
        return _value(node["const"])
    if "oneOf" in node:
        return " or ".join(type_of(alternative) for alternative in node["oneOf"])
    kinds = node.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = []
    for kind in kinds:
        if kind == "array" and "items" in node:
            words.append(f"list of {type_of(node['items'])}")
        else:
            words.append(kind)
    return " or ".join(words)


def default_of(node: dict) -> str:
    return _value(node["default"]) if "default" in node else "—"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def config_reference(schema: dict | None = None) -> str:
    """The reference of every key, a section per top-level key (a heading of level 2): its
    description, then a table of its keys (type, default, description)."""
    schema = schema if schema is not None else load_schema()
    out = [schema.get("description", "").strip(), ""]
    for name, node in schema["properties"].items():
        out += [f"## `{name}`", ""]
        if "properties" not in node:
            out += [f"{type_of(node)}, default {default_of(node)}.", ""]
        out += [node["description"].strip(), ""]
        if "properties" in node:
            out += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
            for key, child in keys(node):
                out.append(f"| `{key}` | {_cell(type_of(child))} | {_cell(default_of(child))} | "
                           f"{_cell(child.get('description', ''))} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def outputs_reference() -> str:
    """A table of every output: its path pattern and what it holds."""
    from augcache.core.paths import OUTPUTS

    rows = [f"| `{path}` | {_cell(what)} |" for path, what in OUTPUTS.items()]
    return "\n".join(["| path | what it is |", "| --- | --- |", *rows]) + "\n"


def config_readme(schema: dict | None = None) -> str:
    """config/README.md: the reference with its title."""
    return f"{HEADER}\n{GENERATED}\n{config_reference(schema)}"


if __name__ == "__main__":
    sys.stdout.write(config_readme())
