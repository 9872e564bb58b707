"""Imports point down the layers: every module of protocol/, broker/ and
client/ is parsed (imports inside functions and ``TYPE_CHECKING`` blocks
included) and each import of a Leveret module is checked against the table
below.  The table is the layering, written down; docs/architecture.md
explains it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Where each layer lives in the source tree and its name once installed.
PACKAGES = {'protocol': 'leveret.protocol', 'broker': 'leveret.broker', 'client': 'leveret.client'}

#: layer -> the Leveret packages its modules may import.  A module belongs to
#: the longest layer name it starts with; ``leveret`` itself (the version)
#: may be imported by anyone.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    # The wire layer, shared by the broker and the client: pamqp only.
    'leveret.protocol': ('leveret.protocol',),
    # The store is beneath the model: it never imports queues, vhosts or
    # messages (store/base.py names what it reads of them as protocols).
    'leveret.broker.store': ('leveret.broker.store',),
    # The model: synchronous, knows nothing of connections or channels;
    # what it needs from above is model/ports.py.
    'leveret.broker.model': ('leveret.broker.model', 'leveret.broker.store',
                             'leveret.protocol'),
    # The sessions implement the model's ports; they read the settings and
    # the users (leaf modules) but never the process wiring.
    'leveret.broker.session': ('leveret.broker.session', 'leveret.broker.model',
                               'leveret.broker.store', 'leveret.broker.auth',
                               'leveret.broker.access', 'leveret.broker.config',
                               'leveret.broker.tls', 'leveret.protocol'),
    # The management API: above the sessions and the model, which it reads
    # through their public methods; what only the process can do it asks
    # through http/ports.py, never by importing the wiring.
    'leveret.broker.http': ('leveret.broker.http', 'leveret.broker.metrics',
                            'leveret.broker.session', 'leveret.broker.model',
                            'leveret.broker.store', 'leveret.broker.auth',
                            'leveret.broker.access', 'leveret.broker.config',
                            'leveret.broker.tls', 'leveret.protocol'),
    # The dashboard: pages made of the management API's answers.
    'leveret.broker.dashboard': ('leveret.broker.dashboard', 'leveret.broker.http',
                                 'leveret.broker.metrics', 'leveret.broker.auth',
                                 'leveret.broker.config', 'leveret.protocol'),
    # The metrics (snapshots, Prometheus families, the sampled history): they
    # read the sessions and the model like the API, which shows their views.
    'leveret.broker.metrics': ('leveret.broker.metrics', 'leveret.broker.session',
                               'leveret.broker.model', 'leveret.broker.store',
                               'leveret.broker.config', 'leveret.protocol'),
    # leveret ctl speaks HTTP to the API only: nothing of the broker's internals.
    'leveret.broker.ctl': ('leveret.broker.ctl',),
    # Leaves: imported by the sessions and the wiring, importing nothing
    # (the permission checks read the users and raise the protocol's 403).
    'leveret.broker.auth': ('leveret.broker.auth',),
    'leveret.broker.access': ('leveret.broker.access', 'leveret.broker.auth',
                              'leveret.protocol'),
    'leveret.broker.config': ('leveret.broker.config',),
    'leveret.broker.tls': ('leveret.broker.tls',),
    # Process wiring (server, definitions, recovery, cli, ...): on top.
    'leveret.broker': ('leveret.broker', 'leveret.protocol'),
    # The client and the worker: never the broker.
    'leveret.client': ('leveret.client', 'leveret.protocol'),
}

#: layer -> modules outside Leveret it must not import.
MUST_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    # The model runs on its Clock, not on an event loop.
    'leveret.broker.model': ('asyncio', 'uvloop'),
    # Sans-IO.
    'leveret.protocol': ('asyncio', 'uvloop', 'socket'),
}

#: Names a user's project may use for its own modules: only ever imported
#: as leveret.broker, leveret.client, leveret.protocol.
BARE_NAMES = frozenset(PACKAGES)


@dataclass(frozen=True)
class Import:
    module: str          # the importing module
    target: str          # the module imported (absolute)
    line: int


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix('')
    parts = list(relative.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def source_files() -> dict[str, Path]:
    return {module_name(path): path for folder in PACKAGES
            for path in sorted((ROOT / folder).rglob('*.py'))}


MODULES = source_files()


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import in ``path``, relative ones made absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - node.level + 1]
                base = '.'.join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                # ``from package import module`` imports the module.
                child = f'{base}.{alias.name}'
                found.append(Import(module, child if child in MODULES else base, node.lineno))
    return found


ALL_IMPORTS = [imp for module, path in MODULES.items() for imp in imports_of(module, path)]


def layer_of(module: str) -> str:
    return max((layer for layer in MAY_IMPORT if within(module, layer)), key=len)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + '.')


def test_every_module_is_found_in_a_layer():
    assert len(MODULES) > 50
    for module in MODULES:
        assert layer_of(module)


def test_leveret_imports_point_down_the_layers():
    wrong = []
    for imp in ALL_IMPORTS:
        if not within(imp.target, 'leveret') or imp.target == 'leveret':
            continue
        layer = layer_of(imp.module)
        if not any(within(imp.target, allowed) for allowed in MAY_IMPORT[layer]):
            wrong.append(f'{imp.module}:{imp.line} imports {imp.target} ({layer} may import '
                         f'{", ".join(MAY_IMPORT[layer])})')
    assert not wrong, '\n'.join(wrong)


def test_layers_do_not_import_what_they_must_not():
    wrong = []
    for imp in ALL_IMPORTS:
        for layer, banned in MUST_NOT_IMPORT.items():
            if within(imp.module, layer) and any(within(imp.target, b) for b in banned):
                wrong.append(f'{imp.module}:{imp.line} imports {imp.target}')
    assert not wrong, '\n'.join(wrong)


def test_nothing_imports_a_bare_broker_client_or_protocol():
    files = dict(MODULES)
    files.update({f'leveret.{p.stem}': p for p in (ROOT / 'leveret').glob('*.py')})
    wrong = [f'{imp.module}:{imp.line} imports {imp.target}'
             for module, path in files.items() for imp in imports_of(module, path)
             if imp.target.partition('.')[0] in BARE_NAMES]
    assert not wrong, '\n'.join(wrong)


@pytest.mark.parametrize('source, target, allowed', [
    ('leveret.broker.model.queue', 'leveret.broker.session.channel', False),
    ('leveret.broker.store.disk', 'leveret.broker.model.queue', False),
    ('leveret.broker.session.connection', 'leveret.broker.server', False),
    ('leveret.protocol.codec', 'leveret.broker.model.message', False),
    ('leveret.client.app', 'leveret.broker.config', False),
    ('leveret.broker.session.channel', 'leveret.broker.model.queue', True),
    ('leveret.broker.server', 'leveret.broker.session', True),
    ('leveret.broker.http.queues', 'leveret.broker.server', False),
    ('leveret.broker.http.queues', 'leveret.broker.model.queue', True),
    ('leveret.broker.ctl.cli', 'leveret.broker.http.app', False),
    ('leveret.broker.ctl.cli', 'leveret.broker.auth', False),
])
def test_the_table_says_what_the_layers_say(source, target, allowed):
    """The rules catch what they are for (and allow what goes down)."""
    layer = layer_of(source)
    assert any(within(target, a) for a in MAY_IMPORT[layer]) is allowed


def test_relative_imports_resolve_to_their_package(tmp_path):
    found = {imp.target for imp in imports_of('leveret.broker.model.queue',
                                              MODULES['leveret.broker.model.queue'])}
    assert 'leveret.broker.model.message' in found      # from .message import Message
    assert 'leveret.broker.store.base' in found         # from ..store.base import Store
