"""Language models of words or characters: next-token streams, generation and perplexity.

Graph contract (see the metadata): input ``tokens`` int64 ``(batch, sequence)`` of ids
into ``metadata.vocabulary``; state ``h``/``c`` float32 ``(layers, batch, hidden)``;
outputs ``logits`` float32 ``(batch, sequence, vocab)``, the unnormalised scores of the
next token at every position, and ``next_probs`` ``(batch, vocab)``, the softmax of the
last. Text is split as the metadata's ``tokens`` says
(:func:`rnnedge.data.text.tokenize`, the function training used): words on whitespace
or every character; unknown tokens are
``<unk>`` (or a :class:`TokenError` in strict mode), and for perplexity every line ends
with ``<eos>``. A character stream fed text turns each line break into ``<eos>``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from rnnedge.data.text import join_tokens, read_text_file, tokenize, tokenize_lines

from .checks import SMALL, describe
from .errors import InputError, ModelFileError, TokenError
from .kinds import register_kind
from .metadata import ModelMetadata
from .model import Model
from .network import ModelConfig, Network
from .sampling import Pcg32, check_sampling, sample
from .state import State

__all__ = ["LanguageModel", "tokenize", "tokenize_lines"]

_MAX_SHOWN = 5


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """float64 log-probabilities over the last axis, stable for large scores."""
    z: np.ndarray = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return out


class LanguageModel(Model):
    """A recurrent language model of words or characters (``tokens``): streams, generation, perplexity."""

    STREAM_OUTPUTS: ClassVar[tuple[str, ...] | None] = ("next_probs",)
    DEVICE_STATE: ClassVar[bool] = True
    UNIT: ClassVar[str] = "token"
    WORKLOAD: ClassVar[tuple[int, int]] = (20, 35)  # PTB's 20 sequences of 35 tokens
    EXAMPLE_STEP: ClassVar[str] = "id → probs"
    EXAMPLE_BATCH: ClassVar[str] = "ids"

    def read_metadata(self) -> None:
        """The vocabulary, its special tokens and how text is split (all required)."""
        metadata = self.metadata
        vocab = metadata.vocabulary
        if vocab is None or metadata.unk_id is None or metadata.eos_id is None:
            raise ModelFileError(f"{self.path}: a language model file must say its vocabulary, unk_id and eos_id")
        self.vocabulary: tuple[str, ...] = vocab
        self.unk_id: int = metadata.unk_id
        self.eos_id: int = metadata.eos_id
        self.tokens: str = metadata.tokens or "words"  # how text is split: "words" or "chars"
        self._index = {w: i for i, w in enumerate(vocab)}

    @property
    def vocab_size(self) -> int:
        """Number of words (or characters) the model predicts over."""
        return len(self.vocabulary)

    @property
    def names(self) -> tuple[str, ...]:
        """A result's entries are the vocabulary's tokens."""
        return self.vocabulary

    @classmethod
    def network(cls, metadata: ModelMetadata) -> Network:
        """``num_layers`` layers of ``hidden_size`` over embeddings of the same size; the head at every token."""
        cfg = ModelConfig(metadata)
        # rnnedge's own language models embed in hidden_size; a user's module says its input_size
        first = cfg.size("input_size") if "input_size" in cfg.raw else cfg.size("hidden_size")
        layers = cfg.layers(first, forward_only=True)
        return Network(layers, (layers[-1][1], cfg.size("vocab_size")), head_every_step=True)

    @classmethod
    def info_fields(cls, metadata: ModelMetadata) -> dict[str, Any]:
        """How text is split, the vocabulary's size and its special tokens."""
        fields: dict[str, Any] = {}
        vocab = metadata.vocabulary
        if vocab:
            fields["tokens"] = metadata.tokens or "words"
            fields["vocab_size"] = len(vocab)
            if metadata.unk_id is not None:
                fields["unk_id"] = metadata.unk_id
                fields["unk"] = vocab[metadata.unk_id]
            if metadata.eos_id is not None:
                fields["eos_id"] = metadata.eos_id
                fields["eos"] = vocab[metadata.eos_id]
        return fields

    # -- words <-> ids -------------------------------------------------------------------
    def encode(self, words: str | Sequence[str], strict: bool = False) -> np.ndarray:
        """Text (split as the model's ``tokens`` says) or a list of tokens -> int64 ids ``(T,)``.

        A word model splits a string on whitespace; a character model takes every character,
        each line break as ``<eos>``. Unknown tokens become ``<unk>``; with ``strict=True`` they
        raise :class:`TokenError`.
        """
        unit = self.tokens[:-1]
        if isinstance(words, str):
            words = tokenize(words, self.tokens, self.vocabulary[self.eos_id], close_lines=False)
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise InputError(f"{self.tokens} must be a string or a list of strings, got {describe(words)}")
        if not words:
            raise InputError(f"no {self.tokens} given: expected at least one {unit}")
        ids = [self._index.get(w, -1) for w in words]
        unknown = [w for w, i in zip(words, ids, strict=True) if i < 0]
        if unknown and strict:
            shown = ", ".join(repr(w) for w in list(dict.fromkeys(unknown))[:_MAX_SHOWN])
            raise TokenError(
                f"{len(unknown)} {unit}(s) not in the {self.vocab_size}-{unit} vocabulary: {shown}; "
                "strict mode refuses them (without it they read as <unk>)"
            )
        return np.array([i if i >= 0 else self.unk_id for i in ids], dtype=np.int64)

    def check_ids(self, ids: Any) -> np.ndarray:
        """Token ids (a list of ints or an integer array ``(T,)``) -> int64 ``(T,)``, each in ``[0, vocab)``."""
        if isinstance(ids, (list, tuple)):
            if not all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in ids):
                if any(isinstance(i, (list, tuple)) for i in ids):
                    raise InputError(f"token ids must be a flat list of ints (T,), got a nested list {ids!r:.60}")
                raise InputError(f"token ids must be ints, got {[type(i).__name__ for i in ids][:_MAX_SHOWN]}")
            outside = [int(i) for i in ids if not 0 <= i < self.vocab_size]  # before int64 could overflow
            if outside:
                raise TokenError(f"token ids must be in [0, {self.vocab_size}), got {outside[:_MAX_SHOWN]}")
            ids = np.array(ids, dtype=np.int64)
        if not isinstance(ids, np.ndarray) or ids.dtype.kind not in "iu":
            raise InputError(f"token ids must be a list of ints or an integer array (T,), got {describe(ids)}")
        if ids.ndim == 2 and ids.shape[0] == 1:
            ids = ids[0]
        if ids.ndim != 1:
            raise InputError(f"token ids must have shape (T,), got {describe(ids)}")
        if ids.size == 0:
            raise InputError("no token ids given: expected at least one")
        self._check_range(ids)
        return np.ascontiguousarray(ids, dtype=np.int64)

    def _check_range(self, ids: np.ndarray) -> None:
        if ids.size <= SMALL:  # a streaming step: plain Python beats two numpy reductions
            values = ids.ravel().tolist()
            lo, hi = min(values), max(values)
        else:
            lo, hi = ids.min(), ids.max()
        if lo < 0 or hi >= self.vocab_size:
            shown = [int(i) for i in ids[(ids < 0) | (ids >= self.vocab_size)][:_MAX_SHOWN]]
            raise TokenError(f"token ids must be in [0, {self.vocab_size}), got {shown}")

    def decode(self, ids: Any) -> list[str]:
        """int ids ``(T,)`` -> words."""
        return [self.vocabulary[i] for i in self.check_ids(ids)]

    def to_ids(self, x: Any, strict: bool = False) -> np.ndarray:
        """Words, text or ids -> checked int64 ids ``(T,)``."""
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":  # ids: what a streaming loop feeds
            return self.check_ids(x)
        if isinstance(x, str) or (isinstance(x, (list, tuple)) and x and all(isinstance(w, str) for w in x)):
            return self.encode(x, strict=strict)
        if isinstance(x, np.ndarray) and x.dtype.kind == "U":
            return self.encode([str(w) for w in x.ravel()], strict=strict)
        return self.check_ids(x)

    def check_graph_input(self, x: np.ndarray) -> None:
        """Token ids must be inside the vocabulary."""
        self._check_range(x)

    def stream_input(self, x: Any, *, strict: bool = False) -> np.ndarray:
        """Words, text or ids -> the graph input ``(1, T)`` int64."""
        return self.to_ids(x, strict=strict)[None]  # (1, T)

    def stack_inputs(self, items: Sequence[Any]) -> np.ndarray | None:
        """Ids of one length for every stream (lists of ints or integer arrays) -> ``(N, T)`` int64."""
        try:
            ids = np.array(items)
        except (ValueError, TypeError, OverflowError):  # ragged, or not numbers
            return None
        if ids.dtype.kind not in "iu" or ids.ndim != 2 or ids.size == 0:
            return None
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            return None  # one by one: the error names the ids
        return ids.astype(np.int64, copy=False)

    def example_steps(self, rng: np.random.Generator, length: int) -> list[Any]:
        """``length`` random token ids, one ``(1,)`` array per step."""
        ids = rng.integers(0, self.vocab_size, size=length).astype(np.int64)
        return [ids[t : t + 1] for t in range(length)]

    def example_batch(self, rng: np.random.Generator, batch: int, length: int) -> Any:
        """``batch`` random sequences of ``length`` token ids ``(batch, length)``."""
        return rng.integers(0, self.vocab_size, size=(batch, length)).astype(np.int64)

    def predict(self, sequences: Any, batch_size: int = 256) -> np.ndarray:
        """Next-token probabilities ``(N, vocab)`` after each of ``N`` sequences of ids, each from the start.

        ``sequences``: ids ``(N, T)``, or a list of sequences (ids, words or text) of any lengths;
        each row is what a stream fed that sequence returns.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
            rows = [self.check_input(sequences)]
        elif isinstance(sequences, (list, tuple)) and sequences:
            rows = [self.to_ids(s)[None] for s in sequences]
        else:
            raise InputError(
                f"sequences must be ids (N, T) or a non-empty list of sequences, got {describe(sequences)}"
            )
        ids = [r[i] for r in rows for i in range(r.shape[0])]
        result = np.empty((len(ids), self.vocab_size), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, r in enumerate(ids):
            by_length.setdefault(r.shape[0], []).append(i)
        for members in by_length.values():
            for lo in range(0, len(members), batch_size):
                idx = members[lo : lo + batch_size]
                x = np.stack([ids[i] for i in idx])
                result[idx] = self.run(x, self.init_state(len(idx)))[0]["next_probs"]
        return result

    def tokenize(self, text: str, *, close_lines: bool = True) -> list[str]:
        """``text`` split as this model splits it (:func:`rnnedge.data.text.tokenize`; files close every line)."""
        if not isinstance(text, str):
            raise InputError(f"text must be a str, got {describe(text)}")
        tokens: list[str] = tokenize(text, self.tokens, self.vocabulary[self.eos_id], close_lines=close_lines)
        return tokens

    def join(self, tokens: Sequence[str]) -> str:
        """Tokens back to text: words with spaces between, characters as they are; ``<eos>`` is a line break."""
        text: str = join_tokens(list(tokens), self.tokens, self.vocabulary[self.eos_id])
        return text

    # -- tasks -------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str | Sequence[str] | None = None,
        max_words: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        strict: bool = False,
    ) -> Iterator[str]:
        """Yield up to ``max_words`` sampled tokens (words, or characters), one as soon as it is produced.

        :meth:`join` makes text of them. Starts after ``prompt`` (``None``: at the start of a sentence,
        i.e. after ``<eos>``).
        Deterministic for a given ``seed`` (in ``[0, 2**64)``), and the same tokens as the JavaScript
        runtime and ``rnnedge serve`` give for it (:mod:`.sampling`). ``top_k`` samples among the ``k``
        likeliest tokens only; ``temperature`` < 1 sharpens the distribution, > 1 flattens it.
        """
        ids = np.array([self.eos_id], np.int64) if prompt is None else self.to_ids(prompt, strict=strict)
        if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 0:
            raise InputError(f"max_words must be an int >= 0, got {max_words!r}")
        temperature, top_k = check_sampling(temperature, top_k, self.vocab_size)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64
        ):
            raise InputError(f"seed must be None or an int >= 0 and < 2**64, got {seed!r}")
        return self._generate(ids, max_words, temperature, top_k, Pcg32(None if seed is None else int(seed)))

    def _generate(
        self, ids: np.ndarray, max_words: int, temperature: float, top_k: int | None, rng: Pcg32
    ) -> Iterator[str]:
        """The sampler of docs/metadata.md (section 5) on each step's ``next_probs``."""
        state = self.init_state(1)
        tokens = ids[None]  # (1, T)
        for _ in range(max_words):
            outputs, state = self.run(tokens, state)
            choice = sample(outputs["next_probs"][0], temperature, top_k, rng)  # next_probs (1, V)
            yield self.vocabulary[choice]
            tokens = np.array([[choice]], np.int64)

    def perplexity(
        self,
        text: str | os.PathLike[str],
        *,
        window: int = 100,
        strict: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> float:
        """Perplexity of a text (``str``) or a text file (a ``Path``), state carried, batch 1.

        Split as the model's ``tokens`` says, every line closed by ``<eos>`` (:meth:`tokenize`);
        ``math.log2`` of it is bits per token (per character, for a character model). Every token
        after the first is scored,
        as the reference's test evaluation does, ``window`` tokens per onnxruntime run.
        ``progress(done, total)`` is called after each window.
        """
        if isinstance(text, os.PathLike):
            text = read_text_file(text, InputError)  # training's reader: a bad byte's line and column
        if not isinstance(text, str):
            raise InputError(f"text must be a str or a path to a text file, got {describe(text)}")
        if "\n" not in text and len(text) < 4096 and os.path.isfile(text.strip()):
            raise InputError(f"{text!r} names a file, but a str is scored as text: pass pathlib.Path({text!r})")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError(f"window must be an int >= 1, got {window!r}")
        words = self.tokenize(text)
        if len(words) < 2:
            raise InputError(f"perplexity needs at least 2 tokens (a {self.tokens[:-1]} and <eos>), got {len(words)}")
        return self.perplexity_of_ids(self.encode(words, strict=strict), window=window, progress=progress)

    def perplexity_of_ids(
        self, ids: Any, *, window: int = 100, progress: Callable[[int, int], None] | None = None
    ) -> float:
        """Perplexity of ids ``(N,)``: ``exp`` of the mean negative log-likelihood of ``ids[1:]``."""
        ids = self.check_ids(ids)
        if ids.size < 2:
            raise InputError(f"perplexity needs at least 2 token ids, got {ids.size}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError(f"window must be an int >= 1, got {window!r}")
        inputs, targets = ids[:-1], ids[1:]
        state: State = self.init_state(1)
        nll = 0.0
        for lo in range(0, len(inputs), window):
            x = inputs[None, lo : lo + window]  # (1, T)
            outputs, state = self.run(x, state)
            logp = _log_softmax(outputs["logits"][0])  # (T, V)
            nll -= float(logp[np.arange(x.shape[1]), targets[lo : lo + window]].sum())
            if progress is not None:
                progress(min(lo + window, len(inputs)), len(inputs))
        return math.exp(nll / len(targets))


register_kind("language_model", LanguageModel)
