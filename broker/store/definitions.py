"""Durable topology as a JSON file, replaced atomically on every change.

Field tables (queue and exchange arguments, binding arguments) arrive
already encoded as text (``broker/definitions.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import Definitions
from .files import write_atomically

FORMAT_VERSION = 1


def save(path: Path, definitions: Definitions) -> None:
    document = {
        'format': FORMAT_VERSION,
        'vhosts': definitions.vhosts,
        'users': definitions.users,
        'exchanges': definitions.exchanges,
        'queues': definitions.queues,
        'bindings': definitions.bindings,
    }
    write_atomically(path, json.dumps(document, indent=1, sort_keys=True).encode())


def load(path: Path) -> Definitions | None:
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    if document.get('format') != FORMAT_VERSION:
        raise ValueError(f'{path}: unknown definitions format {document.get("format")!r}')
    return Definitions(vhosts=document['vhosts'], users=document['users'],
                       exchanges=document['exchanges'], queues=document['queues'],
                       bindings=document['bindings'])
