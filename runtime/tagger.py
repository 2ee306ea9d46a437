"""Per-frame taggers: one label distribution per input frame (voice activity, events, per-step flags), causal.

Graph contract (see the metadata, section ``tagger``): input ``x`` float32 ``(batch, sequence,
features)`` and ``lengths`` int64 ``(batch,)``; outputs ``logits`` and ``probs`` float32 ``(batch,
sequence, classes)``, frame ``t``'s from the frames up to ``t``; state ``h`` (``c``) ``(layers,
batch, hidden)``. Raw frames are standardised per channel exactly as a classifier's rows are (this
face is a :class:`~rnnedge.runtime.classifier.ClassifierModel` in all it reads). A stream's
``feed`` returns one distribution per frame fed: ``(T, classes)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .checks import describe
from .classifier import ClassifierModel
from .errors import InputError, ModelFileError
from .kinds import register_kind
from .metadata import ModelMetadata, register_kind_check
from .model import STREAM_WINDOW
from .network import ModelConfig, Network

__all__ = ["TaggerModel"]


class TaggerModel(ClassifierModel):
    """A per-frame tagger: ``predict`` of whole sequences (ragged lists too), and streams fed frames as they arrive."""

    UNIT: ClassVar[str] = "frame"
    EXAMPLE_STEP: ClassVar[str] = "uint8 frame"
    EXAMPLE_BATCH: ClassVar[str] = "uint8 sequences of frames"

    @classmethod
    def network(cls, metadata: ModelMetadata) -> Network:
        """Stacked causal layers over ``input_size`` channels; the output layer runs at every frame."""
        cfg = ModelConfig(metadata)
        layers = cfg.layers(cfg.size("input_size"))
        return Network(layers, (layers[-1][1], cfg.size("num_classes")), head_every_step=True)

    def stream_input(self, rows: Any, *, strict: bool = False) -> np.ndarray:
        """A frame ``(F,)`` or frames ``(T, F)`` with ``T <= STREAM_WINDOW`` -> the graph input ``(1, T, F)``.

        A longer feed would run in windows, and a stream's step keeps its last window's outputs only:
        fine for one result per feed, not for one result per frame.
        """
        x = super().stream_input(rows, strict=strict)
        if x.shape[1] > STREAM_WINDOW:
            raise InputError(
                f"a tagger's stream takes at most {STREAM_WINDOW} frames per feed (one result each), got {x.shape[1]}"
            )
        return x

    def top_k(self, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` likeliest labels of one frame ``(C,)``, or of the last frame of a feed's result ``(T, C)``."""
        if isinstance(probs, np.ndarray) and probs.ndim == 2 and probs.shape[0] >= 1:
            probs = probs[-1]
        return super().top_k(probs, k)

    def predict(  # type: ignore[override]  # per frame: (N, T, classes), or a list for ragged sequences
        self, sequences: Any, batch_size: int = 256, *, lengths: Any = None
    ) -> np.ndarray | list[np.ndarray]:
        """Label probabilities for every frame of each sequence.

        ``sequences``: an array ``(N, T, features)`` -> ``(N, T, classes)``; or a list of ``(T_i,
        features)`` arrays of any lengths -> a list of ``(T_i, classes)`` arrays, run padded ``batch_size``
        sequences per onnxruntime call (each result is what that sequence alone gives).
        """
        if lengths is not None:
            raise InputError("a tagger's predict takes a list of sequences of their own lengths, not lengths")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(sequences, np.ndarray) and sequences.ndim == 3:
            if sequences.shape[0] == 0 or sequences.shape[1] == 0:
                raise InputError(f"sequences must hold at least one frame each, got {describe(sequences)}")
            x = self.preprocess(sequences)
            out = [
                self.run(x[lo : lo + batch_size], self.init_state(len(x[lo : lo + batch_size])))[0]["probs"]
                for lo in range(0, len(x), batch_size)
            ]
            return np.concatenate(out)
        if not isinstance(sequences, (list, tuple)) or not sequences:
            raise InputError(
                f"sequences must be an array of shape (N, T, {self.feature_size}) or a non-empty list of arrays of "
                f"shape (T, {self.feature_size}), got {describe(sequences)}"
            )
        frames = []
        for i, s in enumerate(sequences):
            if not isinstance(s, np.ndarray) or s.ndim != 2 or s.shape[0] == 0:
                raise InputError(
                    f"sequence {i} must be an array of shape (T, {self.feature_size}) with T >= 1, got {describe(s)}"
                )
            try:
                frames.append(self.preprocess(s))
            except InputError as e:
                raise InputError(f"sequence {i}: {e}") from None
        result: list[np.ndarray] = []
        for lo in range(0, len(frames), batch_size):
            part = frames[lo : lo + batch_size]
            steps = np.array([f.shape[0] for f in part], dtype=np.int64)
            x = np.zeros((len(part), int(steps.max()), self.feature_size), dtype=np.float32)  # (B, T_max, F)
            for j, f in enumerate(part):
                x[j, : f.shape[0]] = f
            probs = self.run(x, self.init_state(len(part)), steps)[0]["probs"]  # (B, T_max, C)
            result.extend(probs[j, :n] for j, n in enumerate(steps.tolist()))
        return result


@register_kind_check("tagger")
def _check_tagger(meta: ModelMetadata) -> None:
    """The tagger section's checks across fields: frames in, one distribution per frame out, causal."""
    labels, standardize = meta.labels, meta.standardize
    assert labels is not None and standardize is not None  # required fields
    shape = meta.input.shape
    if meta.input.dtype != "float32" or len(shape) != 3 or not isinstance(shape[2], int):
        raise ModelFileError(f"a tagger's input must be float32 (batch, sequence, features), got {meta.input}")
    if len(standardize.mean) != shape[2]:
        raise ModelFileError(
            f"metadata field standardize has {len(standardize.mean)} values per channel, the input has {shape[2]} "
            "features"
        )
    if not meta.causal:
        raise ModelFileError("a tagger's metadata must say causal: true (each frame's result from the frames up to it)")
    by_name = {o.name: o for o in meta.outputs}
    for name in ("logits", "probs"):
        out = by_name.get(name)
        if out is None or len(out.shape) != 3 or out.shape[2] != len(labels):
            raise ModelFileError(
                f"a tagger needs output {name} (batch, sequence, {len(labels)}) to match its labels, got {out}"
            )


register_kind("tagger", TaggerModel)
