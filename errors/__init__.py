"""One small hierarchy for everything a user of rnnedge can get wrong.

Every error names what came in and what was expected. The hierarchy lives in the
runtime (the one package every install has) so that training and export raise the
same types without the runtime ever importing them.
"""

from __future__ import annotations

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
    "UnsupportedModuleError",
]


class RnnEdgeError(Exception):
    """Base class of every error rnnedge raises on purpose."""


class InputError(RnnEdgeError, ValueError):
    """An input array or text has the wrong dtype, shape, rank or values."""


class StateError(InputError):
    """A recurrent state does not belong to this model or this batch size."""


class TokenError(InputError):
    """A word or token id is outside the model's vocabulary."""


class ConfigError(RnnEdgeError, ValueError):
    """A setting (training configuration, session option) is out of range or inconsistent."""


class UnsupportedModuleError(ConfigError):
    """A user's PyTorch module holds something export cannot write exactly; the message names the submodule."""


class ModelFileError(RnnEdgeError):
    """A model file is missing, not ONNX, or lacks valid rnnedge metadata."""


class ProviderError(RnnEdgeError):
    """The requested onnxruntime execution provider is not available."""


class ModelClosedError(RnnEdgeError):
    """The model was closed; its streams can no longer run."""


class ConcurrentUseError(RnnEdgeError):
    """A stream was used from two threads at once (a stream is single-threaded)."""


class NotPicklableError(RnnEdgeError, TypeError):
    """An object holding a live session (a model, a stream) was pickled; pickle its state instead."""


class DataError(RnnEdgeError):
    """A dataset file is missing, truncated, or fails its checksum or format check."""


class CheckpointError(RnnEdgeError):
    """A checkpoint is unreadable, unsafe, or from a different model kind."""


SHOWN_MISMATCHES = 10


class ExportValidationError(RnnEdgeError):
    """The exported graph disagrees with PyTorch; nothing was written.

    ``mismatches`` lists every failed comparison with its largest difference; the message shows the
    first :data:`SHOWN_MISMATCHES` (one wrong layer fails every check after it: the first say where).
    """

    def __init__(self, message: str, mismatches: list[str]) -> None:
        lines = [f"  - {m}" for m in mismatches[:SHOWN_MISMATCHES]]
        if len(mismatches) > SHOWN_MISMATCHES:
            more = len(mismatches) - SHOWN_MISMATCHES
            lines.append(f"  ... and {more} more (the error's `mismatches` lists every one)")
        super().__init__(message + "\n" + "\n".join(lines))
        self.mismatches = mismatches


class MissingExtraError(RnnEdgeError):
    """A command needs an optional dependency group that is not installed."""


class BenchError(RnnEdgeError):
    """A benchmark's fresh interpreter failed; the message holds its last line of error output."""
