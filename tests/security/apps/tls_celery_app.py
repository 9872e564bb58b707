"""A Celery app whose broker is reached over TLS: the URL and Celery's
broker_use_ssl come from the environment (TLS_BROKER_URL, TLS_BROKER_USE_SSL
as JSON, with cert_reqs given by name)."""

import json
import os
import ssl

from celery import Celery

app = Celery('tls_celery_app', broker=os.environ['TLS_BROKER_URL'], backend='rpc://')
app.conf.broker_connection_retry_on_startup = True
_options = json.loads(os.environ.get('TLS_BROKER_USE_SSL', 'null'))
if isinstance(_options, dict) and 'cert_reqs' in _options:
    _options['cert_reqs'] = getattr(ssl, _options['cert_reqs'])
if _options is not None:
    app.conf.broker_use_ssl = _options


@app.task(name='tls.add')
def add(x, y):
    return x + y
