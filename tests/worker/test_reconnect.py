"""A broker restart: the worker and the client connect again by themselves."""

from __future__ import annotations

from leveret.client import App

from ..client_fixtures import leveret_worker

TIMEOUT = 60


def test_worker_and_client_carry_on_after_a_broker_restart(fresh_broker, unique, tmp_path):
    broker = fresh_broker.start()
    port = broker.port
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log', pool='threads')
    app = App(broker.url, publish_timeout=30)   # persistent tasks, confirmed publishes
    try:
        assert app.send_task('interop.add', (1, 2), queue=unique).get(TIMEOUT) == 3
        assert broker.stop() == 0
        worker.wait_for_log('connection to the broker lost')
        broker.start(port=port)
        worker.wait_for_log(r'connection to the broker lost; reconnecting')
        assert app.send_task('interop.add', (2, 3), queue=unique).get(TIMEOUT) == 5
        assert worker.alive()
    finally:
        app.close()
        worker.stop()
