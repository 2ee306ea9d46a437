"""One sampler (docs/metadata.md, section 5): the same words for a seed in Python, JavaScript (node) and serve."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from serve_harness import Client, running_server

from rnnedge.runtime import LanguageModel, load

JS = Path(__file__).resolve().parents[2] / "js"
PROMPT = "the company said"
WORDS = 30

_NODE_SCRIPT = """
import { load } from './src/node.js';
const [path, prompt, maxWords] = process.argv.slice(1);
const lm = await load(path);
const words = [];
for await (const w of lm.generate(prompt, { maxWords: Number(maxWords), topK: 50, seed: 1 })) words.push(w);
await lm.dispose();
console.log(JSON.stringify(words));
"""


def _javascript_words(model: Path) -> list[str]:
    if shutil.which("node") is None or not (JS / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("the JavaScript runtime needs node and js/node_modules (make js/node_modules/.installed)")
    out = subprocess.run(
        ["node", "--input-type=module", "-e", _NODE_SCRIPT, str(model), PROMPT, str(WORDS)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    words: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return words


def test_generate_top_k_50_seed_1_gives_the_same_words_in_python_javascript_and_serve(tiny_lm_onnx: Path) -> None:
    with load(tiny_lm_onnx, threads=1) as lm:
        assert isinstance(lm, LanguageModel)
        python = list(lm.generate(PROMPT, WORDS, top_k=50, seed=1))
        assert list(lm.generate(PROMPT, WORDS, top_k=50, seed=1)) == python
        assert list(lm.generate(PROMPT, WORDS, top_k=50, seed=2)) != python  # the seed matters
        assert len(set(python)) > 5  # sampled, not one greedy word over and over
    with running_server([tiny_lm_onnx], "--batch-window-ms", "1") as server, Client(server.url) as c:
        c.ok({"op": "open", "model": tiny_lm_onnx.stem})
        c.send({"op": "generate", "prompt": PROMPT, "max_words": WORDS, "top_k": 50, "seed": 1})
        while (reply := c.recv())["op"] == "word":
            pass
        assert reply["op"] == "generated", reply
        served = reply["words"]
    assert served == python
    assert _javascript_words(tiny_lm_onnx) == python
