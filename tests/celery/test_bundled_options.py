"""The options of ``celery worker`` in the bundled worker: same names, same
meaning; -B runs the app's beat_schedule; an option it does not have is one
line and exit status 2."""

from __future__ import annotations

import socket

import pytest

from ..conftest import BrokerProcess
from ..processes import wait_until
from .conftest import ProjectFactory
from .harness import CeleryProject, celery_url, queue_counts

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(
        celery_url(celery_broker), task_default_queue='options',
        beat_schedule={'report-often': {'task': 'report', 'schedule': 0.5, 'args': ['beat'],
                                        'options': {'queue': 'beat-q'}}})


def _stats(project: CeleryProject, node: str) -> dict:
    return project.app.control.inspect(destination=[node], timeout=10).stats()[node]


def _control(project: CeleryProject, node: str, command: str, **arguments) -> dict:
    (reply,) = project.app.control.broadcast(command, arguments=arguments, destination=[node],
                                             reply=True, timeout=10)
    return reply[node]


@pytest.mark.parametrize('args,text', [
    (['--detach'], '--detach is not supported'),
    (['-D'], '--detach is not supported'),
    (['--uid', 'nobody'], '--uid is not supported'),
    (['-P', 'gevent'], '-P gevent is not supported'),
    (['--no-such-option'], 'unrecognized arguments: --no-such-option'),
    (['-c', 'many'], "invalid int value: 'many'"),
    (['--autoscale', 'x'], '--autoscale'),
])
def test_an_option_it_does_not_have_is_one_line_and_exit_2(project, args, text) -> None:
    run = project.leveret(*args)
    assert run.returncode == 2
    assert run.stderr.count('\n') == 1 and text in run.stderr, run.stderr
    assert run.stderr.startswith('leveret worker: ')


def test_hostname_templates(project) -> None:
    host = socket.gethostname()
    name, _, domain = host.partition('.')
    worker = project.start_leveret_worker('-n', 'tpl-%n.%d@%h', '-c', '1', ready=False)
    # %n: the host name's first label, %d: its domain, %h: the host name.
    node = f'tpl-{name}.{domain}@{host}'
    worker.nodename = node
    worker.wait_ready()
    try:
        assert project.app.control.ping(destination=[node], timeout=10) == [
            {node: {'ok': 'pong'}}]
    finally:
        worker.stop()


def test_pidfile_and_logfile(project, tmp_path) -> None:
    pidfile, logfile = tmp_path / 'w.pid', tmp_path / 'w.log'
    worker = project.start_leveret_worker('--pidfile', str(pidfile), '--logfile', str(logfile),
                                          '-c', '1', '-Q', 'pidq', name='pid', ready=False)
    wait_until(lambda: logfile.exists() and 'pid@leveret ready.' in logfile.read_text())
    assert int(pidfile.read_text()) == worker.pid
    # A second worker on the same pidfile is refused while the first runs.
    refused = project.leveret('--pidfile', str(pidfile), '-Q', 'pidq')
    assert refused.returncode == 2 and 'running process' in refused.stderr
    assert project.tasks.add.apply_async((1, 2), queue='pidq').get(timeout=30) == 3
    assert worker.stop() == 0
    assert not pidfile.exists()
    assert 'succeeded' in logfile.read_text()


def test_max_tasks_per_child_replaces_the_process(project) -> None:
    worker = project.start_leveret_worker('-c', '1', '--max-tasks-per-child', '2', '-Q', 'maxq',
                                          name='maxtasks')
    try:
        pids = [project.tasks.report.apply_async((f'max-{i}',), queue='maxq')
                .get(timeout=30)['pid'] for i in range(4)]
        assert pids[0] == pids[1] != pids[2] == pids[3]
        assert _stats(project, worker.nodename)['pool']['max-tasks-per-child'] == 2
    finally:
        worker.stop()


def test_pool_grow_and_shrink(project) -> None:
    worker = project.start_leveret_worker('-c', '1', '--prefetch-multiplier', '2', '-Q',
                                          'growq', name='grow')
    node = worker.nodename
    try:
        assert _control(project, node, 'pool_grow', n=2) == {'ok': 'pool will grow'}
        stats = wait_until(lambda: (s := _stats(project, node))['pool']['max-concurrency'] == 3
                           and len(s['pool']['processes']) == 3 and s)
        assert stats['prefetch_count'] == 6
        assert _control(project, node, 'pool_shrink', n=1) == {'ok': 'pool will shrink'}
        stats = wait_until(lambda: (s := _stats(project, node))['pool']['max-concurrency'] == 2
                           and len(s['pool']['processes']) == 2 and s)
        assert stats['prefetch_count'] == 4
        assert project.tasks.add.apply_async((2, 2), queue='growq').get(timeout=30) == 4
    finally:
        worker.stop()


def test_autoscale_grows_with_the_work(project, tmp_path) -> None:
    worker = project.start_leveret_worker('--autoscale', '3,1', '-Q', 'scaleq', name='scale')
    node = worker.nodename
    gate = tmp_path / 'gate'
    try:
        stats = _stats(project, node)
        assert stats['autoscaler']['max'] == 3 and stats['autoscaler']['min'] == 1
        assert len(stats['pool']['processes']) == 1
        results = [project.tasks.report_then_wait.apply_async((f'scale-{i}', str(gate)),
                                                              queue='scaleq') for i in range(3)]
        # All three run at once: the pool grew to three processes.
        records = project.wait_for_records(
            lambda rs: sum(r['label'].startswith('scale-') for r in rs) == 3)
        assert len({r['pid'] for r in records if r['label'].startswith('scale-')}) == 3
        assert _control(project, node, 'pool_grow') == {
            'error': 'pool_grow is not supported with autoscale. '
                     'Adjust autoscale range instead.'}
        assert _control(project, node, 'autoscale', max=4, min=2) == {
            'ok': 'autoscale now max=4 min=2'}
        gate.touch()
        assert len([r.get(timeout=30) for r in results]) == 3
    finally:
        worker.stop()


def test_embedded_beat_runs_the_schedule(project) -> None:
    worker = project.start_leveret_worker('-B', '-Q', 'beat-q', '-s',
                                          str(project.directory / 'beat-schedule'), name='beat')
    try:
        project.wait_for_records(lambda rs: sum(r['label'] == 'beat' for r in rs) >= 2)
        assert 'beat: started' in worker.log()
    finally:
        assert worker.stop() == 0


def test_purge_discards_waiting_messages(project) -> None:
    for i in range(3):
        project.tasks.report.apply_async((f'purged-{i}',), queue='purgeq')
    wait_until(lambda: queue_counts(project.broker_url, 'purgeq')[0] == 3)
    worker = project.start_leveret_worker('--purge', '-Q', 'purgeq', name='purge')
    try:
        assert 'Discarded 3 messages from purgeq.' in worker.log()
        assert project.tasks.add.apply_async((3, 4), queue='purgeq').get(timeout=30) == 7
        assert not [r for r in project.records() if r['label'].startswith('purged-')]
    finally:
        worker.stop()


def test_mingle_brings_the_revoked_ids_of_the_other_workers(project) -> None:
    first = project.start_leveret_worker('-Q', 'mingleq', name='mingle-a')
    try:
        project.app.control.revoke('revoked-before-start', destination=[first.nodename],
                                   reply=True, timeout=10)
        # Mingle waits one second for answers (as Celery's): on a loaded machine
        # the other worker may answer too late, so up to three starts.
        for attempt in range(3):
            second = project.start_leveret_worker('-Q', 'mingleq', name=f'mingle-b{attempt}',
                                                  mingle=True)
            try:
                if 'mingle: sync with 1 nodes' not in second.log():
                    assert 'mingle: all alone' in second.log()
                    continue
                revoked = project.app.control.inspect(destination=[second.nodename],
                                                      timeout=10).revoked()
                assert 'revoked-before-start' in revoked[second.nodename]
                break
            finally:
                second.stop()
        else:
            pytest.fail('mingle found no other worker in three starts')
    finally:
        first.stop()


def test_pool_restart_replaces_the_processes(celery_broker: BrokerProcess,
                                             celery_project_factory: ProjectFactory) -> None:
    restartable = celery_project_factory(celery_url(celery_broker), task_default_queue='restart',
                                         worker_pool_restarts=True)
    worker = restartable.start_leveret_worker('-c', '2', name='restart')
    node = worker.nodename
    try:
        before = set(_stats(restartable, node)['pool']['processes'])
        assert _control(restartable, node, 'pool_restart') == {'ok': 'reload started'}
        after = wait_until(lambda: (p := set(_stats(restartable, node)['pool']['processes']))
                           and len(p) == 2 and not p & before and p)
        assert len(after) == 2
        assert restartable.tasks.add.delay(2, 3).get(timeout=30) == 5
    finally:
        worker.stop()


def test_max_memory_per_child_replaces_the_process(project) -> None:
    # 1 KiB: every process is past it after its first task.
    worker = project.start_leveret_worker('-c', '1', '--max-memory-per-child', '1', '-Q',
                                          'memq', name='maxmem')
    try:
        pids = [project.tasks.report.apply_async((f'mem-{i}',), queue='memq')
                .get(timeout=30)['pid'] for i in range(3)]
        assert len(set(pids)) == 3
        assert 'exits after its task' in worker.log()
    finally:
        worker.stop()


def test_time_limits_from_the_command_line(project) -> None:
    from celery.exceptions import TimeLimitExceeded

    worker = project.start_leveret_worker('-c', '1', '--time-limit', '1', '-Q', 'limitq',
                                          name='timelimit')
    try:
        stats = _stats(project, worker.nodename)
        assert stats['pool']['timeouts'] == [0, 1.0]
        with pytest.raises(TimeLimitExceeded):
            project.tasks.sleep_for.apply_async((30,), queue='limitq').get(timeout=30)
        assert project.tasks.add.apply_async((1, 1), queue='limitq').get(timeout=30) == 2
    finally:
        worker.stop()
