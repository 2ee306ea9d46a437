"""The ``rnnedge`` command: a thin click layer over functions a program can call.

Runtime commands (``info``, ``classify``, ``generate``, ``perplexity``, ``next-word``)
import no torch; ``train``, ``export`` and ``demo`` load their modules only when invoked
and name the missing extra if torch or onnx is absent.
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from rnnedge.errors import MissingExtraError, RnnEdgeError
from rnnedge.runtime import load, read_metadata

__all__ = ["cli"]

DATA_HELP = "Folder holding mnist/ and ptb/ (default: $RNNEDGE_DATA, else the per-user cache)."


class _Group(click.Group):
    """Turns rnnedge's typed errors into a one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RnnEdgeError as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from None


def require_training_extra() -> None:
    """Fail with the name of the extra to install when torch or onnx is missing."""
    missing = []
    for module in ("torch", "onnx"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtraError(
            f"this command needs {' and '.join(missing)}; install the training extra: "
            "pip install 'rnnedge[train]' (torch==2.13.0, CPU build)"
        )


@click.group(cls=_Group)
@click.version_option(package_name="rnnedge")
def cli() -> None:
    """rnnedge: recurrent models trained in PyTorch, shipped as ONNX, streamed on the edge."""


@cli.group(cls=_Group)
def train() -> None:
    """Train a model (needs the 'train' extra)."""


def _classifier_options(func: Any) -> Any:
    defaults = {"epochs": 30, "batch_size": 128, "lr": 2e-3, "seed": 0, "checkpoint_every": 200}
    options = [
        click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP),
        click.option(
            "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder."
        ),
        click.option("--epochs", type=click.IntRange(min=1), default=defaults["epochs"], show_default=True),
        click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many steps."),
        click.option("--batch-size", type=click.IntRange(min=1), default=defaults["batch_size"], show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=defaults["lr"], show_default=True),
        click.option("--hidden-size", type=click.IntRange(min=1), default=128, show_default=True),
        click.option("--seed", type=click.IntRange(min=0), default=defaults["seed"], show_default=True),
        click.option(
            "--checkpoint-every",
            type=click.IntRange(min=1),
            default=defaults["checkpoint_every"],
            show_default=True,
            help="Steps between checkpoints.",
        ),
        click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt."),
        click.option("--quiet", is_flag=True, help="No progress output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _train_classifier(bidirectional: bool, **kw: Any) -> dict[str, Any]:
    require_training_extra()
    from rnnedge.training.models import RowClassifierConfig
    from rnnedge.training.train_classifier import ClassifierTrainConfig, train_classifier

    model_cfg = RowClassifierConfig(hidden_size=kw["hidden_size"], bidirectional=bidirectional)
    train_cfg = ClassifierTrainConfig(
        epochs=kw["epochs"],
        batch_size=kw["batch_size"],
        lr=kw["lr"],
        seed=kw["seed"],
        max_steps=kw["max_steps"],
        checkpoint_every=kw["checkpoint_every"],
    )
    metrics: dict[str, Any] = train_classifier(
        model_cfg, train_cfg, kw["out"], data=kw["data"], resume=kw["resume"], quiet=kw["quiet"]
    )
    return metrics


@train.command("mnist-lstm")
@_classifier_options
def train_mnist_lstm(**kw: Any) -> None:
    """Row-by-row MNIST classifier: one LSTM layer, mean over time, linear, softmax."""
    metrics = _train_classifier(False, **kw)
    click.echo(json.dumps(metrics))


@train.command("mnist-bilstm")
@_classifier_options
def train_mnist_bilstm(**kw: Any) -> None:
    """Bidirectional row classifier: LSTMs top-down and bottom-up, mean over time, linear, softmax."""
    metrics = _train_classifier(True, **kw)
    click.echo(json.dumps(metrics))


@train.command("ptb")
@click.option(
    "--config",
    "preset",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="Reference configuration of Zaremba et al. (2014).",
)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: the configuration's).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many steps.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--tie-weights", is_flag=True, help="Share embedding and output weights (Press & Wolf 2017).")
@click.option(
    "--dropout",
    type=click.FloatRange(min=0.0, max=1.0, max_open=True),
    default=None,
    help="Dropout probability (default: the configuration's; small has none).",
)
@click.option(
    "--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True, help="Steps between checkpoints."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch intra-op threads (1 is often fastest on a small shared CPU).",
)
@click.option("--custom", is_flag=True, help="Accept ptb.*.txt files that are not the published corpus.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def train_ptb(preset: str, **kw: Any) -> None:
    """Penn Treebank word language model (2-layer LSTM; --config small|medium|large); works under torchrun."""
    require_training_extra()
    from dataclasses import replace

    from rnnedge.training.train_lm import PRESETS, train_language_model

    chosen = PRESETS[preset]
    dropout = chosen.model.dropout if kw["dropout"] is None else kw["dropout"]
    model_cfg = replace(chosen.model, tie_weights=kw["tie_weights"], dropout=dropout)
    train_cfg = replace(
        chosen.train,
        epochs=kw["epochs"] or chosen.train.epochs,
        max_steps=kw["max_steps"],
        seed=kw["seed"],
        checkpoint_every=kw["checkpoint_every"],
    )
    metrics = train_language_model(
        model_cfg,
        train_cfg,
        kw["out"],
        data=kw["data"],
        resume=kw["resume"],
        quiet=kw["quiet"],
        custom_corpus=kw["custom"],
        threads=kw["threads"],
    )
    if metrics:
        click.echo(json.dumps(metrics))


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="MODEL.onnx for one checkpoint, or a folder (DIST/) for several runs.",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8", "fp16"]),
    multiple=True,
    help="Also write this variant (repeatable): int8 for the CPU, fp16 for the CUDA provider only.",
)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP + " Measures variant quality.")
@click.option("--force", is_flag=True, help="Batch: re-export even unchanged runs.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def export(
    sources: tuple[Path, ...], output: Path, quantize: tuple[str, ...], data: Path | None, force: bool, quiet: bool
) -> None:
    """Export checkpoints to validated, self-describing ONNX files.

    One checkpoint and ``-o MODEL.onnx`` writes that file. Run folders, checkpoints or
    globs with ``-o DIST/`` export every checkpoint found into DIST with a manifest.json
    and a report.md; the command exits with status 1 if any model failed.
    """
    require_training_extra()
    from rnnedge.export.exporter import export_checkpoint

    paths = [Path(p) for s in sources for p in (sorted(glob.glob(str(s))) if glob.has_magic(str(s)) else [s])]
    if output.suffix == ".onnx":  # one model to one file
        if len(paths) == 1 and paths[0].is_dir() and (paths[0] / "checkpoint.pt").is_file():
            paths = [paths[0] / "checkpoint.pt"]
        if len(paths) != 1 or not paths[0].is_file():
            raise click.UsageError(
                f"-o {output} names one model file: give exactly one checkpoint or run folder (got {len(paths)} "
                "paths); to export several, give a folder as -o"
            )
        result = export_checkpoint(paths[0], output)
        click.echo(
            f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {result.metadata.kind}); parity with PyTorch: "
            f"{result.parity.checks} checks, largest difference {result.parity.worst:.2e}"
        )
        if quantize:
            from functools import partial

            from rnnedge.export.batch import VARIANTS
            from rnnedge.export.quality import measure_quality

            for variant in dict.fromkeys(quantize):
                out = output.with_suffix(f".{variant}.onnx")
                q = VARIANTS[variant](output, out, partial(measure_quality, data=data))
                click.echo(f"wrote {q.path} ({q.size_bytes / 1e6:.2f} MB, {variant}); quality {q.metadata.quality}")
        return
    from rnnedge.export.batch import MANIFEST_NAME, export_many, find_checkpoints

    if not find_checkpoints(paths):
        raise click.UsageError(f"no checkpoints (*.pt) found in {', '.join(map(str, sources))}")

    def progress(message: str) -> None:
        if not quiet and sys.stderr.isatty():
            click.echo(message, err=True)

    summary = export_many(paths, output, variants=quantize, data=data, force=force, progress=progress)
    for entry in summary.entries:
        click.echo(
            f"{entry['status']:>9}  {entry['name']} ({entry['variant']})"
            + (f": {entry['error'].splitlines()[-1]}" if entry["status"] == "failed" else "")
            + (f": {entry['reason']}" if entry["status"] == "skipped" else "")
        )
    click.echo(f"manifest: {output / MANIFEST_NAME}")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} of {len(summary.entries)} exports failed; see the report")


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))
def plot(run_dir: Path) -> None:
    """Redraw RUN_DIR/curves.png from the run's metrics (needs the 'plot' extra)."""
    from rnnedge.training.plots import plot_run

    click.echo(f"wrote {plot_run(run_dir)}")


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
    if meta.preprocessing:
        p = meta.preprocessing
        info["preprocessing"] = {"scale": p.scale, "mean": p.mean, "std": p.std}
    if meta.labels:
        info["labels"] = list(meta.labels)
    if meta.vocabulary:
        info["vocab_size"] = len(meta.vocabulary)
    return info


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def info(model_path: Path, as_json: bool) -> None:
    """What MODEL's metadata says: inputs, outputs, state, preprocessing, labels, quality."""
    data = describe_model(model_path)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if key == "config":
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            click.echo(f"{key}:")
            for item in value:
                click.echo("  " + ", ".join(f"{k}={v}" for k, v in item.items()))
        else:
            click.echo(f"{key}: {value}")


def _accuracy(model_path: Path, data: Path | None, limit: int | None, provider: str, quiet: bool) -> float:
    from rnnedge.data.mnist import load_mnist  # numpy-only: no torch needed
    from rnnedge.runtime import ClassifierModel

    model = load(model_path, provider=provider)
    if not isinstance(model, ClassifierModel):
        raise click.ClickException(f"{model_path} is a {model.kind}, not an image classifier")
    splits = load_mnist(data)
    images, labels = splits.test_images[:limit], splits.test_labels[:limit]
    batch, correct = 500, 0
    with click.progressbar(
        range(0, len(images), batch), label="classifying", file=sys.stderr, hidden=quiet or not sys.stderr.isatty()
    ) as bar:
        for i in bar:
            correct += int((model.predict(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())
    return correct / len(images)


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N test images.")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--quiet", is_flag=True)
def classify(model_path: Path, data: Path | None, limit: int | None, provider: str, quiet: bool) -> None:
    """Accuracy of MODEL on the MNIST test set, through the runtime."""
    acc = _accuracy(model_path, data, limit, provider, quiet)
    click.echo(f"test accuracy {acc:.4f} ({model_path.name}, {limit or 10000} images)")


@cli.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=None)
@click.option("--digits", type=click.IntRange(min=1, max=20), default=4, show_default=True)
def demo(data: Path | None, out: Path, epochs: int, max_steps: int | None, digits: int) -> None:
    """The whole pipeline: train the row-LSTM briefly, export, validate, stream digits, test accuracy."""
    from rnnedge.data.mnist import load_mnist

    click.echo(f"1/4 training the row-LSTM for {epochs} epoch(s) into {out}")
    metrics = _train_classifier(
        False,
        data=data,
        out=out,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=128,
        lr=2e-3,
        hidden_size=128,
        seed=0,
        checkpoint_every=200,
        resume=False,
        quiet=False,
    )
    click.echo(f"    PyTorch test accuracy {metrics['test_accuracy']:.4f}")
    from rnnedge.export.exporter import export_checkpoint

    onnx_path = out / "mnist-lstm.onnx"
    click.echo(f"2/4 exporting and validating against PyTorch -> {onnx_path}")
    result = export_checkpoint(out / "checkpoint.pt", onnx_path)
    click.echo(f"    {result.parity.checks} parity checks passed, largest difference {result.parity.worst:.2e}")

    click.echo("3/4 streaming test digits row by row (prediction and its probability as rows arrive)")
    model = load(onnx_path)
    splits = load_mnist(data)
    for i in range(digits):
        stream = model.stream()
        marks = []
        for row_index, row in enumerate(splits.test_images[i]):
            probs = stream.feed(row)
            if (row_index + 1) % 4 == 0:
                marks.append(f"{row_index + 1:>2}:{int(np.argmax(probs))}({probs.max():.2f})")
        click.echo(f"    digit {i} (label {splits.test_labels[i]}): " + " ".join(marks))
    click.echo("4/4 runtime accuracy on the full MNIST test set")
    click.echo(f"    test accuracy {_accuracy(onnx_path, data, None, 'cpu', False):.4f} (10000 images, onnxruntime)")


def _language_model(model_path: Path, threads: int | None = 1) -> Any:
    from rnnedge.runtime import LanguageModel

    model = load(model_path, threads=threads)
    if not isinstance(model, LanguageModel):
        raise click.ClickException(f"{model_path} is a {model.kind}, not a language model")
    return model


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prompt", default=None, help="Words to start from (default: the start of a sentence).")
@click.option("--max-words", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample among the K likeliest words only.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed for a reproducible sample.")
@click.option("--strict", is_flag=True, help="Refuse prompt words outside the vocabulary instead of reading <unk>.")
def generate(
    model_path: Path,
    prompt: str | None,
    max_words: int,
    temperature: float,
    top_k: int | None,
    seed: int | None,
    strict: bool,
) -> None:
    """Sample text from a language MODEL, word by word as it is produced (<eos> ends a line)."""
    model = _language_model(model_path)
    eos = model.vocabulary[model.eos_id]
    line_open = False
    for word in model.generate(prompt, max_words, temperature=temperature, top_k=top_k, seed=seed, strict=strict):
        if word == eos:
            click.echo("")
            line_open = False
        else:
            click.echo(("" if not line_open else " ") + word, nl=False)
            line_open = True
        sys.stdout.flush()
    if line_open:
        click.echo("")


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("text_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--window", type=click.IntRange(min=1), default=100, show_default=True, help="Tokens per onnxruntime run."
)
@click.option("--strict", is_flag=True, help="Refuse words outside the vocabulary instead of reading <unk>.")
@click.option("--quiet", is_flag=True)
def perplexity(model_path: Path, text_file: Path, window: int, strict: bool, quiet: bool) -> None:
    """Perplexity of language MODEL on FILE (tokenised as PTB: each line ends with <eos>), state carried."""
    model = _language_model(model_path)
    with click.progressbar(length=1, label="scoring", file=sys.stderr, hidden=quiet or not sys.stderr.isatty()) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        value = model.perplexity(text_file, window=window, strict=strict, progress=progress)
    click.echo(f"perplexity {value:.2f} ({text_file.name}, {model_path.name})")


@cli.command("next-word")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True, help="Predictions to show.")
@click.option("--strict", is_flag=True, help="Refuse words outside the vocabulary instead of reading <unk>.")
def next_word(model_path: Path, k: int, strict: bool) -> None:
    """Read words from standard input; after each word print it and the K likeliest next words.

    The state carries over from word to word and line to line; an empty line starts a new
    sentence (feeds <eos>).
    """
    model = _language_model(model_path)
    stream = model.stream(strict=strict)
    eos = model.vocabulary[model.eos_id]
    for line in sys.stdin:
        for word in line.split() or [eos]:
            try:
                stream.feed([word])
            except RnnEdgeError as e:  # one bad word must not end the session; the state is unchanged
                click.echo(f"error: {e}", err=True)
                continue
            predictions = "  ".join(f"{w} {p:.3f}" for w, p in stream.top_k(min(k, model.vocab_size)))
            click.echo(f"{word} -> {predictions}")
            sys.stdout.flush()


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="onnxruntime intra-op threads for rnnedge and the bare session (load()'s default too).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=15, show_default=True, help="Interleaved rounds.")
@click.option(
    "--cold-runs",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Fresh interpreters per program for the cold start (0 skips it).",
)
@click.option("--limits/--no-limits", default=True, show_default=True, help="Measure GEMM rate and read bandwidth.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs (times in seconds per unit).")
def bench(model_path: Path, threads: int, rounds: int, cold_runs: int, limits: bool, as_json: bool) -> None:
    """Speed of MODEL here: a hand-written onnxruntime loop against rnnedge, timed interleaved.

    Streaming step at batch 1 (Model.step and a stream's feed), whole sequences (20 × 35
    tokens or 256 × 28 rows), cold start in fresh interpreters (import, load, first result,
    peak memory) and, beside them, the machine's GEMM rate, read bandwidth and the lower
    bound of a step. Medians with their interquartile range.
    """
    from rnnedge.runtime.bench import format_report, run_bench

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            click.echo(message, err=True)

    report = run_bench(
        model_path, threads=threads, rounds=rounds, cold_runs=cold_runs, limits=limits, progress=progress
    )
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def main() -> None:  # pragma: no cover - console entry point
    """Console entry point."""
    cli()


if __name__ == "__main__":  # `python -m rnnedge.cli.main`, e.g. under torchrun
    main()
