"""The dashboard over HTTP, on a broker in this process: logging in with the
broker's users and tags, what each may see and do, the form token, and a
broken template answering 500 while the broker goes on."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aio_pika
import aiohttp

from leveret.broker.config import Settings
from leveret.broker.dashboard import app as dashboard_app
from leveret.broker.server import Broker
from leveret.broker.store.memory import MemoryStore

Scenario = Callable[[Broker, str], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario) -> None:
    async def main() -> None:
        settings = Settings(port=0, prometheus_enabled=False, management_port=0,
                            data_dir=tmp_path)
        broker = Broker(settings, store=MemoryStore())
        await broker.start()
        try:
            broker.users.add('viewer', 'viewer-pw', tags=['management'])
            broker.users.add('nobody', 'nobody-pw', tags=[])
            await scenario(broker, f'http://127.0.0.1:{broker.management.port}')
        finally:
            await broker.stop()

    asyncio.run(main())


async def logged_in(base: str, user: str, password: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f'{base}/login', data={'username': user, 'password': password,
                                                   'next': '/'}) as response:
        assert response.status == 200, await response.text()
        assert str(response.url).endswith('/')
    return session


async def page(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


def test_pages_need_a_login_and_a_management_user(tmp_path):
    async def scenario(broker: Broker, base: str) -> None:
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f'{base}/queues', allow_redirects=False) as response:
                assert response.status == 303
                where = urlsplit(response.headers['Location'])
                assert (where.path, parse_qs(where.query)) == ('/login', {'next': ['/queues']})
            for user, password in (('nobody', 'nobody-pw'), ('guest', 'wrong')):
                async with anonymous.post(f'{base}/login', data={
                        'username': user, 'password': password}) as response:
                    assert response.status == 401
                    assert 'Login failed' in await response.text()
        session = await logged_in(base, 'guest', 'guest')
        async with session:
            for path in ('/', '/queues', '/exchanges', '/connections', '/users',
                         '/celery/tasks', '/celery/eta', '/celery/workers'):
                status, html = await page(session, base + path)
                assert status == 200, (path, html[:2000])
                assert '<script src="/static/htmx.min.js">' in html
            status, _ = await page(session, base + '/static/htmx.min.js')
            assert status == 200
            # The API itself still answers on the same port.
            basic = {'Authorization': 'Basic Z3Vlc3Q6Z3Vlc3Q='}     # guest:guest
            async with session.get(f'{base}/api/overview', headers=basic) as response:
                assert response.status == 200

    run(tmp_path, scenario)


def test_a_management_user_sees_its_pages_but_not_the_users(tmp_path):
    async def scenario(broker: Broker, base: str) -> None:
        session = await logged_in(base, 'viewer', 'viewer-pw')
        async with session:
            status, html = await page(session, base + '/')
            assert status == 200 and 'href="/users"' not in html
            status, html = await page(session, base + '/users')
            assert status == 401 and 'Not administrator user' in html
            status, html = await page(session, base + '/queue?vhost=%2F&name=no-such-queue')
            assert status == 404

    run(tmp_path, scenario)


def test_a_form_without_the_sessions_token_changes_nothing(tmp_path):
    async def scenario(broker: Broker, base: str) -> None:
        vhost = broker.vhosts['/']
        queue = vhost.declare_queue('keep-me', None)
        session = await logged_in(base, 'guest', 'guest')
        async with session:
            async with session.post(f'{base}/queue/delete', data={
                    'vhost': '/', 'name': 'keep-me', 'csrf': 'forged'}) as response:
                assert response.status == 403
            assert vhost.queues.get('keep-me') is queue
            status, html = await page(session, base + '/queue/delete?vhost=%2F&name=keep-me')
            assert status == 200 and 'Delete queue <b>keep-me</b>' in html
            token = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            async with session.post(f'{base}/queue/delete', data={
                    'vhost': '/', 'name': 'keep-me', 'csrf': token}) as response:
                assert response.status == 200
                assert "Deleted queue &#39;keep-me&#39;" in await response.text()
            assert 'keep-me' not in vhost.queues

    run(tmp_path, scenario)


def test_a_broken_template_answers_500_and_the_broker_goes_on(tmp_path, monkeypatch,
                                                               caplog):
    templates = tmp_path / 'dashboard'
    shutil.copytree(dashboard_app.HERE / 'templates', templates / 'templates')
    shutil.copytree(dashboard_app.HERE / 'static', templates / 'static')
    (templates / 'templates' / 'queues.html').write_text(
        "{% extends 'base.html' %}{% block live %}{{ no_such_value.at_all }}{% endblock %}")
    monkeypatch.setattr(dashboard_app, 'HERE', templates)

    async def scenario(broker: Broker, base: str) -> None:
        session = await logged_in(base, 'guest', 'guest')
        async with session:
            status, html = await page(session, base + '/queues')
            assert status == 500 and 'broker log' in html
            status, _ = await page(session, base + '/')
            assert status == 200
        url = f'amqp://guest:guest@127.0.0.1:{broker.port}/'
        async with await aio_pika.connect(url) as conn:
            channel = await conn.channel()
            queue = await channel.declare_queue('after-the-500')
            await channel.default_exchange.publish(aio_pika.Message(b'alive'), 'after-the-500')
            message = await queue.get(timeout=5)
            assert message.body == b'alive'

    with caplog.at_level(logging.ERROR, logger='leveret.broker.dashboard.app'):
        run(tmp_path / 'data', scenario)
    errors: list[Any] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and 'dashboard: GET /queues failed' in errors[0].getMessage()
    assert 'no_such_value' in str(errors[0].exc_info[1])



def rows(html: str, attribute: str) -> list[str]:
    """The values of ``attribute`` on the table rows of a page, in order."""
    return re.findall(rf'<tr {attribute}="([^"]*)"', html)


def test_a_busy_broker_reads_in_numbers_and_words(tmp_path):
    """Every page of a broker with traffic: the objects a client made, their
    numbers with units, sorted and paged as asked, and no raw structure."""
    async def scenario(broker: Broker, base: str) -> None:
        url = f'amqp://guest:guest@127.0.0.1:{broker.port}/?name=orders-service'
        async with await aio_pika.connect(url) as conn:
            channel = await conn.channel()
            await channel.set_qos(prefetch_count=3)
            for i in range(25):
                queue = await channel.declare_queue(f'busy.{i:02d}')
                for _ in range(i):
                    await channel.default_exchange.publish(aio_pika.Message(b'x'), queue.name)
            held = await channel.declare_queue('busy.held', durable=True)
            await held.bind('amq.direct', 'held-key')
            for i in range(12):
                await channel.default_exchange.publish(aio_pika.Message(
                    f'order {i}'.encode(), content_type='text/plain',
                    headers={'x-tenant': 'acme'}), 'busy.held')
            async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                pass                                # never acked: the channel holds 3

            await held.consume(hold, consumer_tag='holder')
            session = await logged_in(base, 'guest', 'guest')
            async with session:
                async def settled() -> str:
                    for _ in range(200):
                        status, html = await page(
                            session, base + '/queue?vhost=%2F&name=busy.held')
                        assert status == 200, html[:2000]
                        if '<dd class="num" id="unacked">3</dd>' in html:
                            return html
                        await asyncio.sleep(0.05)
                    raise AssertionError(html)

                detail = await settled()
                assert '<dd class="num" id="ready">9</dd>' in detail
                assert 'holder' in detail and 'manual' in detail      # the consumer
                assert 'amq.direct' in detail and 'held-key' in detail    # the binding

                async with session.post(f'{base}/queue', data={
                        'vhost': '/', 'name': 'busy.held', 'count': '2',
                        'ackmode': 'ack_requeue_true', 'csrf': token(detail)}) as response:
                    got = await response.text()
                assert response.status == 200, got[:2000]
                assert 'order 3' in got and 'order 4' in got
                assert '<th>header x-tenant</th><td>acme</td>' in got
                assert '<th>content_type</th><td>text/plain</td>' in got

                query = '/queues?name=busy.&sort=messages&sort_reverse=true&page_size=20'
                status, html = await page(session, base + query)
                assert status == 200
                assert rows(html, 'data-queue')[:2] == ['busy.24', 'busy.23']
                assert len(rows(html, 'data-queue')) == 20 and 'page 1 of 2' in html
                status, html = await page(session, base + query + '&page=2')
                assert rows(html, 'data-queue')[-1] == 'busy.00'

                pages = {'/queue': detail, '/queue (get)': got}
                for path in ('/', '/exchanges', '/connections', '/users'):
                    status, pages[path] = await page(session, base + path)
                    assert status == 200, (path, pages[path][:2000])
                overview = pages['/']
                assert '<dd class="num" id="total-ready">' in overview
                assert re.search(r'<dd class="num" id="total-ready">3[0-9]{2}</dd>', overview)
                assert re.search(r'[0-9.,]+ [KM]?i?B used', overview)     # memory, with units
                assert 'amq.topic' in pages['/exchanges'] and 'topic' in pages['/exchanges']
                connections = pages['/connections']
                assert 'orders-service' in connections and 'Close…' in connections
                assert re.search(r'[0-9.]+ [KM]?i?B/s', connections)       # bytes per second
                users = pages['/users']
                assert '<span class="tag">administrator</span>' in users
                assert '<td>guest</td><td>/</td><td><code>.*</code></td>' in users
                for path, html in pages.items():
                    assert not re.search(r"\{'|\[\{|\{&#39;|\[&#39;", html), path

    run(tmp_path, scenario)


def token(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_an_operator_closes_a_connection_and_the_client_is_told_why(tmp_path):
    async def scenario(broker: Broker, base: str) -> None:
        url = f'amqp://guest:guest@127.0.0.1:{broker.port}/'
        conn = await aio_pika.connect(url)
        closed: list[BaseException | None] = []
        conn.close_callbacks.add(lambda _sender, exc: closed.append(exc))
        name = next(iter(broker.sessions.connections)).name
        session = await logged_in(base, 'guest', 'guest')
        async with session:
            status, html = await page(session, base + '/connections')
            assert status == 200 and name.replace('>', '&gt;') in html
            status, html = await page(session, base + '/connection/close?' + urlencode(
                {'name': name}))
            assert status == 200 and 'Close the connection' in html
            async with session.post(f'{base}/connection/close', data={
                    'name': name, 'csrf': token(html)}) as response:
                assert response.status == 200
                assert 'Closed connection' in await response.text()
            for _ in range(200):
                if closed:
                    break
                await asyncio.sleep(0.05)
            assert closed and 'Closed from the dashboard by guest' in str(closed[0])
            assert not broker.sessions.connections
            status, html = await page(session, base + '/connections')
            assert 'No connections.' in html
        await conn.close()

    run(tmp_path, scenario)


def test_depth_charts_and_task_rates_come_from_the_samples(tmp_path):
    """The sampler's rings: a queue's depth over the samples drawn on the
    queues page, a task's published rate between the last two samples."""
    async def scenario(broker: Broker, base: str) -> None:
        history = broker.history
        history.stop()                          # the test takes the samples
        url = f'amqp://guest:guest@127.0.0.1:{broker.port}/'
        async with await aio_pika.connect(url) as conn:
            channel = await conn.channel()
            await channel.declare_queue('sampled')

            async def publish(count: int) -> None:
                for _ in range(count):
                    await channel.default_exchange.publish(
                        aio_pika.Message(b'{}', headers={'task': 'proj.add', 'id': 'x'}),
                        'sampled')
                await channel.declare_queue('sampled', passive=True)    # all routed

            await publish(3)
            await history.sample(now=100.0)
            await publish(4)
            await history.sample(now=105.0)
            assert history.depth_history('/', 'sampled') == [3, 7]
            rates = history.task_rates(('/', 'sampled', 'proj.add'))
            assert rates == {'published': 0.8, 'delivered': 0.0, 'acked': 0.0,
                             'rejected': 0.0}
            session = await logged_in(base, 'guest', 'guest')
            async with session:
                status, html = await page(session, base + '/queues')
                assert status == 200
                assert 'messages over the last 5 s: now 7, at most 7' in html
                status, html = await page(session, base + '/celery/tasks')
                row = html.split('data-task="proj.add"', 1)[1].split('</tr>', 1)[0]
                assert '0.8/s' in row
            await channel.queue_delete('sampled')
            await history.sample(now=110.0)
            assert history.depth_history('/', 'sampled') == []

    run(tmp_path, scenario)
