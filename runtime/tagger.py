"""Per-frame taggers: one label distribution per input frame (voice activity, events, per-step flags), causal.

Graph contract (see the metadata): input ``x`` float32 ``(batch, sequence, features)`` and
``lengths`` int64 ``(batch,)``; outputs ``logits`` and ``probs`` float32 ``(batch, sequence,
classes)``, frame ``t``'s from the frames up to ``t``; state ``h`` (``c``) ``(layers, batch,
hidden)``. Raw frames are normalised per channel as ``standardize`` says, exactly as a
classifier's rows are (:class:`~rnnedge.runtime.classifier.ClassifierCodec` does both). A
stream's ``feed`` returns one distribution per frame fed: ``(T, classes)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .classifier import ClassifierCodec
from .engine import STREAM_WINDOW, Engine, describe
from .errors import InputError, ModelFileError
from .kinds import register_kind
from .metadata import ModelMetadata, register_kind_check
from .model import Model
from .stream import Stream

__all__ = ["TaggerCodec", "TaggerModel"]


class TaggerCodec(ClassifierCodec):
    """Frames in as a classifier's rows; a stream's result is its chunk's ``probs``, ``(T, classes)`` per stream.

    A feed holds at most :data:`STREAM_WINDOW` frames: a longer one would run in windows, and a
    stream's step returns its last window's outputs only (fine for a prefix's one result, not for
    one result per frame).
    """

    def to_graph(self, rows: Any) -> np.ndarray:
        x = super().to_graph(rows)
        if x.shape[1] > STREAM_WINDOW:
            raise InputError(
                f"a tagger's stream takes at most {STREAM_WINDOW} frames per feed (one result each), got {x.shape[1]}"
            )
        return x


class TaggerModel(Model):
    """A per-frame tagger: ``predict`` of whole sequences, and streams fed frames as they arrive."""

    def __init__(self, engine: Engine, *, state_on_device: bool | None = None) -> None:
        super().__init__(engine, state_on_device=state_on_device)
        assert isinstance(engine.codec, TaggerCodec)
        self.codec: TaggerCodec = engine.codec

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names, indexed like the last axis of the probabilities."""
        assert self.metadata.labels is not None
        return self.metadata.labels

    @property
    def feature_size(self) -> int:
        """Values per frame (the channels)."""
        return self.codec.feature_size

    def preprocess(self, frames: Any) -> np.ndarray:
        """Raw frames ``(..., features)`` of any real dtype -> normalised float32."""
        return self.codec.preprocess(frames)

    def predict(self, sequences: Any, batch_size: int = 256) -> np.ndarray | list[np.ndarray]:
        """Label probabilities for every frame of each sequence.

        ``sequences``: an array ``(N, T, features)`` -> ``(N, T, classes)``; or a list of
        ``(T_i, features)`` arrays of any lengths -> a list of ``(T_i, classes)`` arrays, run padded
        ``batch_size`` sequences per onnxruntime call (each result is what that sequence alone gives).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be an int >= 1, got {batch_size!r}")
        engine = self.engine
        if isinstance(sequences, np.ndarray) and sequences.ndim == 3:
            if sequences.shape[0] == 0 or sequences.shape[1] == 0:
                raise InputError(f"sequences must hold at least one frame each, got {describe(sequences)}")
            x = self.preprocess(sequences)
            out = []
            for lo in range(0, len(x), batch_size):
                chunk = x[lo : lo + batch_size]
                out.append(engine.run(chunk, engine.init_state(len(chunk)))[0]["probs"])
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
            lengths = np.array([f.shape[0] for f in part], dtype=np.int64)
            x = np.zeros((len(part), int(lengths.max()), self.feature_size), dtype=np.float32)  # (B, T_max, F)
            for j, f in enumerate(part):
                x[j, : f.shape[0]] = f
            probs = engine.run(x, engine.init_state(len(part)), lengths)[0]["probs"]  # (B, T_max, C)
            result.extend(probs[j, :n] for j, n in enumerate(lengths.tolist()))
        return result

    def stream(self) -> Stream:
        """A stream fed frames as they arrive: ``feed`` of a frame ``(F,)`` or frames ``(T, F)`` -> ``(T, classes)``."""
        return Stream(self.engine, state_on_device=self.state_on_device)


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


register_kind("tagger", TaggerCodec, TaggerModel)
