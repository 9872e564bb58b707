"""How the dashboard writes numbers: counts with thousands separators, bytes
in binary units, rates per second, durations and times an operator reads at
a glance.  Jinja filters (see :data:`FILTERS`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

DASH = '—'


def count(value: Any) -> str:
    """``1,234,567``; a missing value is a dash."""
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f'{value:,.1f}'
    return f'{int(value):,}'


def size(value: Any) -> str:
    """``512 B``, ``1.5 KiB``, ``23.4 MiB``."""
    if value is None:
        return DASH
    amount = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(amount) < 1024 or unit == 'TiB':
            return f'{int(amount)} {unit}' if unit == 'B' else f'{amount:.1f} {unit}'
        amount /= 1024
    return DASH  # pragma: no cover


def rate(value: Any) -> str:
    """``12.5/s`` (a rate of the API: a number or ``{"rate": x}``)."""
    if isinstance(value, dict):
        value = value.get('rate')
    if value is None:
        return DASH
    value = float(value)
    if value >= 1000:
        return f'{value:,.0f}/s'
    return f'{value:.1f}/s'


def duration(seconds: Any) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 10 s``, ``2 h 05 min``, ``3 d 4 h``."""
    if seconds is None:
        return DASH
    seconds = float(seconds)
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f'{seconds * 1000:.0f} ms'
    if seconds < 60:
        return f'{seconds:.1f} s'
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f'{minutes} min {secs} s'
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f'{hours} h {minutes:02d} min'
    days, hours = divmod(hours, 24)
    return f'{days} d {hours} h'


def when(timestamp: Any) -> str:
    """A Unix time as ``2026-12-02 01:23:45 UTC``."""
    if timestamp is None:
        return DASH
    moment = datetime.fromtimestamp(float(timestamp), tz=UTC)
    return moment.strftime('%Y-%m-%d %H:%M:%S UTC')


def until(timestamp: Any) -> str:
    """``in 4 min 10 s`` (or ``5 s ago``) from now."""
    if timestamp is None:
        return DASH
    delta = float(timestamp) - time.time()
    return f'in {duration(delta)}' if delta >= 0 else f'{duration(-delta)} ago'


def millis(value: Any) -> str:
    """A time in milliseconds since the epoch (the API's ``connected_at``)."""
    return DASH if value is None else when(float(value) / 1000)


def yes_no(value: Any) -> str:
    return 'yes' if value else 'no'


FILTERS = {'count': count, 'size': size, 'rate': rate, 'duration': duration,
           'when': when, 'until': until, 'millis': millis, 'yes_no': yes_no}


def sparkline(values: list[int], width: int = 120, height: int = 24) -> str:
    """The points of an SVG polyline for ``values`` (oldest first), scaled
    to the box, zero at the bottom."""
    if not values:
        return ''
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return ' '.join(f'{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}'
                    for i, v in enumerate(values))
