"""Topic routing, before and after the polynomial matcher: the worst case
of issue 14 next to ordinary Celery-like routing (a benchmark, not a test).

The matchers run in this process on the same bindings: the current
``leveret.broker.model.exchanges.topic`` and the one of each ``--before``
(a git revision; by default the commit before the topic change), loaded
from git into the same package so they share ``base.py``.

* worst case: one binding ``#.#.#.#.#.z`` (and 1 to 8 ``#``) and a 100-word
  routing key that does not end in ``z``, matched once (no cache);
* normal case: 200 queues bound the way Celery and its users bind topic
  exchanges (``celeryev``'s ``#``, ``worker.#``, ``task.#``; ``*.orders.#``,
  ``tasks.<name>``, ``eu.*.created`` ...), routed with 64 distinct keys:
  per match with the route cache cleared each time (the matcher itself),
  and through ``route()`` with the cache (what a Celery publish costs).

The old matcher is exponential in the number of ``#``: a worst case is
run only while one match takes under ``--old-limit`` seconds.

    flock /tmp/bench.lock .venv/bin/python benchmarks/topic_routing.py \
        --before 5199772^ --before 5199772
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import leveret.broker.model.exchanges.topic as current

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BEFORE = '5199772^'     # the commit before "Topic matching in polynomial time"


def load_before(revision: str, number: int = 0) -> ModuleType:
    source = subprocess.run(['git', 'show', f'{revision}:broker/model/exchanges/topic.py'],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    name = f'leveret.broker.model.exchanges._topic_before{number}'
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = 'leveret.broker.model.exchanges'
    sys.modules[name] = module
    exec(compile(source, f'{revision}:topic.py', 'exec'), module.__dict__)
    return module


class Queue:
    """A destination: only identity matters to the exchange."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def exchange(module: ModuleType, bindings: list[tuple[str, str]]) -> Any:
    ex = module.TopicExchange('/', 'bench')
    queues: dict[str, Queue] = {}
    for queue, key in bindings:
        ex.bind(queues.setdefault(queue, Queue(queue)), key, {})
    return ex


def celery_like() -> tuple[list[tuple[str, str]], list[str]]:
    """200 queues' bindings and 64 routing keys of an ordinary application."""
    bindings = [('celeryev.all', '#'), ('celeryev.workers', 'worker.#'),
                ('celeryev.tasks', 'task.#'), ('flower', '#')]
    regions = ('eu', 'us', 'ap', 'sa')
    entities = ('orders', 'payments', 'users', 'invoices', 'shipments')
    verbs = ('created', 'updated', 'deleted', 'paid', 'failed')
    n = 0
    while len(bindings) < 200:
        region, entity, verb = regions[n % 4], entities[n // 4 % 5], verbs[n // 20 % 5]
        pick = n % 5
        key = (f'{region}.{entity}.{verb}', f'*.{entity}.#', f'{region}.*.{verb}',
               f'tasks.{entity}_{verb}', f'{region}.{entity}.*')[pick]
        bindings.append((f'q{n}', key))
        n += 1
    keys = ['worker.heartbeat', 'worker.online', 'task.succeeded', 'task.received']
    for i in range(60):
        keys.append(f'{regions[i % 4]}.{entities[i // 4 % 5]}.{verbs[i // 3 % 5]}'
                    if i % 3 else f'tasks.{entities[i % 5]}_{verbs[i // 5 % 5]}')
    return bindings, keys


def per_match(ex: Any, keys: list[str], cached: bool, rounds: int) -> float:
    """Best of five: microseconds per routed key."""
    route = ex.route
    cache = ex._cache
    best = float('inf')
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            for key in keys:
                if not cached:
                    cache.clear()
                route(key, None)
        best = min(best, time.perf_counter() - start)
    return best / (rounds * len(keys)) * 1e6


def worst(ex_module: ModuleType, hashes: int, words: int) -> tuple[float, int]:
    """Seconds for one uncached match of ``#.#...#.z`` against ``words`` words."""
    ex = exchange(ex_module, [('q', '.'.join(['#'] * hashes + ['z']))])
    key = '.'.join(['w'] * words)
    start = time.perf_counter()
    found = ex.route(key, None)
    return time.perf_counter() - start, len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--before', action='append', default=None,
                        help=f'git revision to compare with (repeatable; default {DEFAULT_BEFORE})')
    parser.add_argument('--words', type=int, default=100)
    parser.add_argument('--old-limit', type=float, default=5.0,
                        help='stop an exponential worst case once one match takes this long (s)')
    args = parser.parse_args()
    revisions = args.before or [DEFAULT_BEFORE]
    matchers = [(rev, load_before(rev, k)) for k, rev in enumerate(revisions)]
    matchers.append(('after', current))
    print(f'after: the working tree; {args.words}-word routing key')
    header = ''.join(f' {name:>12}' for name, _ in matchers)

    print('\nworst case, one uncached match of #.#...#.z (seconds)')
    print(f'{"#":>3}{header}')
    stopped = {name: False for name, _ in matchers}
    for hashes in range(1, 9):
        cells = []
        for name, module in matchers:
            if stopped[name]:
                cells.append(f' {"not run":>12}')
                continue
            took, found = worst(module, hashes, args.words)
            assert found == 0
            cells.append(f' {took:>12.6f}')
            stopped[name] = took > args.old_limit / 10     # the next one is ~10x or more
        print(f'{hashes:>3}' + ''.join(cells))
    hit_key = '.'.join(['w'] * (args.words - 1) + ['z'])
    ex = exchange(current, [('q', '#.#.#.#.#.#.#.#.z')])
    assert len(ex.route(hit_key, None)) == 1     # and it does match when it should

    bindings, keys = celery_like()
    exchanges = [(name, exchange(module, bindings)) for name, module in matchers]
    for key in keys:
        results = {frozenset(map(repr, ex.route(key, None))) for _, ex in exchanges}
        assert len(results) == 1, key
    print(f'\nnormal case: {len(bindings)} bindings, {len(keys)} routing keys '
          '(microseconds per key, median of 5 rounds of best of 5, the matchers in turn)')
    print(f'{"":>22}{header}' + ''.join(f' {"after/" + name[:7]:>16}'
                                          for name, _ in matchers[:-1]))
    for label, cached, rounds in (('matcher (no cache)', False, 200),
                                  ('route() with cache', True, 5000)):
        samples = [[per_match(ex, keys, cached, rounds) for _, ex in exchanges]
                   for _ in range(5)]
        medians = [statistics.median(s[k] for s in samples) for k in range(len(exchanges))]
        ratios = [statistics.median(s[-1] / s[k] for s in samples)
                  for k in range(len(exchanges) - 1)]
        print(f'{label:>22}' + ''.join(f' {m:>12.2f}' for m in medians)
              + ''.join(f' {r:>16.2f}' for r in ratios))


if __name__ == '__main__':
    main()
