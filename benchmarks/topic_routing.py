"""Benchmark (not a test): topic matching, the worst case next to the normal one.

    python benchmarks/topic_routing.py [--old REV]

Routes with the routing-key cache off (each key is matched afresh: the cache
hides the matcher on repeated keys) through a topic exchange built by this
checkout's ``broker/model/exchanges/topic.py`` and, with ``--old``, through
the same file as it was at git revision REV (default: before polynomial
matching), side by side:

* ``normal``: 200 bindings of Celery-like patterns (``tasks.*.high``,
  ``events.#``, ``a.b.c``...) and 3- to 5-word keys: microseconds per route;
* ``worst``: the binding ``#.#.#.#.#.z`` and a 100-word key that does not
  match (the old matcher tried every split point for each ``#``: seconds;
  it is given a 25-word key and one route, so that it finishes).

Prints one JSON line per case and implementation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPIC = 'broker/model/exchanges/topic.py'
# The exponential matcher (the set-of-nodes walk, fe1d9df, was 1.4x slower on ordinary keys).
BEFORE = '5199772^'


def load(source: str, name: str):  # type: ignore[no-untyped-def]
    """The topic module from ``source`` text, inside the leveret package."""
    path = Path(tempfile.mkdtemp()) / f'{name}.py'
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f'leveret.broker.model.exchanges.{name}',
                                                  path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def exchange(module, patterns: list[str]):  # type: ignore[no-untyped-def]
    x = module.TopicExchange('/', 'bench')
    for i, pattern in enumerate(patterns):
        x.bind(f'q{i}', pattern, {})
    module._CACHE_LIMIT = 0       # every route matches afresh
    return x


def per_route(x, keys: list[str], rounds: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(rounds):
        for key in keys:
            x._cache.clear()
            x.route(key, None)
    return (time.perf_counter() - started) / (rounds * len(keys))


def normal_case() -> tuple[list[str], list[str]]:
    rng = random.Random(14)
    words = ['tasks', 'events', 'celery', 'high', 'low', 'a', 'b', 'c', 'pidbox', 'reply']
    patterns = []
    for _ in range(200):
        n = rng.randint(1, 4)
        parts = [rng.choice(words + ['*', '#'] if rng.random() < 0.3 else words)
                 for _ in range(n)]
        patterns.append('.'.join(parts))
    keys = ['.'.join(rng.choice(words) for _ in range(rng.randint(3, 5))) for _ in range(500)]
    return patterns, keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--old', default=BEFORE, help='git revision of the old matcher')
    args = parser.parse_args()
    new = load((ROOT / TOPIC).read_text(), 'topic_new')
    implementations = [('new', new)]
    if args.old:
        found = subprocess.run(['git', 'show', f'{args.old}:{TOPIC}'], cwd=ROOT,
                               capture_output=True, text=True)
        if found.returncode == 0:
            implementations.append(('old', load(found.stdout, 'topic_old')))
        else:       # not a git checkout (an archive): the new matcher alone
            print(json.dumps(dict(note=f'no old matcher: {found.stderr.strip()}')))
    patterns, keys = normal_case()
    for label, module in implementations:
        x = exchange(module, patterns)
        print(json.dumps(dict(case='normal', matcher=label, bindings=len(patterns),
                              us_per_route=round(per_route(x, keys, 20) * 1e6, 2))), flush=True)
    for label, module in implementations:
        x = exchange(module, ['#.#.#.#.#.z'])
        words = 100 if label == 'new' else 25
        key = '.'.join(['w'] * words)
        seconds = per_route(x, [key], 1 if label == 'old' else 100)
        print(json.dumps(dict(case='worst', matcher=label, pattern='#.#.#.#.#.z',
                              key_words=words, ms_per_route=round(seconds * 1e3, 3))),
              flush=True)


if __name__ == '__main__':
    main()
