"""Export stage: checkpoint to validated, self-describing ONNX.

- :mod:`.exporter` — ``export_model`` (the one export: float file, then its variants) and ``export_checkpoint``.
- :mod:`.batch` — many runs into a folder with a manifest and a report, through ``export_model``.
- :mod:`.kinds` — the registry: per training kind, its graph writer, validation reference, metadata
  builder and quality measure; :mod:`.sequence_classifier` and :mod:`.word_lm` register rnnedge's own.
- :mod:`.graphs` — the ONNX graphs, node by node; :mod:`.metadata` — the one place metadata enters a graph.
- :mod:`.validate` — parity judged against PyTorch in float64 (the exact result), typed mismatches;
  :mod:`.reference` builds PyTorch's side from a module, :mod:`.structure` reads a module's parts.
- :mod:`.variants` — int8 (:mod:`.quantize`) and fp16 (:mod:`.half`) files made and described in one place.
- :mod:`.quality` — a file's quality measured as ``rnnedge classify`` / ``perplexity`` measure it.
- :mod:`.files` — output paths checked, write failures as messages.
- :mod:`.user_module` — ``export_module``: a user's own ``nn.Module`` to a validated file (``rnnedge export
  --module``); :mod:`.module_batch` many of them from a manifest.

Nothing is imported here up front, so that ``rnnedge.export.quality`` stays importable without torch;
``rnnedge.export.export_module`` is loaded when first asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_module"]


def __getattr__(name: str) -> Any:
    if name == "export_module":
        from .user_module import export_module

        return export_module
    raise AttributeError(f"module 'rnnedge.export' has no attribute {name!r}")
