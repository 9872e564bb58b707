"""client/ imports in one direction: every module of it parsed (function-level
and TYPE_CHECKING imports included), the import graph has no cycle, the
result reader does not know the app, remote control and the banner do not
know the worker's life cycle, and nothing imports the broker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / 'client'


def module_names() -> dict[str, Path]:
    names = {}
    for path in CLIENT.rglob('*.py'):
        parts = ['leveret', 'client', *path.relative_to(CLIENT).with_suffix('').parts]
        if parts[-1] == '__init__':
            parts.pop()
        names['.'.join(parts)] = path
    return names


MODULES = module_names()


def imports_of(name: str) -> set[str]:
    """The modules ``name`` imports (a name imported from a package counts as
    its submodule when there is one)."""
    path = MODULES[name]
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            subs = [f'{target}.{alias.name}' for alias in node.names]
            known = [sub for sub in subs if sub in MODULES]
            found.update(known)
            if len(known) < len(subs):
                found.add(target)
    return found


GRAPH = {name: {i for i in imports_of(name) if i in MODULES and i != name} for name in MODULES}


def reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        for nxt in GRAPH[current]:
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_the_parser_sees_the_worker_parts():
    assert {'leveret.client.worker.intake', 'leveret.client.worker.state',
            'leveret.client.result', 'leveret.client.messages'} <= set(MODULES)
    assert 'leveret.client.worker.writes' in GRAPH['leveret.client.worker.outcomes']


@pytest.mark.parametrize('name', sorted(MODULES))
def test_no_module_imports_itself_back(name):
    assert not reaches(name, name), f'{name} is part of an import cycle'


@pytest.mark.parametrize('lower, upper', [
    ('leveret.client.result', 'leveret.client.app'),
    ('leveret.client.worker.control', 'leveret.client.worker.lifecycle'),
    ('leveret.client.worker.banner', 'leveret.client.worker.lifecycle'),
    ('leveret.client.worker.state', 'leveret.client.worker.intake'),
    ('leveret.client.worker.state', 'leveret.client.worker.outcomes'),
    ('leveret.client.worker.writes', 'leveret.client.worker.outcomes'),
    ('leveret.client.worker.canvas', 'leveret.client.worker.writes'),
    ('leveret.client.worker.outcomes', 'leveret.client.worker.intake'),
])
def test_lower_parts_do_not_know_the_upper_ones(lower, upper):
    assert not reaches(lower, upper)


@pytest.mark.parametrize('name', sorted(MODULES))
def test_client_never_imports_the_broker_or_bare_layer_names(name):
    for imported in imports_of(name):
        top = imported.split('.')[0]
        assert top not in ('broker', 'client', 'protocol'), f'{name} imports {imported}'
        assert not imported.startswith('leveret.broker'), f'{name} imports {imported}'
