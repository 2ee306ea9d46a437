"""The shared corpus of the file format: metadata that must be read, metadata that must be refused (with
the error each must give), strings and the tokens they split into, and sampler draws.

Python builds it from real exported files (:func:`metadata_cases`); ``test_contract_corpus.py``
runs the Python runtime and the JSON Schema over it and writes it for the JavaScript runtime
(``js/test/fixtures/contract/corpus.json``, read by ``js/test/contract.test.js``). Each refusal
names a fragment of the message both runtimes give, and whether the schema alone refuses it too
(``schema: false`` marks the checks across fields a schema cannot say, docs/metadata.md section 3).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

Edit = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Edit:
    """An edit that sets ``path`` (dotted, ``[i]`` for list items) to ``value``."""

    def edit(m: dict[str, Any]) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        node: Any = m
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def _drop(key: str) -> Edit:
    def edit(m: dict[str, Any]) -> None:
        del m[key]

    return edit


def _shorten_vocabulary(m: dict[str, Any]) -> None:
    del m["vocabulary"][-1]


def _char_model(lm: dict[str, Any]) -> dict[str, Any]:
    """A character model's metadata from a word model's: every entry besides <unk> and <eos> one character."""
    m = copy.deepcopy(lm)
    specials = {m["unk_id"], m["eos_id"]}
    m["vocabulary"] = [w if i in specials else chr(0x4E00 + i) for i, w in enumerate(m["vocabulary"])]
    m["tokens"] = "chars"
    return m


# (name, base, edit, message fragment, whether the schema alone refuses it)
_CLASSIFIER_REFUSALS: list[tuple[str, Edit, str, bool]] = [
    ("root-is-a-list", lambda m: [m], "metadata field <root> must be an object", True),
    ("format-version-2", _set("format_version", 2), "upgrade rnnedge", True),
    ("format-version-0", _set("format_version", 0), "invalid format version 0", True),
    ("format-version-string", _set("format_version", "1"), "metadata field format_version has type", True),
    ("format-version-boolean", _set("format_version", True), "format_version must not be a boolean", True),
    ("unknown-kind", _set("kind", "regressor"), "metadata field kind is", True),
    # the tagger's section has the classifier's fields; its check wants one distribution per frame
    ("tagger-classifier-outputs", _set("kind", "tagger"), "a tagger needs output logits (batch, sequence,", False),
    ("missing-model-id", _drop("model_id"), "metadata field model_id is missing", True),
    (
        "unknown-field",
        _set("preprocessing", {"scale": 1, "mean": 0, "std": 1}),
        "preprocessing is not part of format 1",
        True,
    ),
    ("another-kinds-field", _set("vocabulary", ["a"]), "vocabulary is not part of format 1", True),
    ("null-field", _set("notes", None), "metadata field notes is None", True),
    ("missing-labels", _drop("labels"), "labels is missing: a classifier's metadata must carry it", True),
    ("missing-lengths", _drop("lengths"), "lengths is missing: a classifier's metadata must carry it", True),
    ("variant-unknown", _set("variant", "int4"), "metadata field variant is", True),
    ("causal-string", _set("causal", "yes"), "metadata field causal has type", True),
    ("producer-list", _set("producer", []), "metadata field producer has type", True),
    ("states-object", _set("states", {}), "metadata field states has type", True),
    ("config-list", _set("config", []), "metadata field config has type", True),
    ("input-dtype", _set("input.dtype", "complex64"), "metadata field input.dtype is", True),
    (
        "input-not-batch-first",
        _set("input.shape", ["sequence", "batch", 28]),
        "input.shape must start with the 'batch'",
        True,
    ),
    ("input-extra-key", _set("input.layout", "NTC"), "input.layout is not part of format 1 here", True),
    ("state-shape-negative", _set("states[0].input.shape[2]", -1), "states[0].input.shape has entry -1", True),
    ("state-shape-huge", _set("states[0].input.shape[2]", 1 << 21), "expected sizes in [0, 1048576]", True),
    (
        "state-without-batch",
        _set("states[0].input.shape", [1, 2, 3]),
        "states[0].input.shape has no 'batch' axis",
        True,
    ),
    ("state-extra-key", _set("states[0].init", "zeros"), "states[0].init is not part of format 1 here", True),
    ("state-output-number", _set("states[0].output", 3), "metadata field states[0].output has type", True),
    ("quality-string", _set("quality.test_accuracy", "high"), "quality must map names to numbers", True),
    ("quality-boolean", _set("quality.test_accuracy", True), "quality must map names to numbers", True),
    ("labels-empty", _set("labels", []), "labels must be a list of strings", True),
    ("labels-number", _set("labels[0]", 7), "labels must be a list of strings", True),
    ("lengths-float", _set("lengths.dtype", "float32"), "lengths must be int64 of shape ['batch']", True),
    (
        "standardize-std-zero",
        lambda m: m["standardize"].update(std=[0] * len(m["standardize"]["std"])),
        "standardize.std has 0",
        True,
    ),
    (
        "standardize-mean-huge",
        lambda m: m["standardize"].update(mean=[1e7] * len(m["standardize"]["mean"])),
        "standardize.mean has values outside",
        True,
    ),
    (
        "standardize-string",
        _set("standardize.mean[0]", "0"),
        "standardize.mean must be a non-empty list of numbers",
        True,
    ),
    ("standardize-extra-key", _set("standardize.scale", 1), "standardize.scale is not part of format 1 here", True),
    # Checks across fields: what a schema cannot say.
    ("standardize-per-channel", lambda m: m["standardize"].update(mean=[0.0], std=[1.0]), "values per channel", False),
    ("labels-unlike-outputs", _set("labels", ["a", "b", "c"]), "to match its labels", False),
    (
        "outputs-without-probs",
        lambda m: m.update(outputs=[o for o in m["outputs"] if o["name"] != "probs"]),
        "needs output probs",
        False,
    ),
    ("input-int64", _set("input.dtype", "int64"), "a classifier's input must be float32", False),
    ("input-features-named", _set("input.shape[2]", "features"), "a classifier's input must be float32", False),
    (
        "state-named-twice",
        lambda m: m.update(states=[m["states"][0], m["states"][0]]),
        "each name must appear once",
        False,
    ),
]

_LANGUAGE_MODEL_REFUSALS: list[tuple[str, Edit, str, bool]] = [
    ("missing-tokens", _drop("tokens"), "tokens is missing: a language model's metadata must carry it", True),
    (
        "missing-vocabulary",
        _drop("vocabulary"),
        "vocabulary is missing: a language model's metadata must carry it",
        True,
    ),
    ("tokens-unknown", _set("tokens", "bytes"), "metadata field tokens is", True),
    ("a-classifiers-field", _set("labels", ["a"]), "labels is not part of format 1", True),
    ("vocabulary-repeats", lambda m: m["vocabulary"].__setitem__(5, m["vocabulary"][4]), "repeats 1 word", True),
    ("unk-id-negative", _set("unk_id", -1), "unk_id is -1, expected an id in", True),
    ("unk-id-fraction", _set("unk_id", 1.5), "metadata field unk_id has type", True),
    ("eos-id-null", _set("eos_id", None), "metadata field eos_id is None", True),
    ("unk-id-past-vocabulary", lambda m: m.update(unk_id=len(m["vocabulary"])), "expected an id in [0,", False),
    ("vocabulary-shorter", _shorten_vocabulary, "a language model needs output logits", False),
    (
        "without-next-probs",
        lambda m: m.update(outputs=[o for o in m["outputs"] if o["name"] != "next_probs"]),
        "needs output next_probs",
        False,
    ),
    ("input-float", _set("input.dtype", "float32"), "a language model's input must be int64", False),
    (
        "chars-with-words",
        lambda m: m.update(tokens="chars"),
        "character model (tokens 'chars') must hold single characters",
        False,
    ),
]

_VALID_EDITS: list[tuple[str, str, Edit]] = [
    ("lm-int8", "lm", _set("variant", "int8")),
    ("clf-fp16", "clf", _set("variant", "fp16")),
    ("clf-without-notes", "clf", _drop("notes")),
    ("lm-quality-empty", "lm", _set("quality", {})),
]


def metadata_cases(bases: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every metadata case, from the metadata of real files: ``{"clf", "bi", "lm"}`` (parsed JSON objects)."""
    bases = {**bases, "chars": _char_model(bases["lm"])}
    cases: list[dict[str, Any]] = [
        {"name": name, "text": json.dumps(m, sort_keys=True), "error": None, "schema": True}
        for name, m in bases.items()
    ]
    for name, base, edit in _VALID_EDITS:
        m = copy.deepcopy(bases[base])
        edit(m)
        cases.append({"name": name, "text": json.dumps(m, sort_keys=True), "error": None, "schema": True})
    for base, refusals in (("clf", _CLASSIFIER_REFUSALS), ("lm", _LANGUAGE_MODEL_REFUSALS)):
        for name, edit, message, schema in refusals:
            m = copy.deepcopy(bases[base])
            result = edit(m)  # None, or (root-is-a-list) the whole text's value
            value = m if result is None else result
            cases.append(
                {
                    "name": f"{base}-{name}",
                    "text": json.dumps(value, sort_keys=True),
                    "error": {"class": "ModelFileError", "message": message},
                    "schema": schema,
                }
            )
    for name, text, message in (
        ("cut-json", '{"format_version": 1,', "not valid JSON"),
        ("nan-constant", '{"format_version": NaN}', "not valid JSON"),
        ("empty-text", "", "not valid JSON"),
    ):
        cases.append(
            {"name": name, "text": text, "error": {"class": "ModelFileError", "message": message}, "schema": None}
        )
    return cases


# Strings whose tokens both runtimes must give alike: Python's str.split() and str.splitlines() rules.
TOKEN_TEXTS = [
    "the cat sat",
    "  leading and trailing  ",
    "",
    "\n",
    "a\r\nb\rc\nd",
    "tab\tsep\x0bvt\x0cff",
    "the\u00a0stock\tmarket\u2003rose\x1cin\u3000tokyo\x85today xyzzy\ufeffnew\u200byork\r\n",
    "file\x1cgroup\x1drecord\x1eunit\x1fend",
    "line\u2028para\u2029end\n\n",
    "Ça coûte 3,50 € !\r\nThe END.\r\n\r\nno it was n't black monday\n",
    "emoji 😀 and 👍🏽 combined",
    "trailing break\r",
    "\r\n\r\n",
    "mixed \n\r\n \r end",
]


def token_cases() -> list[dict[str, Any]]:
    """Each string split by every mode, files (``close_lines``) and stream feeds, as ``rnnedge.data.text`` does."""
    from rnnedge.data.text import tokenize

    return [
        {
            "text": text,
            "tokens": mode,
            "close_lines": close,
            "expected": tokenize(text, mode, "<eos>", close_lines=close),
        }
        for text in TOKEN_TEXTS
        for mode in ("words", "chars")
        for close in (True, False)
    ]


def sampler_cases() -> dict[str, Any]:
    """PCG32 outputs and sampler draws on fixed probabilities (float32, as a stream gives them)."""
    import numpy as np

    from rnnedge.runtime.sampling import Pcg32, sample

    generators = []
    for seed in (0, 1, 42, 2**53 - 1):
        rng = Pcg32(seed)
        generators.append(
            {"seed": seed, "uint32": [rng.next_uint32() for _ in range(6)], "uniform": [Pcg32(seed).uniform()]}
        )
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.full(300, 0.3)).astype(np.float32)  # (300,)
    probs[10] = probs[11] = probs[12] = probs.max()  # ties at the top: broken by id
    probs /= probs.sum()
    draws = []
    for temperature, top_k, seed in (
        (1.0, None, 1),
        (1.0, 50, 1),
        (1.0, 1, 3),
        (0.7, 5, 2),
        (1.5, None, 9),
        (1e-3, None, 4),
        (1.0, 3, 5),
    ):
        rng32 = Pcg32(seed)
        ids = [sample(probs, temperature, top_k, rng32) for _ in range(40)]
        draws.append({"temperature": temperature, "top_k": top_k, "seed": seed, "ids": ids})
    return {"generators": generators, "probs": probs.tolist(), "draws": draws}
