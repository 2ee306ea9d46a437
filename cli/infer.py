"""Runtime commands (base install, no torch): ``info``, ``classify``, ``generate``, ``perplexity``, ``next-word``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from rnnedge.errors import RnnEdgeError
from rnnedge.runtime import LanguageModel, load_classifier, load_language_model, read_metadata, runtime_kind
from rnnedge.runtime.evaluation import ClassReport, plot_confusion

PROVIDER = click.option(
    "--provider",
    type=click.Choice(["cpu", "cuda", "auto"]),
    default="cpu",
    show_default=True,
    help="Execution provider (fp16 files run on cuda only).",
)


def describe_model(path: Path) -> dict[str, Any]:
    """What a user needs to embed the model, from its metadata alone."""
    meta = read_metadata(path)  # no session: an fp16 file is described on a CPU-only machine too
    info: dict[str, Any] = {
        "file": str(path),
        "kind": meta.kind,
        "causal": meta.causal,
        "streaming": (
            "state carried between chunks: each chunk costs O(chunk length)"
            if meta.causal
            else "non-causal: each chunk re-reads the whole prefix (O(prefix length)); "
            "results equal predict on the prefix"
        ),
        "variant": meta.variant,
        "input": meta.input.as_dict(),
        "state": [s.as_dict() for s in meta.states],
        "outputs": [o.as_dict() for o in meta.outputs],
        "quality": meta.quality,
        "producer": meta.producer,
        "format_version": meta.format_version,
        "config": meta.config,
    }
    info.update(runtime_kind(meta).model.info_fields(meta))  # the kind's own fields (labels, vocabulary...)
    return info


def describe_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint's settings, metrics and (for a ``--tune`` run) its search (needs the train extra)."""
    from .common import require_training_extra

    require_training_extra()
    from rnnedge.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    progress = ckpt.get("progress") or {}
    info: dict[str, Any] = {
        "checkpoint": str(path),
        "kind": ckpt.get("kind"),
        "config": {"model": ckpt.get("config"), "training": ckpt.get("train_config")},
        "progress": {k: progress[k] for k in ("epoch", "step", "done", "seconds") if k in progress},
        "metrics": ckpt.get("metrics"),
    }
    for key in ("labels", "data", "tuning"):
        if ckpt.get(key) is not None:
            info[key] = ckpt[key]
    return info


def _tuning_lines(tuning: dict[str, Any]) -> list[str]:
    """What ``--tune`` chose and how, in a few lines; every trial's numbers are in ``--json``."""
    chosen = tuning.get("chosen") or {}
    trials = tuning.get("trials") or []
    done = [t for t in trials if t.get("state") == "complete"]
    lines = [
        f"tuning: {len(trials)} trials ({len(done)} finished) in {tuning.get('seconds', 0):.0f} s of a "
        f"{tuning.get('minutes', 0):g}-minute budget, {tuning.get('folds')} on {tuning.get('cases')} training cases"
    ]
    if chosen:
        lines.append(
            f"  chosen: trial {chosen.get('trial')}, CV accuracy {chosen.get('accuracy', 0):.4f}: "
            f"{_plain(chosen.get('params') or {})}, "
            + (f"steps={chosen['steps']}" if "steps" in chosen else f"epochs={chosen.get('epochs')}")
        )
    for t in sorted(done, key=lambda t: -t.get("score", 0))[:5]:
        lines.append(f"  trial {t['number']}: CV accuracy {t.get('accuracy', 0):.4f}, {_plain(t.get('params') or {})}")
    return lines


def _plain(value: Any, nested: bool = False) -> str:
    """A value as a person reads it: ``a=1, b=2`` for mappings, ``x, y`` for lists, numbers to 6 digits.

    Inside another value a mapping is bracketed (``rnns=[cell=lstm, ...], [cell=gru, ...]``).
    """
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_plain(v, True)}" for k, v in value.items()) or "(none)"
        return f"[{text}]" if nested else text
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v, nested) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def info(model_path: Path, as_json: bool) -> None:
    """What MODEL's metadata says: inputs, outputs, state, preprocessing, labels, quality.

    MODEL may also be a training checkpoint (``RUN_DIR/checkpoint.pt``, the train extra): its settings,
    metrics and, for a ``--tune`` run, what the search chose and every trial's cross-validated score.
    """
    data = describe_checkpoint(model_path) if model_path.suffix == ".pt" else describe_model(model_path)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if key == "config":  # the network's shape (cell, layers, head...); the rest is in --json
            if isinstance(value.get("model"), dict):
                click.echo(f"model: {_plain(value['model'])}")
            if "checkpoint" in data and isinstance(value.get("training"), dict):
                click.echo(f"training: {_plain(value['training'])}")
            if isinstance(value.get("tuning"), dict):
                for line in _tuning_lines(value["tuning"]):
                    click.echo(line)
            continue
        if key == "tuning" and isinstance(value, dict):
            for line in _tuning_lines(value):
                click.echo(line)
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            click.echo(f"{key}:")
            for item in value:
                click.echo("  " + _plain(item))
        elif key == "standardize":  # one mean and std for every channel is said once
            parts = (
                f"{k}={_plain(v[0])} (every channel)" if len(set(v)) == 1 else f"{k}={_plain(v)}"
                for k, v in value.items()
            )
            click.echo(f"{key}: {', '.join(parts)}")
        elif key == "labels" and len(value) > 20:
            click.echo(f"{key}: {_plain(value[:20])}, ... ({len(value)} in all)")
        else:
            click.echo(f"{key}: {_plain(value)}")


def test_report(
    model_path: Path,
    test_file: Path | None,
    data: Path | None,
    limit: int | None,
    provider: str,
    quiet: bool = True,
) -> tuple[ClassReport, Path]:
    """A classifier's per-class report on labelled sequences, and the file they came from.

    ``test_file`` (``.ts``, ``.npz`` or IDX images), else the test file the model records from
    training (:func:`~rnnedge.runtime.evaluation.recorded_test_file`); measured by
    :func:`~rnnedge.runtime.evaluation.accuracy_on_file`, as export measures a variant.
    """
    from rnnedge.runtime.evaluation import CLASSIFY_CHUNK, accuracy_on_file, recorded_test_file

    with load_classifier(model_path, provider=provider) as model:
        path = test_file
        if path is None:
            record = model.metadata.config.get("data")
            if not isinstance(record, dict) or not isinstance(record.get("test"), str):
                raise click.UsageError(f"{model_path.name} records no test file: give one with --test FILE")
            path = recorded_test_file(model.metadata, data)
        with click.progressbar(
            length=1, label="classifying", file=sys.stderr, hidden=quiet or not sys.stderr.isatty()
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            accuracy = accuracy_on_file(model, path, limit=limit, chunk=CLASSIFY_CHUNK, progress=progress)
    return accuracy.report, path


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to look for the test file the model records, by its name, if it is not where training read it "
    "(default: $RNNEDGE_DATA, else the download cache).",
)
@click.option(
    "--test",
    "test_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Labelled sequences (.ts, .npz, or IDX images) to measure instead of the model's own test file.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N test sequences.")
@click.option("--report", is_flag=True, help="Also print per-class precision, recall and F1, and the confusion matrix.")
@click.option(
    "--report-png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the confusion matrix to this PNG (the plot extra: matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON for programs.")
@PROVIDER
@click.option("--quiet", is_flag=True)
def classify(
    model_path: Path,
    data: Path | None,
    test_file: Path | None,
    limit: int | None,
    report: bool,
    report_png: Path | None,
    as_json: bool,
    provider: str,
    quiet: bool,
) -> None:
    """Accuracy of MODEL on its test file (the one training recorded, or --test FILE), through the runtime.

    --report adds what each class got: precision, recall, F1 and the confusion matrix.
    """
    if report_png is not None and report_png.suffix.lower() != ".png":
        raise click.UsageError(f"--report-png writes a PNG: give a path ending in .png, not {report_png.name!r}")
    result, path = test_report(model_path, test_file, data, limit, provider, quiet)
    n = int(result.support.sum())
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "test": str(path), "sequences": n, **result.as_dict()}))
    else:
        click.echo(f"test accuracy {result.accuracy:.4f} ({model_path.name}, {n} sequences of {path.name})")
        if report:
            click.echo("")
            click.echo(result.table())
            click.echo("")
            click.echo(result.confusion_text())
    if report_png is not None:
        written = plot_confusion(
            result, report_png, title=f"{model_path.name} on {path.name}: accuracy {result.accuracy:.4f}"
        )
        click.echo(f"wrote {written}", err=True)


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prompt", default=None, help="Words to start from (default: the start of a sentence).")
@click.option("--max-words", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample among the K likeliest words only.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed for a reproducible sample.")
@click.option("--strict", is_flag=True, help="Refuse prompt words outside the vocabulary instead of reading <unk>.")
@PROVIDER
def generate(
    model_path: Path,
    prompt: str | None,
    max_words: int,
    temperature: float,
    top_k: int | None,
    seed: int | None,
    strict: bool,
    provider: str,
) -> None:
    """Sample text from a language MODEL, token by token as it is produced (<eos> ends a line).

    Words are printed with spaces between them, characters as they come (--max-words counts characters).
    """
    model = load_language_model(model_path, provider=provider)
    eos = model.vocabulary[model.eos_id]
    sep = " " if model.tokens == "words" else ""
    line_open = False
    for word in model.generate(prompt, max_words, temperature=temperature, top_k=top_k, seed=seed, strict=strict):
        if word == eos:
            click.echo("")
            line_open = False
        else:
            click.echo(("" if not line_open else sep) + word, nl=False)
            line_open = True
        sys.stdout.flush()
    if line_open:
        click.echo("")


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("text_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--window", type=click.IntRange(min=1), default=100, show_default=True, help="Tokens per onnxruntime run."
)
@click.option("--strict", is_flag=True, help="Refuse words outside the vocabulary instead of reading <unk>.")
@PROVIDER
@click.option("--quiet", is_flag=True)
def perplexity(model_path: Path, text_file: Path, window: int, strict: bool, provider: str, quiet: bool) -> None:
    """Perplexity of language MODEL on FILE (split as the model's tokens say; each line ends with <eos>), state carried.

    A character model's bits per character (log2 of the perplexity) are printed beside it.
    """
    model = load_language_model(model_path, provider=provider)
    with click.progressbar(length=1, label="scoring", file=sys.stderr, hidden=quiet or not sys.stderr.isatty()) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        value = model.perplexity(text_file, window=window, strict=strict, progress=progress)
    bits = f", {math.log2(value):.3f} bits per character" if model.tokens == "chars" else ""
    click.echo(f"perplexity {value:.2f}{bits} ({text_file.name}, {model_path.name})")


@click.command("next-word")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True, help="Predictions to show.")
@click.option("--strict", is_flag=True, help="Refuse words outside the vocabulary instead of reading <unk>.")
@PROVIDER
def next_word(model_path: Path, k: int, strict: bool, provider: str) -> None:
    """Read words from standard input; after each word print it and the K likeliest next words.

    The state carries over from word to word and line to line; an empty line starts a new
    sentence (feeds <eos>). A character model reads every character and each line's end (<eos>)
    instead. A refused word is reported and skipped (the state is unchanged);
    the exit status is 1 when words came in and every one of them was refused.
    """
    model: LanguageModel = load_language_model(model_path, provider=provider)
    stream = model.stream(strict=strict)
    eos = model.vocabulary[model.eos_id]
    refused = accepted = 0
    for line in sys.stdin:
        # A character model reads each character and the line's end (<eos>); a word model its words.
        tokens = model.tokenize(line) if model.tokens == "chars" else line.split() or [eos]
        for word in tokens:
            try:
                stream.feed([word])
            except RnnEdgeError as e:  # one bad word must not end the session; the state is unchanged
                click.echo(f"Error: {type(e).__name__}: {e}", err=True)
                refused += 1
                continue
            accepted += 1
            predictions = "  ".join(f"{w} {p:.3f}" for w, p in stream.top_k(min(k, model.vocab_size)))
            click.echo(f"{word} -> {predictions}")
            sys.stdout.flush()
    if refused and not accepted:
        raise click.ClickException(f"all {refused} word(s) were refused (see above)")
