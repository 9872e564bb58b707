"""The bundled worker answers remote control as Celery's worker does: the
same command sent to a real ``celery worker`` and to ``leveret worker``
(same app, side by side) gets replies of the same shape (keys and types;
not values that differ by nature, such as pids), through the API and
through ``celery inspect``/``celery control``."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ..conftest import BrokerProcess
from ..processes import wait_until
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(celery_url(celery_broker), task_default_queue='unused',
                                  task_annotations={'add': {'rate_limit': '100/s'}})


@pytest.fixture(scope='module')
def workers(project: CeleryProject) -> dict[str, CeleryWorker]:
    celery = project.start_worker('-P', 'prefork', '-c', '2', '-E', '-Q', 'ctl-celery',
                                  name='ctl-celery', ready=False)
    leveret = project.start_leveret_worker('-P', 'prefork', '-c', '2', '-E', '-Q',
                                           'ctl-leveret', name='ctl-leveret', ready=False)
    celery.wait_ready()
    leveret.wait_ready()
    return {'celery': celery, 'leveret': leveret}


def shape(value: Any, key: str = '') -> Any:
    """The keys and value types of a reply, recursively (a list by its first item;
    ``total``, keyed by task names, as a mapping of names to numbers)."""
    if key == 'total' and isinstance(value, dict):
        return 'counts by task name'
    if isinstance(value, dict):
        return {key: shape(item, key) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return 'number'
    return type(value).__name__


def alike(a: Any, b: Any) -> bool:
    """Whether two shapes agree (an empty list agrees with any list)."""
    if isinstance(a, list) and isinstance(b, list):
        return not a or not b or alike(a[0], b[0])
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(alike(a[k], b[k]) for k in a)
    return a == b


def both(project: CeleryProject, workers: dict[str, CeleryWorker], command: str,
         **arguments: Any) -> tuple[Any, Any]:
    """The replies of Celery's worker and of the bundled one to ``command``."""
    nodes = [workers['celery'].nodename, workers['leveret'].nodename]
    replies = project.app.control.broadcast(command, arguments=arguments, destination=nodes,
                                            reply=True, timeout=10)
    merged = {node: reply for one in replies for node, reply in one.items()}
    assert set(merged) == set(nodes), f'{command}: {replies}'
    return merged[nodes[0]], merged[nodes[1]]


def same_shape(project, workers, command: str, **arguments: Any) -> tuple[Any, Any]:
    celery, leveret = both(project, workers, command, **arguments)
    assert alike(shape(leveret), shape(celery)), f'{command}:\n{celery}\n{leveret}'
    return celery, leveret


# Each command, with arguments that make its reply carry something.
COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ('ping', {}), ('stats', {}), ('registered', {}), ('active_queues', {}), ('revoked', {}),
    ('conf', {}), ('report', {}), ('clock', {}), ('memdump', {}),
    ('hello', {'from_node': 'someone@else', 'revoked': []}),
    ('heartbeat', {}), ('enable_events', {}), ('disable_events', {}), ('enable_events', {}),
    ('rate_limit', {'task_name': '@add', 'rate_limit': '10/m'}),
    ('rate_limit', {'task_name': '@add', 'rate_limit': 'often'}),
    ('rate_limit', {'task_name': 'no.such.task', 'rate_limit': '1/s'}),
    ('time_limit', {'task_name': '@add', 'soft': 10, 'hard': 20}),
    ('time_limit', {'task_name': 'no.such.task', 'soft': 1}),
    ('add_consumer', {'queue': 'ctl-extra'}), ('cancel_consumer', {'queue': 'ctl-extra'}),
    ('pool_grow', {'n': 1}), ('pool_shrink', {'n': 1}), ('autoscale', {'max': 3, 'min': 1}),
    ('revoke', {'task_id': 'no-such-id'}),
    ('revoke', {'task_id': ['a', 'b'], 'terminate': True, 'signal': 'SIGKILL'}),
    ('terminate', {'signal': 'SIGTERM', 'task_id': 'no-such-id'}),
    ('pool_restart', {}), ('no_such_command', {}), ('registered', {'taskinfoitems': ['acks_late']}),
    ('query_task', {'ids': ['no-such-id']}),
    # Not election: Celery's own worker crashes on it (gossip's on_elect_ack, IndexError).
]


@pytest.mark.parametrize('command,arguments', COMMANDS,
                         ids=[f'{c}-{i}' for i, (c, _) in enumerate(COMMANDS)])
def test_replies_have_the_shape_of_celerys(project, workers, command, arguments) -> None:
    arguments = {key: project.task_name(value[1:]) if isinstance(value, str) and
                 value.startswith('@') else value for key, value in arguments.items()}
    celery, leveret = same_shape(project, workers, command, **arguments)
    if isinstance(celery, dict) and set(celery) <= {'ok', 'error'} and \
            command not in ('report', 'enable_events', 'disable_events'):
        assert leveret == celery   # the same text, word for word


def test_memsample_gives_the_resident_memory(project, workers) -> None:
    # Celery's worker answers None without psutil; the bundled one always knows it.
    celery, leveret = both(project, workers, 'memsample')
    assert celery is None or isinstance(celery, str)
    assert isinstance(leveret, str) and leveret.endswith('MB')
    assert '- rss (sample):' in both(project, workers, 'memdump')[1]


def test_active_reserved_scheduled_and_query_task_with_tasks_in_them(project, workers,
                                                                   tmp_path) -> None:
    tasks = project.tasks
    gate = tmp_path / 'gate'
    sent = {}
    for kind in ('celery', 'leveret'):
        queue = f'ctl-{kind}'
        running = [tasks.report_then_wait.apply_async((f'{kind}-{i}', str(gate)), queue=queue)
                   for i in range(2)]
        waiting = tasks.report_then_sleep.apply_async((f'{kind}-waiting', 0.01), queue=queue)
        later = tasks.add.apply_async((1, 1), queue=queue, countdown=30)
        sent[kind] = running, waiting, later
    labels = {f'{kind}-{i}' for kind in sent for i in range(2)}
    project.wait_for_records(lambda records: labels <= {r['label'] for r in records})
    for command in ('active', 'reserved', 'scheduled'):
        celery, leveret = same_shape(project, workers, command)
        assert celery and leveret, command
    ids = [r.id for kind in sent for r in sent[kind][0]]
    celery, leveret = both(project, workers, 'query_task', ids=ids)
    assert len(celery) == len(leveret) == 2
    # Task id -> [state, info]: the same for a task of each worker, item by item.
    (c_state, c_info), (l_state, l_info) = next(iter(celery.values())), \
        next(iter(leveret.values()))
    assert c_state == l_state == 'active' and alike(shape(l_info), shape(c_info))
    same_shape(project, workers, 'active', safe=True)
    for kind in sent:
        sent[kind][2].revoke()
    same_shape(project, workers, 'revoked')
    gate.touch()
    for kind in sent:
        assert [r.get(timeout=30)['label'] for r in sent[kind][0]] == \
            [f'{kind}-0', f'{kind}-1']


def _cli(project: CeleryProject, node: str, *args: str) -> Any:
    """What ``celery <args> -d node --json`` printed for ``node``."""
    run = project.run(*args, '-d', node, '--timeout', '10', '--json', timeout=60)
    assert run.returncode in (0, 1), run.stderr
    replies = json.loads(run.stdout.strip().splitlines()[-1])
    if isinstance(replies, list):  # control: a list of {node: reply}
        (replies,) = replies
    return replies[node]


CLI = [
    ('inspect', 'ping'), ('inspect', 'stats'), ('inspect', 'active'), ('inspect', 'reserved'),
    ('inspect', 'scheduled'), ('inspect', 'registered'), ('inspect', 'registered', 'acks_late'),
    ('inspect', 'active_queues'), ('inspect', 'query_task', 'some-id'), ('inspect', 'revoked'),
    ('inspect', 'conf'), ('inspect', 'report'), ('inspect', 'clock'),
    ('inspect', 'memsample'), ('inspect', 'memdump'), ('control', 'heartbeat'),
    ('control', 'enable_events'),
    ('control', 'disable_events'), ('control', 'rate_limit', '@add', '10/m'),
    ('control', 'time_limit', '@add', '10', '20'), ('control', 'add_consumer', 'ctl-cli'),
    ('control', 'cancel_consumer', 'ctl-cli'), ('control', 'pool_grow', '1'),
    ('control', 'pool_shrink', '1'), ('control', 'autoscale', '3', '1'),
    ('control', 'revoke', 'some-id'), ('control', 'terminate', 'SIGTERM', 'some-id'),
    ('control', 'pool_restart'),
]


def test_the_celery_command_line_for_every_command(project, workers) -> None:
    def run(args: tuple[str, ...]) -> tuple[tuple[str, ...], Any, Any]:
        args = tuple(project.task_name(a[1:]) if a.startswith('@') else a for a in args)
        return (args, _cli(project, workers['celery'].nodename, *args),
                _cli(project, workers['leveret'].nodename, *args))

    with ThreadPoolExecutor(4) as pool:
        for args, celery, leveret in pool.map(run, CLI):
            if args[1] == 'memsample' and celery is None:  # Celery's, without psutil
                assert isinstance(leveret, str)
                continue
            assert alike(shape(leveret), shape(celery)), f'{args}:\n{celery}\n{leveret}'


def test_shutdown_stops_both(project, workers) -> None:
    # celery control shutdown: neither worker replies (so the command says so, exit 69).
    nodes = [w.nodename for w in workers.values()]
    run = project.run('control', 'shutdown', '-d', ','.join(nodes), '--timeout', '2')
    assert run.returncode == 69 and 'No nodes replied' in run.stderr, run.stderr
    for worker in workers.values():
        wait_until(lambda worker=worker: not worker.alive(), timeout=60)
    assert workers['leveret'].proc.returncode == 0
