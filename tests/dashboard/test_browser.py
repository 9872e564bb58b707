"""The dashboard in a real browser: Debian's Chromium driven by Playwright
(``executable_path``: Playwright's own browser download is not used).

Log in, see a queue that the test filled, purge it through the page and
watch the count fall to 0, see a Celery task name with the count of tasks a
real Celery worker holds with an ETA.  The page must load nothing from
outside the broker and log no error.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from ..celery.harness import CeleryProject, celery_url
from ..conftest import BrokerProcess

pytestmark = pytest.mark.celery

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'


@pytest.fixture(scope='module')
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess,
                                                                      CeleryProject]]:
    base = tmp_path_factory.mktemp('dashboard')
    broker = BrokerProcess(base / 'data', base / 'broker.log').start()
    project = CeleryProject(base / 'app', celery_url(broker), {'task_default_queue': 'work'})
    try:
        project.start_worker('-P', 'solo', '-Q', 'work', name='dash')
        yield broker, project
    finally:
        project.close()
        broker.stop()


@pytest.fixture(scope='module')
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail('chromium is not installed (apt-get install chromium; .ci/run does)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=['--no-sandbox'])
        yield chromium
        chromium.close()


def test_an_operator_purges_a_queue_and_sees_the_tasks_a_worker_holds(site, browser):
    from playwright.sync_api import expect

    broker, project = site
    base = f'http://127.0.0.1:{broker.management_port}'
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare('dash.orders', durable=True)
        for i in range(37):
            ch.basic_publish('', 'dash.orders', f'order {i}'.encode())
    held = [project.tasks.add.apply_async((i, i), countdown=600) for i in range(4)]
    assert len(held) == 4
    task_name = project.task_name('add')

    page = browser.new_page()
    problems: list[str] = []
    outside: list[str] = []
    page.on('console', lambda m: problems.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda exc: problems.append(str(exc)))
    page.on('response', lambda r: problems.append(f'{r.status} {r.url}')
            if r.status >= 400 else None)

    def only_the_broker(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route('**/*', only_the_broker)

    page.goto(base + '/queues')
    expect(page.locator('form.login-box')).to_be_visible()     # sent to log in first
    page.fill('input[name=username]', 'guest')
    page.fill('input[name=password]', 'guest')
    page.click('button[type=submit]')
    expect(page.locator('h1')).to_have_text('Queues')

    row = page.locator('tr[data-queue="dash.orders"]')
    expect(row.locator('td.ready')).to_have_text('37')
    row.locator('a', has_text='dash.orders').click()
    expect(page.locator('#ready')).to_have_text('37')

    page.click('text=Purge messages…')
    expect(page.locator('form.confirm')).to_contain_text('Remove the 37 ready messages')
    page.click('button:has-text("Purge 37 messages")')
    expect(page.locator('.notice')).to_have_text('Purged 37 ready messages.')
    expect(page.locator('#ready')).to_have_text('0')
    page.click('nav >> text=Queues')
    expect(page.locator('tr[data-queue="dash.orders"] td.ready')).to_have_text('0')

    page.click('nav >> text=Celery tasks')
    task = page.locator(f'tr[data-task="{task_name}"][data-queue="work"]')
    expect(task.locator('td.eta-held')).to_have_text('4')
    page.click('nav >> text=ETA-held')
    for result in held:
        expect(page.locator('body')).to_contain_text(result.id)
    page.click('nav >> text=Workers')
    expect(page.locator('tr[data-worker="dash@leveret"]')).to_contain_text('work')

    assert not outside, outside
    assert not problems, problems
