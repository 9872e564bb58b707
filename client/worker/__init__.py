"""The bundled worker: ``leveret worker -A module[:app]``."""

from .cli import main
from .lifecycle import Worker
from .options import WorkerOptions

__all__ = ['Worker', 'WorkerOptions', 'main']
