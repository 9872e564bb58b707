"""Finding the app named by ``-A``, with the rules of ``celery -A``.

``module:attr`` names the app exactly; ``module.attr`` is tried as an
attribute, then as a module. For a module, its ``app`` attribute, then its
``celery`` attribute, then (for a package) its ``celery`` submodule, then
any app instance it holds. The current directory is importable, as with
``celery``.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from ..app import App
from .tasks import is_celery_app


class AppNotFound(LookupError):
    pass


def _is_app(obj: Any) -> bool:
    return isinstance(obj, App) or is_celery_app(obj)


def _import(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(name)


def _symbol(spec: str) -> Any:
    if ':' in spec:
        module_name, _, attr = spec.partition(':')
        obj: Any = _import(module_name)
        for part in attr.split('.'):
            obj = getattr(obj, part)
        return obj
    try:
        return _import(spec)
    except ImportError:
        module_name, _, attr = spec.rpartition('.')
        if not module_name:
            raise
        return getattr(_import(module_name), attr)


def find_app(spec: str) -> Any:
    """The Leveret ``App`` or Celery app that ``-A spec`` names."""
    try:
        obj = _symbol(spec)
    except (ImportError, AttributeError) as exc:
        raise AppNotFound(f'cannot import {spec!r}: {exc}') from exc
    if _is_app(obj):
        return obj
    if isinstance(obj, ModuleType) and ':' not in spec:
        for attr in ('app', 'celery'):
            found = getattr(obj, attr, None)
            if _is_app(found):
                return found
        if getattr(obj, '__path__', None):
            try:
                return find_app(f'{spec}.celery')
            except AppNotFound:
                pass
        for value in vars(obj).values():
            if _is_app(value):
                return value
    raise AppNotFound(f'{spec!r} holds no Leveret App and no Celery app')
