"""The runtime's error types: the hierarchy lives in the leaf :mod:`rnnedge.errors`, importable alone."""

from rnnedge.errors import (
    BenchError as BenchError,
)
from rnnedge.errors import (
    CheckpointError as CheckpointError,
)
from rnnedge.errors import (
    ConcurrentUseError as ConcurrentUseError,
)
from rnnedge.errors import (
    ConfigError as ConfigError,
)
from rnnedge.errors import (
    DataError as DataError,
)
from rnnedge.errors import (
    ExportValidationError as ExportValidationError,
)
from rnnedge.errors import (
    InputError as InputError,
)
from rnnedge.errors import (
    MissingExtraError as MissingExtraError,
)
from rnnedge.errors import (
    ModelClosedError as ModelClosedError,
)
from rnnedge.errors import (
    ModelFileError as ModelFileError,
)
from rnnedge.errors import (
    NotPicklableError as NotPicklableError,
)
from rnnedge.errors import (
    ProviderError as ProviderError,
)
from rnnedge.errors import (
    RnnEdgeError as RnnEdgeError,
)
from rnnedge.errors import (
    StateError as StateError,
)
from rnnedge.errors import (
    TokenError as TokenError,
)

__all__ = [
    "BenchError",
    "CheckpointError",
    "ConcurrentUseError",
    "ConfigError",
    "DataError",
    "ExportValidationError",
    "InputError",
    "MissingExtraError",
    "ModelClosedError",
    "ModelFileError",
    "NotPicklableError",
    "ProviderError",
    "RnnEdgeError",
    "StateError",
    "TokenError",
]
