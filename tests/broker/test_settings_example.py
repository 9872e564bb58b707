"""docs/settings.example.toml loads, names every setting, and shows each
one's real default, so it cannot go stale: a new setting, a changed default
or a renamed one fails here until the example says so too."""

from __future__ import annotations

import re
from pathlib import Path

from leveret.broker.config import Settings, UserSettings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / 'docs' / 'settings.example.toml'
#: Shown commented out: no default a TOML file can spell (none), or an example
#: that would create a user.
COMMENTED = {'users', 'load_definitions'}
#: Set to a value of the example's own: the default depends on the machine.
NOT_DEFAULT = {'data_dir'}


def assignments(text: str) -> dict[str, bool]:
    """Every ``name = ...`` of the file: name -> commented out."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        match = re.match(r'(#\s*)?([a-z_]+) = ', line)
        if match:
            found.setdefault(match[2], bool(match[1]))
    for match in re.finditer(r'^(#\s*)?\[\[(\w+)\]\]', text, re.M):
        found.setdefault(match[2], bool(match[1]))
    return found


def test_the_example_names_every_setting():
    named = assignments(EXAMPLE.read_text())
    assert set(Settings.model_fields) <= set(named), set(Settings.model_fields) - set(named)
    assert set(UserSettings.model_fields) <= set(named)
    assert {name for name, commented in named.items()
            if commented and name in Settings.model_fields} == COMMENTED


def test_the_example_loads_and_shows_every_default(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f'LEVERET_{name.upper()}', raising=False)
    loaded = load_settings(EXAMPLE)
    defaults = Settings()
    for name in Settings.model_fields.keys() - NOT_DEFAULT:
        assert getattr(loaded, name) == getattr(defaults, name), name
    assert loaded.data_dir == Path('/var/lib/leveret')


def test_the_commented_examples_load_too(tmp_path):
    uncommented = re.sub(r'^# ((\[\[users\]\])|([a-z_]+ = ))', r'\1', EXAMPLE.read_text(),
                         flags=re.M)
    config = tmp_path / 'leveret.toml'
    config.write_text(uncommented)
    loaded = load_settings(config)
    assert [(u.name, u.vhosts, u.tags) for u in loaded.users] == [
        ('app', ['/', 'reports'], ['management'])]
    assert loaded.load_definitions == Path('/etc/leveret/definitions.json')


def test_the_broker_starts_with_the_example(broker_factory):
    # --port, --management-port and --data-dir of the test harness win over the file.
    broker = broker_factory(args=['--config', str(EXAMPLE)]).start()
    assert f'config file {EXAMPLE}' in broker.log()
    assert broker.stop() == 0
