"""Classifiers and language models exported from users' own modules, served by a real ``rnnedge serve``.

One server holds every briefly trained own-module file of ``own_modules.CASES`` that streams
causally and is not a tagger (``test_serve_tagger.py`` has those; serve refuses a bidirectional
file); several sessions of each converse at once, so their feeds are batched together, and every
reply's probabilities are the module's own ``forward``'s on everything that session was fed (within
1e-4): a classifier's for the prefix, a language model's next word.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_harness import Client, ServerProcess, running_server

torch = pytest.importorskip("torch", reason="export needs the train extra")

from own_modules import CASES, data_dir, forward_probs, module_case, vowels  # noqa: E402

from rnnedge.export import export_module  # noqa: E402
from rnnedge.runtime import load  # noqa: E402

ATOL = 1e-4
NAMES = ["lstm2-last", "lstm-lstm-last", "tied-word-lstm", "char-gru"]  # the causal classifiers, the language models
CHUNKS = (1, 3, 2, 5)
SESSIONS = 3  # per model, conversing at once


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    if data_dir() is None:
        pytest.skip("JapaneseVowels and PTB not found: set RNNEDGE_DATA")
    folder: Path = tmp_path_factory.mktemp("own")
    cases = {name: module_case(name, True) for name in NAMES}
    paths = [export_module(module, folder / f"{name}.onnx", **opts).path for name, (module, opts) in cases.items()]
    assert {name for name, (_, task, _) in CASES.items() if task != "tagger"} - set(NAMES) == {
        "time-major-bilstm-mean",
        "bilstm-bigru-mean",
    }  # a new causal case belongs in NAMES
    assert all(load(p).metadata.causal for p in paths)
    with running_server(paths, "--batch-window-ms", "20") as server:
        yield server, cases


def _inputs(options: dict[str, Any], session: int) -> np.ndarray:
    """What one session feeds: JapaneseVowels frames ``(T, 12)``, or token ids ``(T,)``."""
    if options["task"] == "language-model":
        return np.random.default_rng(session).integers(0, len(options["vocabulary"]), sum(CHUNKS))
    return next(s for s in vowels()[0][session * 7 :] if len(s) >= sum(CHUNKS))


def _converse(url: str, name: str, module: torch.nn.Module, options: dict[str, Any], session: int) -> int:
    """Feed one session in CHUNKS; each reply is the module's own result on all fed so far. Feeds checked."""
    x = _inputs(options, session)
    with Client(url) as c:
        c.ok({"op": "open", "model": name})
        start = 0
        for size in CHUNKS:
            reply = c.ok({"op": "feed", "input": x[start : start + size].tolist(), "probs": True})
            start += size
            want = forward_probs(module, x[None, :start], options)[0]
            np.testing.assert_allclose(np.array(reply["probs"]), want, atol=ATOL, rtol=0, err_msg=name)
    return len(CHUNKS)


def test_every_session_of_every_own_module_gets_the_modules_own_probabilities(
    served: tuple[ServerProcess, dict[str, Any]],
) -> None:
    server, cases = served
    errors: list[BaseException] = []
    checked: list[int] = []

    def run(name: str, session: int) -> None:
        try:
            module, options = cases[name]
            checked.append(_converse(server.url, name, module, options, session))
        except BaseException as e:  # reported below
            errors.append(e)

    def steps() -> float:
        return sum(server.metric("rnnedge_serve_steps_total", model=name) for name in NAMES)

    before = steps()
    threads = [threading.Thread(target=run, args=(n, s)) for n in NAMES for s in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    feeds = len(NAMES) * SESSIONS * len(CHUNKS)
    assert sum(checked) == feeds
    assert steps() - before < feeds  # sessions of one model were stepped together
