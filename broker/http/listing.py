"""List options, as RabbitMQ's API takes them.

``page`` / ``page_size`` (default 100, at most 500) answer with
``{items, page, page_count, page_size, filtered_count, item_count,
total_count}``; ``name`` (a substring, or with ``use_regex=true`` a regular
expression searched in the name) filters only a paged list, as RabbitMQ;
``sort`` (a dotted field) and ``sort_reverse`` order any list (by default
lists come sorted by vhost, then name); ``columns`` keeps only the dotted
fields named, keys in alphabetical order, missing ones left out.

Lists can be long (10,000 queues): the objects are filtered, sorted and
paged before they are shaped whenever the order needs no shaped field, and
shaping gives the loop back every :data:`CHUNK` objects, so a large answer
never holds the event loop for long.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
#: Objects shaped between two yields to the event loop.
CHUNK = 100


@dataclass
class ListOptions:
    page: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    name: str | None = None
    use_regex: bool = False
    sort: str | None = None
    sort_reverse: bool = False
    columns: list[str] | None = None

    @classmethod
    def parse(cls, query: dict[str, str]) -> ListOptions:
        options = cls()
        try:
            if 'page' in query:
                options.page = int(query['page'])
            if 'page_size' in query:
                options.page_size = int(query['page_size'])
        except ValueError:
            raise bad_request('Pagination parameters are invalid') from None
        if options.page is not None and (options.page < 1 or options.page_size < 1
                                         or options.page_size > MAX_PAGE_SIZE):
            raise ApiError(400, 'invalid_pagination_parameters',
                           f'Invalid pagination parameters: page number {options.page}, '
                           f'page size {options.page_size}')
        options.name = query.get('name') or None
        options.use_regex = query.get('use_regex', '').lower() == 'true'
        options.sort = query.get('sort') or None
        options.sort_reverse = query.get('sort_reverse', '').lower() == 'true'
        if query.get('columns'):
            options.columns = [c for c in query['columns'].split(',') if c]
        return options

    def name_filter(self) -> Callable[[str], bool] | None:
        if self.page is None or self.name is None:
            return None
        if self.use_regex:
            try:
                pattern = re.compile(self.name)
            except re.error:
                raise bad_request(f'invalid regular expression {self.name!r}') from None
            return lambda name: pattern.search(name) is not None
        needle = self.name.lower()
        return lambda name: needle in name.lower()


def dig(item: Any, path: str) -> Any:
    for part in path.split('.'):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def _sort_key(value: Any) -> tuple[int, Any]:
    # Missing values first, then numbers, then text: never a TypeError.
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def select_columns(item: dict[str, Any], columns: Sequence[str],
                   whole_top_level: bool = False) -> dict[str, Any]:
    """Only the fields named (dotted paths pruned to their leaf), sorted keys.

    ``whole_top_level`` keeps each named top-level field whole, as the
    overview does."""
    out: dict[str, Any] = {}
    for column in columns:
        parts = column.split('.')
        if whole_top_level:
            parts = parts[:1]
        source: Any = item
        for part in parts:
            if not isinstance(source, dict) or part not in source:
                break
            source = source[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = source
    return _sorted(out)


def _sorted(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(v) if isinstance(v, dict) else v for k, v in sorted(value.items())}


async def shape_all(objects: Sequence[Any], shape: Callable[[Any], dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    out = []
    for i, obj in enumerate(objects):
        if i and i % CHUNK == 0:
            await asyncio.sleep(0)
        out.append(shape(obj))
    return out


async def answer(objects: Sequence[Any], shape: Callable[[Any], dict[str, Any]],
                 options: ListOptions, name_of: Callable[[Any], str] = lambda o: o.name,
                 order_of: Callable[[Any], Any] | None = None) -> Any:
    """The list (or the page) of ``objects`` shaped, as the options say.

    ``objects`` come in their default order; ``order_of`` gives a sort key
    for ``sort`` fields that need no shaping (``name``)."""
    total = len(objects)
    keep = options.name_filter()
    chosen = [o for o in objects if keep(name_of(o))] if keep is not None else list(objects)
    sort = options.sort
    if sort is not None and sort == 'name':
        chosen.sort(key=lambda o: _sort_key(name_of(o)), reverse=options.sort_reverse)
        sort = None
    elif sort is None and options.sort_reverse:
        chosen.reverse()
    if sort is None:
        if options.page is not None:
            page_objects = _page(chosen, options)
            items = await shape_all(page_objects, shape)
        else:
            items = await shape_all(chosen, shape)
    else:
        shaped = await shape_all(chosen, shape)
        shaped.sort(key=lambda item: _sort_key(dig(item, sort)), reverse=options.sort_reverse)
        items = _page(shaped, options) if options.page is not None else shaped
    if options.columns:
        items = [select_columns(item, options.columns) for item in items]
    if options.page is None:
        return items
    filtered = len(chosen)
    return {
        'filtered_count': filtered,
        'item_count': len(items),
        'items': items,
        'page': options.page,
        'page_count': max(1, math.ceil(filtered / options.page_size)) if filtered else 0,
        'page_size': options.page_size,
        'total_count': total,
    }


def _page(items: list[Any], options: ListOptions) -> list[Any]:
    assert options.page is not None
    start = (options.page - 1) * options.page_size
    if start and start >= len(items):
        raise ApiError(400, 'page_out_of_range',
                       f'Page out of range, page: {options.page} page size: '
                       f'{options.page_size}, len: {len(items)}')
    return items[start:start + options.page_size]
