"""``rnnedge train ...`` and ``rnnedge plot``: training runs (the train extra).

The options that configure a run are made from the configuration dataclasses' fields
(:mod:`rnnedge.training.config`, torch-free): one option per field, with the field's default,
range and help, so the command line never repeats a default or a range. The other options say
where the run goes and how it behaves (``--data``, ``--out``, ``--resume``, ``--overwrite``,
``--threads``, ``--quiet``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from rnnedge.training.config import (
    CLASSIFIER_PRESETS,
    PRESETS,
    LanguageModelConfig,
    LanguageTrainConfig,
    SequenceClassifierConfig,
    SequenceTrainConfig,
)
from rnnedge.training.config_checks import Rule

from .common import DATA_HELP, RnnEdgeGroup, require_training_extra

__all__ = ["config_options", "config_values", "plot", "run_options", "train", "train_mnist_run", "train_sequences_run"]

F = TypeVar("F", bound=Callable[..., Any])

# Model fields the data decides, not an option.
_LM_FIXED = ("vocab_size",)


def _click_type(rule: Rule) -> click.ParamType[Any]:
    """The click type that refuses what ``rule`` refuses (a usage error naming the range)."""
    if rule.value_type == "int":
        return click.IntRange(
            min=None if rule.low is None else int(rule.low), max=None if rule.high is None else int(rule.high)
        )
    if rule.value_type == "float":
        return click.FloatRange(
            min=None if rule.low is None else float(rule.low),
            max=None if rule.high is None else float(rule.high),
            min_open=rule.low_open,
            max_open=rule.high_open,
        )
    if rule.value_type == "choice":
        return click.Choice(rule.choices)
    raise TypeError(f"no command-line type for a {rule.value_type!r} rule")  # a programming error, found at import


def _option(cls: Any, f: Field[Any], presets: Mapping[str, Any] | None) -> Callable[[F], F]:
    rule: Rule = cls.RULES[f.name]
    flag = "--" + f.name.replace("_", "-")
    help_text = str(f.metadata.get("help", ""))
    default = None if presets is not None or f.default is MISSING else f.default
    if presets is not None:
        values = {name: getattr(config, f.name) for name, config in presets.items()}
        if len(set(values.values())) == 1:
            value = next(iter(values.values()))
            shown = f"{value:g}" if isinstance(value, float) else value
            help_text += "" if value is None else f"  [default: {shown}]"
        else:
            help_text += "  [default: " + ", ".join(f"{name} {value:g}" for name, value in values.items()) + "]"
    if rule.value_type == "bool":
        return click.option(
            f"{flag}/--no-{flag[2:]}", f.name, default=default, help=help_text, show_default=presets is None
        )
    aliases = tuple(f.metadata.get("aliases", ()))  # short spellings, e.g. --hidden for --hidden-size
    return click.option(
        flag,
        *aliases,
        f.name,
        type=_click_type(rule),
        default=default,
        help=help_text,
        show_default=default is not None,
    )


def config_options(cls: Any, *, skip: Iterable[str] = (), presets: Mapping[str, Any] | None = None) -> Callable[[F], F]:
    """One option per field of the config dataclass ``cls`` (bar ``skip``), in field order.

    With ``presets`` (name -> a ``cls``) every option defaults to ``None``, the value then
    coming from the chosen preset (:func:`config_values` with ``base``), and the help lists
    each preset's value.
    """
    skipped = set(skip)
    options = [_option(cls, f, presets) for f in fields(cls) if f.name not in skipped]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def config_values(cls: Any, kw: Mapping[str, Any], base: Any = None, **fixed: Any) -> Any:
    """The ``cls`` the options in ``kw`` describe: on ``base`` (a preset) the options given replace its values."""
    given = {f.name: kw[f.name] for f in fields(cls) if f.name in kw}
    if base is not None:
        return replace(base, **{k: v for k, v in given.items() if v is not None}, **fixed)
    return cls(**given, **fixed)


def run_options(func: F) -> F:
    """Where a run goes and how it behaves: shared by every ``train`` command."""
    return _run_options(func, data=True)


def _run_options(func: F, *, data: bool) -> F:
    """:func:`run_options`; without ``--data`` for commands that name their files."""
    options = [
        *([click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=DATA_HELP)] if data else []),
        click.option(
            "--out",
            "out",
            required=True,
            metavar="RUN_DIR",
            type=click.Path(file_okay=False, path_type=Path),
            help="Run folder: checkpoint.pt, metrics.jsonl, train.log, curves.png.",
        ),
        click.option("--resume", is_flag=True, help="Continue the run in RUN_DIR from its checkpoint."),
        click.option("--overwrite", is_flag=True, help="Replace the run already in RUN_DIR (refused otherwise)."),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=None,
            help="torch intra-op threads (1 is often fastest on a small shared CPU).",
        ),
        click.option("--quiet", is_flag=True, help="No progress output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _interruptible(train: Callable[[], dict[str, Any]], quiet: bool = False) -> dict[str, Any]:
    """Run ``train``; a Ctrl-C ends the command with status 130 and says how to continue (not 'Aborted!').

    The run's log has already printed where its checkpoint is, unless ``quiet``: then it is said here.
    """
    try:
        return train()
    except KeyboardInterrupt as e:
        from rnnedge.training.loop import TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            if quiet:
                click.echo(f"Interrupted: {e}", err=True)
        else:
            click.echo(
                "Interrupted: no checkpoint written at the interrupt; the run folder keeps its last one, if it has "
                "one, and --resume continues from it",
                err=True,
            )
        sys.exit(130)


@click.group(cls=RnnEdgeGroup)
def train() -> None:
    """Train a model (needs the 'train' extra)."""


def train_sequences_run(
    model_cfg: SequenceClassifierConfig,
    train_cfg: SequenceTrainConfig,
    train_file: Path,
    test_file: Path,
    valid_file: Path | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """``rnnedge train classifier``'s work, its presets' and the demo's: ``kw`` holds the run options."""
    require_training_extra()
    from rnnedge.training.train_sequences import train_sequence_classifier

    return _interruptible(
        lambda: train_sequence_classifier(
            model_cfg,
            train_cfg,
            kw["out"],
            train_file=train_file,
            test_file=test_file,
            valid_file=valid_file,
            resume=kw.get("resume", False),
            overwrite=kw.get("overwrite", False),
            quiet=kw.get("quiet", False),
            threads=kw.get("threads"),
            name=kw.get("name"),
        ),
        kw.get("quiet", False),
    )


def train_mnist_run(preset: str, **kw: Any) -> dict[str, Any]:
    """``rnnedge train mnist-*``: ``train classifier`` on the MNIST files with a preset; ``kw`` holds the options.

    A configuration field missing from ``kw`` (or ``None``) takes the preset's value.
    """
    require_training_extra()
    from rnnedge.data.mnist import mnist_files

    chosen = CLASSIFIER_PRESETS[preset]
    model_cfg = config_values(SequenceClassifierConfig, kw, chosen.model)
    train_cfg = config_values(SequenceTrainConfig, kw, chosen.train)
    train_images, test_images = mnist_files(kw.get("data"))
    return train_sequences_run(model_cfg, train_cfg, train_images, test_images, **kw, name=preset)


# Model fields the data or the preset decides, not an option.
_SEQUENCE_FIXED = ("input_size", "num_classes")


def _mnist_command(name: str, doc: str) -> None:
    chosen = CLASSIFIER_PRESETS[name]

    @train.command(name, help=doc)
    @run_options
    @config_options(
        SequenceClassifierConfig,
        skip=(*_SEQUENCE_FIXED, "bidirectional", "conv_channels"),
        presets={name: chosen.model},
    )
    @config_options(SequenceTrainConfig, presets={name: chosen.train})
    def command(**kw: Any) -> None:
        click.echo(json.dumps(train_mnist_run(name, **kw)))


_mnist_command(
    "mnist-lstm",
    "MNIST read row by row: `train classifier` on the MNIST files with one LSTM layer of 128, mean over time.",
)
_mnist_command(
    "mnist-bilstm",
    "MNIST read row by row both ways: `train classifier` with a bidirectional LSTM layer of 128, mean over time.",
)

_SEQUENCE_FILE = click.Path(dir_okay=False, path_type=Path)


@train.command("classifier")
@click.option(
    "--train",
    "train_file",
    required=True,
    type=_SEQUENCE_FILE,
    help="Labelled training sequences (.ts, .npz, or IDX images NAME-images-idx3-ubyte[.gz] read row by row).",
)
@click.option("--test", "test_file", required=True, type=_SEQUENCE_FILE, help="Labelled test sequences, same problem.")
@click.option(
    "--valid",
    "valid_file",
    type=_SEQUENCE_FILE,
    help="Labelled validation sequences (else --valid-fraction of --train).",
)
@click.option(
    "--tune",
    "tune_minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="MINUTES",
    help="Choose the settings first, by cross-validation on --train alone, within MINUTES in all (the tune "
    "extra: Optuna); the options you give are kept, the others searched; each fold stops early after 10 "
    "epochs without improvement unless --patience is given. --resume continues a search.",
)
@click.option(
    "--causal",
    is_flag=True,
    help="With --tune: search streamable models only (no bidirectional layer, no --conv branch).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="With --tune: trials run at once, each in its own process (default: the cores this process may use); "
    "each trial, and the final training, runs with one torch thread unless --threads is given.",
)
@lambda func: _run_options(func, data=False)
@config_options(SequenceClassifierConfig, skip=_SEQUENCE_FIXED)
@config_options(SequenceTrainConfig)
def train_sequence_classifier_command(
    train_file: Path,
    test_file: Path,
    valid_file: Path | None,
    tune_minutes: float | None,
    causal: bool,
    jobs: int | None,
    **kw: Any,
) -> None:
    """Classifier of your own labelled sequences (UEA/UCR .ts, .npz or IDX image files; any lengths, any channels).

    LSTM or GRU layers (--cell), mean or last output (--head), optionally a convolutional branch
    beside them (--conv), linear, softmax. Channels are
    normalised with the training split's mean and std, which the checkpoint and the exported
    file carry, with the class names as the file writes them. With --tune MINUTES the settings
    are chosen first by cross-validation on the training file; the test file is read once, at the end.
    """
    ctx = click.get_current_context()
    given = {name for name in kw if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE}
    if valid_file is not None and "valid_fraction" in given:
        raise click.UsageError("give --valid FILE or --valid-fraction, not both")
    if jobs is not None and tune_minutes is None:
        raise click.UsageError("--jobs sets how many --tune trials run at once: give it with --tune")
    if tune_minutes is not None and (valid_file is not None or "valid_fraction" in given):
        raise click.UsageError("--tune validates by cross-validation on --train: give no --valid or --valid-fraction")
    model_cfg = config_values(SequenceClassifierConfig, kw)
    train_cfg = config_values(SequenceTrainConfig, kw)
    if causal and not model_cfg.causal:  # the config's own rule of what streams
        raise click.UsageError("--causal asks for a streamable model and --bidirectional or --conv for one that is not")
    if tune_minutes is None:
        click.echo(json.dumps(train_sequences_run(model_cfg, train_cfg, train_file, test_file, valid_file, **kw)))
        return
    require_training_extra()
    from rnnedge.training.tune import PATIENCE, SEARCHED, default_jobs, require_optuna, tune_sequence_classifier

    require_optuna()
    fixed = {name: kw[name] for name in SEARCHED if name in given}
    if "patience" not in given:  # many candidates on a budget: each fold stops sooner than a plain run
        train_cfg = replace(train_cfg, patience=PATIENCE)
    metrics = _interruptible(
        lambda: tune_sequence_classifier(
            model_cfg,
            train_cfg,
            kw["out"],
            minutes=tune_minutes,
            train_file=train_file,
            test_file=test_file,
            fixed=fixed,
            causal=causal,
            jobs=default_jobs() if jobs is None else jobs,
            resume=kw["resume"],
            overwrite=kw["overwrite"],
            quiet=kw["quiet"],
            threads=kw["threads"],
        ),
        quiet=kw["quiet"],
    )
    click.echo(json.dumps(metrics))


def _train_lm_run(
    model_cfg: LanguageModelConfig, train_cfg: LanguageTrainConfig, kw: Mapping[str, Any], **text: Any
) -> None:
    """``train ptb``'s and ``train lm``'s run: the run options in ``kw``, the text in ``text`` (PTB's or a corpus)."""
    from rnnedge.training.train_lm import train_language_model

    metrics = _interruptible(
        lambda: train_language_model(
            model_cfg,
            train_cfg,
            kw["out"],
            resume=kw["resume"],
            overwrite=kw["overwrite"],
            quiet=kw["quiet"],
            threads=kw["threads"],
            **text,
        ),
        kw["quiet"],
    )
    if metrics:  # empty on every process of a distributed job but the first
        click.echo(json.dumps(metrics))


@train.command("ptb")
@click.option(
    "--config",
    "preset",
    type=click.Choice(sorted(PRESETS)),
    default="small",
    show_default=True,
    help="Reference configuration of Zaremba et al. (2014); the options below change it.",
)
@run_options
@click.option("--custom", is_flag=True, help="Accept ptb.*.txt files that are not the published corpus.")
@config_options(LanguageModelConfig, skip=_LM_FIXED, presets={n: p.model for n, p in PRESETS.items()})
@config_options(LanguageTrainConfig, presets={n: p.train for n, p in PRESETS.items()})
def train_ptb(preset: str, **kw: Any) -> None:
    """Penn Treebank word language model (2-layer LSTM; --config small|medium|large); works under torchrun."""
    require_training_extra()
    chosen = PRESETS[preset]
    model_cfg = config_values(LanguageModelConfig, kw, chosen.model)
    train_cfg = config_values(LanguageTrainConfig, kw, chosen.train)
    from rnnedge.data.ptb import load_ptb

    _train_lm_run(model_cfg, train_cfg, kw, corpus=load_ptb(kw["data"], custom=kw["custom"]), name="ptb")


_TEXT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


class _Fractions(click.ParamType[tuple[float, ...]]):
    """Three fractions > 0 that sum to 1, written ``0.8,0.1,0.1``."""

    name = "fractions"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        try:
            shares = tuple(float(v) for v in str(value).split(","))
        except ValueError:
            shares = ()
        if len(shares) != 3 or not all(0 < f < 1 for f in shares) or abs(sum(shares) - 1) > 1e-6:
            self.fail(f"expected three fractions > 0 that sum to 1 (train,valid,test: 0.8,0.1,0.1), got {value!r}")
        return shares


@train.command("lm")
@click.option(
    "--corpus",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder holding train.txt, valid.txt and test.txt (instead of the three options below).",
)
@click.option("--train", "train_file", type=_TEXT_FILE, help="Training text (UTF-8); the vocabulary comes from it.")
@click.option("--valid", "valid_file", type=_TEXT_FILE, help="Validation text (UTF-8).")
@click.option("--test", "test_file", type=_TEXT_FILE, help="Test text (UTF-8).")
@click.option(
    "--split",
    type=_Fractions(),
    metavar="TRAIN,VALID,TEST",
    help="Cut the one --train file by lines, in order, into training, validation and test text (e.g. 0.8,0.1,0.1); "
    "the parts are written to RUN_DIR/text/ and recorded in the run.",
)
@click.option(
    "--tokens",
    type=click.Choice(["words", "chars"]),
    default="words",
    show_default=True,
    help="Predict the next word (split on whitespace) or the next character; every line ends with <eos>.",
)
@click.option(
    "--max-vocab",
    type=click.IntRange(min=3),
    default=None,
    help="Keep the most frequent tokens of the training text, <unk> and <eos> included (ties by the token).",
)
@click.option(
    "--min-count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Leave out tokens seen fewer times in the training text (they read as <unk>).",
)
@lambda func: _run_options(func, data=False)
@config_options(LanguageModelConfig, skip=_LM_FIXED)
@config_options(LanguageTrainConfig)
def train_lm(
    corpus: Path | None,
    train_file: Path | None,
    valid_file: Path | None,
    test_file: Path | None,
    split: tuple[float, float, float] | None,
    tokens: str,
    max_vocab: int | None,
    min_count: int,
    **kw: Any,
) -> None:
    """Language model on any UTF-8 text, by words or by characters (--tokens chars); works under torchrun.

    Give --corpus FOLDER, or --train, --valid and --test, or one file cut in three: --train FILE
    --split 0.8,0.1,0.1. Penn Treebank's presets are `train ptb`.
    """
    files = (train_file, valid_file, test_file)
    if corpus is not None and any(files):
        raise click.UsageError("give either --corpus or --train/--valid/--test, not both")
    if split is not None and (train_file is None or valid_file or test_file):
        raise click.UsageError("--split cuts the one --train file in three: give --train FILE alone with it")
    if corpus is None and split is None and not all(files):
        missing = [n for n, f in zip(("--train", "--valid", "--test"), files, strict=True) if f is None]
        raise click.UsageError(
            f"give --corpus FOLDER, all of --train, --valid and --test (missing {', '.join(missing)}), or one file "
            "with --train FILE --split 0.8,0.1,0.1"
        )
    require_training_extra()
    from rnnedge.data.corpus import corpus_files, load_text_corpus

    paths: tuple[Path, ...]
    if corpus is not None:
        paths = corpus_files(corpus)
    elif split is not None and train_file is not None:
        paths = _split_into_run(train_file, split, kw)
    else:
        paths = tuple(f for f in files if f is not None)
    text = load_text_corpus(*paths, tokens=tokens, max_vocab=max_vocab, min_count=min_count)
    if split is not None and train_file is not None:
        counts = [len(p.read_text(encoding="utf-8").splitlines()) for p in paths]
        text = replace(text, split={"file": str(train_file.resolve()), "fractions": list(split), "lines": counts})
    model_cfg = config_values(LanguageModelConfig, kw, vocab_size=len(text.vocabulary))
    _train_lm_run(model_cfg, config_values(LanguageTrainConfig, kw), kw, corpus=text)


def _split_into_run(train_file: Path, split: tuple[float, float, float], kw: Mapping[str, Any]) -> tuple[Path, ...]:
    """``--split``: the parts of ``train_file`` written to RUN_DIR/text/ once the run folder is accepted."""
    from rnnedge.data.corpus import split_text_file, write_corpus_files
    from rnnedge.training.run_dir import open_run

    run = open_run(kw["out"], resume=kw["resume"], overwrite=kw["overwrite"], quiet=True)
    return write_corpus_files(split_text_file(train_file, split), run.path / "text", replace=kw["overwrite"])


@click.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))
def plot(run_dir: Path) -> None:
    """Redraw RUN_DIR/curves.png from the run's metrics (needs the 'plot' extra)."""
    from rnnedge.training.plots import plot_run

    click.echo(f"wrote {plot_run(run_dir)}")
