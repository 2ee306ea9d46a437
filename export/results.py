"""What an export produced: one file's result, and one model's outcome per variant in a batch or a single export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnedge.runtime.metadata import ModelMetadata

from .validate import ParityReport

__all__ = ["ExportResult", "Outcome"]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the file, its metadata and the parity report that let it through."""

    path: Path
    metadata: ModelMetadata
    parity: ParityReport
    size_bytes: int


@dataclass(frozen=True)
class Outcome:
    """One variant (``float32``, ``int8``, ``fp16``) of one model: written, kept, skipped or failed.

    ``status`` is ``ok`` (written now, ``result`` set), ``unchanged`` (an earlier file kept),
    ``skipped`` (this kind has no such variant; ``message`` says why) or ``failed``
    (``message`` holds the whole error).
    """

    variant: str
    path: Path
    status: str
    result: ExportResult | None = None
    message: str = ""
