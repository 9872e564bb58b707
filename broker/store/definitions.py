"""The definitions as files: the journal's items grouped by kind, and the
whole-file ``definitions.json`` that earlier versions wrote (format 1, read
only: a data directory that has one moves to the journal at its next start).

Field tables (queue and exchange arguments, binding arguments) arrive
already encoded as text (``broker/definitions.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import Definitions

FORMAT_VERSION = 1


def kind_of(key: str) -> str:
    return key.partition('\x00')[0]


def from_items(items: dict[str, Any]) -> Definitions:
    """The journal's items (``key -> value``) grouped by kind."""
    out = Definitions()
    for key, value in items.items():
        kind = kind_of(key)
        if kind in Definitions.KINDS:
            getattr(out, kind).append(value)
    return out


def load_legacy(path: Path) -> Definitions | None:
    """``definitions.json`` of format 1: vhost names, users with their vhosts."""
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    if document.get('format') != FORMAT_VERSION:
        raise ValueError(f'{path}: unknown definitions format {document.get("format")!r}')
    out = Definitions(exchanges=document['exchanges'], queues=document['queues'],
                      bindings=document['bindings'], legacy=True)
    out.vhosts = [{'name': name} for name in document['vhosts']]
    for user in document['users']:
        out.users.append({'name': user['name'], 'password_hash': user['password_hash'],
                          'tags': list(user.get('tags', []))})
        for vhost in user.get('vhosts', []):
            out.permissions.append({'vhost': vhost, 'user': user['name'],
                                    'configure': '.*', 'write': '.*', 'read': '.*'})
    return out
