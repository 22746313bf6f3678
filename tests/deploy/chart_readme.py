"""The values table of the chart README, generated from `# --` comments in values.yaml.

The comment convention is helm-docs': a `# -- description` block (continued by the `#` lines
right after it) documents the key on the next line. This module renders the same Key / Type /
Default / Description table helm-docs would, between the README's `<!-- values:start -->` and
`<!-- values:end -->` markers, and reports values that no documented key covers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

START = "<!-- values:start -->"
END = "<!-- values:end -->"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+|\"[^\"]+\"):(?:\s|$)")


def documented_keys(values_text: str) -> list[tuple[str, str]]:
    """(dotted key, description) in file order, for every key with a `# --` comment."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        if not stripped or stripped.startswith("- "):
            pending = None if not stripped else pending
            continue
        m = KEY_LINE.match(line)
        if not m:
            continue
        indent = len(m.group("indent"))
        key = m.group("key").strip('"')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        if pending is not None:
            out.append((".".join(k for _, k in stack), " ".join(p for p in pending if p)))
            pending = None
    return out


def lookup(values: dict, dotted: str):
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def type_name(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "string"
    return "object"


def leaves(node, prefix: str = ""):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix


def render_table(values_path: Path) -> str:
    text = values_path.read_text()
    values = yaml.safe_load(text)
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for key, desc in documented_keys(text):
        value = lookup(values, key)
        default = json.dumps(value, separators=(",", ":")).replace("|", r"\|")
        desc = desc.replace("|", r"\|")
        rows.append(f"| `{key}` | {type_name(value)} | `{default}` | {desc} |")
    return "\n".join(rows)


def undocumented(values_path: Path) -> list[str]:
    """Leaf values that neither they nor an ancestor document."""
    text = values_path.read_text()
    documented = {k for k, _ in documented_keys(text)}
    missing = []
    for leaf in leaves(yaml.safe_load(text)):
        parts = leaf.split(".")
        if not any(".".join(parts[:i]) in documented for i in range(1, len(parts) + 1)):
            missing.append(leaf)
    return missing


def updated_readme(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"the chart README lacks the {START} / {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"
