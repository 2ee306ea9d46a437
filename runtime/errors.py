"""The runtime's error types: the hierarchy lives in the leaf :mod:`rnnedge.errors`, importable alone."""

from rnnedge.errors import *  # noqa: F403
from rnnedge.errors import __all__ as __all__
