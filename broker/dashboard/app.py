"""The web dashboard: server-rendered pages at ``/`` of the management port.

Every page asks the management API's own handlers (``broker/http/``) for
its data, as the logged-in user: the same permissions, the same paging and
sorting, the same numbers as ``/api``.  Jinja2 renders them (templates in
``templates/``); the vendored htmx (``static/``) refreshes the live part of
a page every few seconds, and the page loads nothing from elsewhere.

Actions that change something (purge, delete, close a connection) go
through a confirmation page and a POST that carries the session's form
token.  A view or template that fails logs the error with its traceback and
answers 500 for that request only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from leveret import __version__

from ..auth import User
from ..http import (
    celery,
    channels,
    connections,
    exchanges,
    nodes,
    overview,
    permissions,
    queues,
    users,
)
from ..http.auth import is_admin, is_monitor
from ..http.errors import ApiError
from ..http.ports import BrokerPort
from ..http.reply import Reply
from ..http.request import Call
from .format import FILTERS, sparkline
from .login import COOKIE, Logins, Session

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: Seconds between two refreshes of a page's live part.
REFRESH_SECONDS = 5
PAGE_SIZES = (20, 50, 100, 500)


@dataclass
class Page:
    """What a view hands back: a template and what it shows."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Visit:
    """One request of a logged-in user."""

    request: web.Request
    broker: BrokerPort
    user: User
    session: Session
    form: dict[str, str]

    async def api(self, handler: Callable[[Call], Awaitable[Any]], method: str = 'GET',
                  query: dict[str, str] | None = None, body: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None, **params: str) -> Any:
        """Call a management API handler as this user; its data (or ApiError)."""
        call = Call(self.broker, method, self.user, params, query or {}, headers or {},
                    json.dumps(body).encode() if body is not None else b'')
        result = await handler(call)
        return result.data if isinstance(result, Reply) else result

    def arg(self, name: str, default: str = '') -> str:
        return self.request.query.get(name, default)


View = Callable[[Visit], Awaitable['Page | web.StreamResponse']]


def url(path: str, **query: Any) -> str:
    """``path`` with ``query`` (None values left out)."""
    pairs = {k: v for k, v in query.items() if v is not None and v != ''}
    return f'{path}?{urlencode(pairs)}' if pairs else path


def list_query(visit: Visit, default_sort: str = 'name') -> dict[str, str]:
    """The API's list options from the page's query: paged, sorted, filtered."""
    size = visit.arg('page_size', '50')
    return {'page': visit.arg('page', '1'),
            'page_size': size if size.isdigit() and int(size) in PAGE_SIZES else '50',
            'sort': visit.arg('sort', default_sort),
            'sort_reverse': visit.arg('sort_reverse', 'false'),
            **({'name': visit.arg('name')} if visit.arg('name') else {})}


async def paged(visit: Visit, handler: Callable[[Call], Awaitable[Any]],
                default_sort: str = 'name', **params: str) -> dict[str, Any]:
    query = list_query(visit, default_sort)
    try:
        return dict(await visit.api(handler, query=query, **params))
    except ApiError as exc:
        if exc.error != 'page_out_of_range':
            raise
        query['page'] = '1'
        return dict(await visit.api(handler, query=query, **params))


# --- the views -------------------------------------------------------------------
async def overview_page(visit: Visit) -> Page:
    data = await visit.api(overview.get_overview)
    node_info = None
    if is_monitor(visit.user):
        node_info = await visit.api(nodes.get_node, name=visit.broker.node_name)
    tasks = await visit.api(celery.get_tasks)
    workers = await visit.api(celery.get_workers)
    celery_totals = {
        'names': len({t['name'] for t in tasks}),
        'waiting': sum(t['waiting'] for t in tasks),
        'eta_held': sum(t['eta_held'] for t in tasks),
        'workers': len(workers),
    }
    return Page('overview.html', {'o': data, 'node_info': node_info, 'celery': celery_totals})


async def queues_page(visit: Visit) -> Page:
    data = await paged(visit, queues.list_queues)
    history = visit.broker.history
    for item in data['items']:
        item['depths'] = history.depth_history(item['vhost'], item['name'])
    return Page('queues.html', {'data': data})


def _queue_params(visit: Visit) -> tuple[str, str]:
    vhost, name = visit.arg('vhost', visit.form.get('vhost', '')), visit.arg(
        'name', visit.form.get('name', ''))
    if not vhost or not name:
        raise ApiError(400, 'bad_request', 'which queue? (vhost and name)')
    return vhost, name


async def queue_page(visit: Visit, messages: list[dict[str, Any]] | None = None) -> Page:
    vhost, name = _queue_params(visit)
    queue = await visit.api(queues.get_queue, vhost=vhost, name=name)
    bindings = await visit.api(queues.queue_bindings, vhost=vhost, name=name)
    depths = visit.broker.history.depth_history(vhost, name)
    return Page('queue.html', {'q': queue, 'bindings': bindings, 'depths': depths,
                               'messages': messages, 'notice': visit.arg('notice')})


async def queue_get(visit: Visit) -> Page:
    vhost, name = _queue_params(visit)
    count = visit.form.get('count', '1')
    ackmode = visit.form.get('ackmode', 'ack_requeue_true')
    messages = await visit.api(queues.get_messages, 'POST', vhost=vhost, name=name, body={
        'count': count, 'ackmode': ackmode, 'encoding': 'auto', 'truncate': 50000})
    return await queue_page(visit, messages)


async def queue_confirm(visit: Visit) -> Page:
    vhost, name = _queue_params(visit)
    action = visit.request.match_info['action']
    queue = await visit.api(queues.get_queue, vhost=vhost, name=name)
    return Page('confirm_queue.html', {'q': queue, 'action': action})


async def queue_act(visit: Visit) -> web.StreamResponse:
    vhost, name = _queue_params(visit)
    action = visit.request.match_info['action']
    if action == 'purge':
        before = (await visit.api(queues.get_queue, vhost=vhost, name=name))['messages_ready']
        await visit.api(queues.purge, 'DELETE', vhost=vhost, name=name)
        raise web.HTTPSeeOther(url('/queue', vhost=vhost, name=name,
                                   notice=f'Purged {before:,} ready messages.'))
    await visit.api(queues.delete_queue, 'DELETE', vhost=vhost, name=name)
    raise web.HTTPSeeOther(url('/queues', notice=f"Deleted queue '{name}' in vhost '{vhost}'."))


async def exchanges_page(visit: Visit) -> Page:
    return Page('exchanges.html', {'data': await paged(visit, exchanges.list_exchanges)})


async def connections_page(visit: Visit) -> Page:
    data = await paged(visit, connections.list_connections)
    chans = await paged(visit, channels.list_channels)
    return Page('connections.html', {'data': data, 'channels': chans,
                                     'notice': visit.arg('notice')})


async def connection_confirm(visit: Visit) -> Page:
    name = visit.arg('name')
    conn = await visit.api(connections.get_connection, name=name)
    return Page('confirm_connection.html', {'c': conn})


async def connection_close(visit: Visit) -> web.StreamResponse:
    name = visit.form.get('name', '')
    await visit.api(connections.close_connection, 'DELETE', name=name, headers={
        'X-Reason': f'Closed from the dashboard by {visit.user.name}'})
    raise web.HTTPSeeOther(url('/connections', notice=f"Closed connection '{name}'."))


async def users_page(visit: Visit) -> Page:
    found = await visit.api(users.list_users)
    perms = await visit.api(permissions.list_permissions)
    return Page('users.html', {'users': found, 'permissions': perms})


async def celery_tasks_page(visit: Visit) -> Page:
    data = await paged(visit, celery.get_tasks, default_sort='waiting')
    return Page('celery_tasks.html', {'data': data})


async def celery_eta_page(visit: Visit) -> Page:
    data = await paged(visit, celery.get_eta_held, default_sort='eta')
    return Page('celery_eta.html', {'data': data})


async def celery_workers_page(visit: Visit) -> Page:
    return Page('celery_workers.html', {'workers': await visit.api(celery.get_workers)})


#: path -> (GET view, POST view, whether the page refreshes itself)
PAGES: dict[str, tuple[View | None, View | None, bool]] = {
    '/': (overview_page, None, True),
    '/queues': (queues_page, None, True),
    '/queue': (queue_page, queue_get, True),
    '/queue/{action:purge|delete}': (queue_confirm, queue_act, False),
    '/exchanges': (exchanges_page, None, True),
    '/connections': (connections_page, None, True),
    '/connection/close': (connection_confirm, connection_close, False),
    '/users': (users_page, None, True),
    '/celery/tasks': (celery_tasks_page, None, True),
    '/celery/eta': (celery_eta_page, None, True),
    '/celery/workers': (celery_workers_page, None, True),
}

NAV = [('/', 'Overview'), ('/queues', 'Queues'), ('/exchanges', 'Exchanges'),
       ('/connections', 'Connections'), ('/users', 'Users'),
       ('/celery/tasks', 'Celery tasks'), ('/celery/eta', 'ETA-held'),
       ('/celery/workers', 'Workers')]


class Dashboard:
    def __init__(self, broker: BrokerPort) -> None:
        self.broker = broker
        self.logins = Logins(broker.users)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / 'templates'),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters.update(FILTERS)
        self.templates.globals.update(url=url, quote=quote, sparkline=sparkline,
                                      version=__version__, nav=NAV,
                                      refresh_seconds=REFRESH_SECONDS, page_sizes=PAGE_SIZES)

    def install(self, app: web.Application) -> None:
        """Add the dashboard's routes to the management API's application."""
        app.router.add_static('/static/', HERE / 'static', name='static')
        app.router.add_get('/login', self._login_form)
        app.router.add_post('/login', self._login)
        app.router.add_post('/logout', self._logout)
        for path, (get_view, post_view, live) in PAGES.items():
            if get_view is not None:
                app.router.add_get(path, self._handler(get_view, live))
            if post_view is not None:
                app.router.add_post(path, self._handler(post_view, live))

    # --- rendering --------------------------------------------------------------
    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(template).render(**context)
        return web.Response(status=status, text=html, content_type='text/html',
                            headers={'Cache-Control': 'no-store',
                                     'Content-Security-Policy': "default-src 'self'",
                                     'X-Frame-Options': 'DENY'})

    def _handler(self, view: View, live: bool) -> Callable[[web.Request], Awaitable[Any]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            found = self.logins.find(request.cookies.get(COOKIE))
            if found is None:
                raise web.HTTPSeeOther(url('/login', next=request.path_qs))
            session, user = found
            form: dict[str, str] = {}
            if request.method == 'POST':
                posted = await request.post()
                form = {k: str(v) for k, v in posted.items()}
                if form.get('csrf') != session.csrf:
                    return self._error_page(request, user, session, 403,
                                            'This form has expired: reload the page.')
            visit = Visit(request, self.broker, user, session, form)
            try:
                result = await view(visit)
                if isinstance(result, web.StreamResponse):
                    return result
                live_url = request.path_qs if request.method == 'GET' else url(
                    '/queue', vhost=form.get('vhost'), name=form.get('name'))
                return self.render(result.template, result.status, **self._common(
                    request, user, session, live_url if live else None), **result.context)
            except web.HTTPException:
                raise
            except ApiError as exc:
                return self._error_page(request, user, session, exc.status,
                                        _reason(exc))
            except Exception:
                log.exception('dashboard: %s %s failed', request.method, request.path_qs)
                return _plain_500()
        return handle

    def _common(self, request: web.Request, user: User, session: Session,
                live_url: str | None) -> dict[str, Any]:
        return {'user': user, 'admin': is_admin(user), 'csrf': session.csrf,
                'path': request.path, 'query': dict(request.query), 'live_url': live_url,
                'node': self.broker.node_name}

    def _error_page(self, request: web.Request, user: User, session: Session, status: int,
                    reason: str) -> web.Response:
        try:
            return self.render('error.html', status, reason=reason, code=status,
                               **self._common(request, user, session, None))
        except Exception:
            log.exception('dashboard: the error page failed')
            return _plain_500()

    # --- logging in ---------------------------------------------------------------
    async def _login_form(self, request: web.Request) -> web.Response:
        try:
            return self.render('login.html', next=request.query.get('next', '/'), error=None,
                               node=self.broker.node_name)
        except Exception:
            log.exception('dashboard: the login page failed')
            return _plain_500()

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        target = str(form.get('next') or '/')
        if not target.startswith('/') or target.startswith('//'):
            target = '/'
        found = self.logins.log_in(str(form.get('username', '')), str(form.get('password', '')))
        if found is None:
            return self.render('login.html', 401, next=target, node=self.broker.node_name,
                               error='Login failed: wrong user name or password, or not a '
                                     'management user.')
        token, _session = found
        response = web.HTTPSeeOther(target)
        response.set_cookie(COOKIE, token, httponly=True, samesite='Strict', path='/')
        raise response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        self.logins.log_out(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther('/login')
        response.del_cookie(COOKIE, path='/')
        raise response


def _reason(exc: ApiError) -> str:
    reason = exc.reason
    if isinstance(reason, str) and reason:
        return f'{exc.status}: {reason}'
    return f'{exc.status}: {exc.error or "the broker refused"}'


def _plain_500() -> web.Response:
    return web.Response(status=500, content_type='text/html', text=(
        '<!doctype html><title>Error</title><h1>500: this page failed</h1>'
        '<p>The error is in the broker log. The broker itself goes on.</p>'))


def install(broker: BrokerPort) -> Callable[[web.Application], None]:
    """What the management server calls to add the dashboard to its app."""
    return Dashboard(broker).install
