"""What ``leveret ctl`` prints: aligned tables, or JSON with ``--format json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def dig(item: Any, path: str) -> Any:
    for part in path.split('.'):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def cell(value: Any) -> str:
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ','.join(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Columns left-aligned to their widest cell, numbers right-aligned."""
    cells = [[cell(dig(row, c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(cells) and all(r[i].lstrip('-').replace('.', '', 1).isdigit() or not r[i]
                                   for r in cells) for i in range(len(columns))]

    def line(values: Sequence[str], header: bool = False) -> str:
        parts = [v.rjust(w) if numeric[i] and not header else v.ljust(w)
                 for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return '  '.join(parts).rstrip()

    out = [line(columns, header=True)] + [line(r) for r in cells]
    return '\n'.join(out)


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
