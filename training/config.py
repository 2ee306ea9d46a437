"""Every configuration training knows, as frozen dataclasses: the networks' shapes and how they are trained.

Torch-free on purpose: the command line builds its ``rnnedge train`` options from these
fields (name, default, range and help) when it starts, on a base install too, so an option
can never drift from its field. Each class checks its values when it is made
(:class:`~rnnedge.errors.ConfigError` naming every bad field), with the rules in ``RULES``
that the command line turns into click's range types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from math import ceil
from typing import Any, ClassVar

from .config_checks import BOOL, Rule, check_config, int_at_least, number_in, one_of, optional

__all__ = [
    "CLASSIFIER_PRESETS",
    "LARGE",
    "MEDIUM",
    "MNIST_BILSTM",
    "MNIST_LSTM",
    "PRESETS",
    "SMALL",
    "STEP_BUDGET",
    "ClassifierPreset",
    "LanguageModelConfig",
    "LanguageTrainConfig",
    "PTBPreset",
    "SequenceClassifierConfig",
    "SequenceTrainConfig",
    "StepBudget",
]


def _field(default: Any, help: str = "", *aliases: str) -> Any:
    """A dataclass field with the help text its command-line option shows (and short flags, e.g. ``--hidden``)."""
    return field(default=default, metadata={"help": help, "aliases": aliases})


_COMMON_TRAINING = {
    "epochs": int_at_least(1),
    "batch_size": int_at_least(1),
    "lr": number_in(0, low_open=True),
    "clip_norm": number_in(0, low_open=True),
    "seed": int_at_least(0),
    "max_steps": optional(int_at_least(1)),
    "checkpoint_every": int_at_least(1),
}


@dataclass(frozen=True)
class SequenceClassifierConfig:
    """A classifier of a user's variable-length sequences (``rnnedge train classifier``).

    ``num_layers`` recurrent layers of ``cell`` (LSTM or GRU; optionally bidirectional, with
    ``dropout`` between layers and before the head), then ``head``: ``mean`` (the mean of the top
    layer's outputs over the valid steps) or ``last`` (its output at the last valid step; both
    directions' final outputs when bidirectional), then a linear layer to the classes. With
    ``conv_channels`` > 0 a convolutional branch reads the same steps beside the recurrence (three
    blocks of convolution, batch norm and ReLU, averaged over the valid steps: the FCN of Wang et al.
    2017, as LSTM-FCN (Karim et al. 2018) pairs it with an LSTM), and the linear layer reads both.
    Padding never counts: training packs the sequences, masks the convolutions past each length,
    and the exported graph takes the lengths.
    """

    RULES: ClassVar[Mapping[str, Rule]] = {
        "input_size": int_at_least(1),
        "num_classes": int_at_least(2),
        "cell": one_of("lstm", "gru"),
        "hidden_size": int_at_least(1),
        "num_layers": int_at_least(1),
        "bidirectional": BOOL,
        "head": one_of("mean", "last"),
        "dropout": number_in(0, 1, high_open=True),
        "conv_channels": int_at_least(0),
    }

    input_size: int = _field(1, "Values per step (set from the data: its channels).")
    num_classes: int = _field(2, "Number of classes (set from the data).")
    cell: str = _field("lstm", "Recurrent cell.")
    hidden_size: int = _field(64, "Hidden size of each layer and direction.", "--hidden")
    num_layers: int = _field(1, "Recurrent layers.", "--layers")
    bidirectional: bool = _field(False, "Read each sequence both ways (not causal: a stream re-reads its prefix).")
    head: str = _field("mean", "What the linear layer reads: the mean of the outputs over time, or the last one.")
    dropout: float = _field(0.0, "Dropout between layers and before the head, during training.")
    conv_channels: int = _field(
        0,
        "Channels of a convolutional branch beside the recurrence (kernels 8, 5, 3; widths C, 2C, C), averaged "
        "over time; 0: none. Not causal (each step's features read later steps): a stream re-reads its prefix.",
        "--conv",
    )

    def __post_init__(self) -> None:
        check_config(self, self.RULES)

    @property
    def causal(self) -> bool:
        """Each result depends only on the steps up to it, so a stream carries state instead of its prefix."""
        return not self.bidirectional and self.conv_channels == 0


@dataclass(frozen=True)
class SequenceTrainConfig:
    """Optimisation settings of ``rnnedge train classifier``: Adam, cosine from ``lr`` to ``min_lr``."""

    RULES: ClassVar[Mapping[str, Rule]] = {
        **_COMMON_TRAINING,
        "epochs": optional(int_at_least(1)),
        "batch_size": optional(int_at_least(1)),
        "patience": int_at_least(0),
        "min_lr": number_in(0),
        "weight_decay": number_in(0),
        "noise": number_in(0),
        "shift": int_at_least(0),
        "normalize": one_of("channel", "global"),
        "valid_fraction": number_in(0, 1, high_open=True),
    }

    epochs: int | None = _field(
        None,
        "Passes over the training sequences (at most, with --patience). Default: 100, or with --patience as many "
        "as 1,000 optimizer steps need, if more (small data).",
    )
    batch_size: int | None = _field(
        None,
        "Sequences per step (default: a tenth of the training sequences, at least 4 and at most 32, never more "
        "than there are).",
    )
    patience: int = _field(
        20,
        "Stop when validation has not improved for this many epochs (and 100 optimizer steps; not before a "
        "quarter of --epochs and 500 steps, 1,000 while at chance), and keep the best epoch's weights (0: train "
        "every epoch, keep the last).",
    )
    lr: float = _field(3e-3, "Adam's learning rate at the start of the cosine.")
    min_lr: float = _field(1e-5, "Learning rate at the end of the cosine.")
    weight_decay: float = _field(0.0, "Adam's L2 penalty on the weights.")
    noise: float = _field(0.0, "Std of Gaussian noise added to each normalised training value (augmentation).")
    shift: int = _field(
        0,
        "Largest random translation of a training sequence, in steps and in channels, the uncovered part reading "
        "as raw zeros (augmentation for images read row by row; equal lengths and --normalize global only).",
    )
    normalize: str = _field(
        "channel", "Standardise each channel with its own mean and std, or all with the mean and std of every value."
    )
    clip_norm: float = _field(1.0, "Gradient norm clipping.")
    seed: int = _field(0, "Seed of the initial weights, the shuffle and the validation split.")
    max_steps: int | None = _field(None, "Stop after this many steps.")
    checkpoint_every: int = _field(200, "Steps between checkpoints.")
    valid_fraction: float = _field(
        0.2, "Without --valid: the share of each class held out of --train for validation (0: none)."
    )

    def __post_init__(self) -> None:
        check_config(self, self.RULES)


@dataclass(frozen=True)
class StepBudget:
    """How long a classifier with early stopping trains, counted in optimizer steps rather than epochs.

    A small training set gives few steps an epoch (40 cases in batches of 8: five), and a recurrent model
    on long sequences may sit at chance for hundreds of steps before it learns; rules in epochs alone
    would judge it after a few dozen steps. So, with early stopping on (``patience`` > 0 and a validation
    split): ``epochs`` not given is ``default_epochs`` or as many as ``min_steps`` steps need, if more; the
    run neither stops early nor (under ``--tune``) is pruned before ``warmup_steps`` (before ``min_steps``
    while its validation accuracy has never been above chance); and it waits at least ``patience_steps``
    steps for a better validation. A training set with many steps an epoch meets
    all three within its epochs, so for it nothing changes. Epochs given are the most a run takes.
    """

    default_epochs: int = 100
    min_steps: int = 1000
    warmup_steps: int = 500
    patience_steps: int = 100

    def epochs(self, steps_per_epoch: int, epochs: int | None, early_stopping: bool) -> int:
        """The epochs a run may take: ``epochs`` if given, else the default, or more for ``min_steps``."""
        if epochs is not None:
            return epochs
        if not early_stopping:
            return self.default_epochs
        return max(self.default_epochs, ceil(self.min_steps / steps_per_epoch))

    def warmup_epochs(self, steps_per_epoch: int, at_chance: bool = False) -> int:
        """Epochs before early stopping may act (``at_chance``: the validation never rose above chance)."""
        return ceil((self.min_steps if at_chance else self.warmup_steps) / steps_per_epoch)

    def patience(self, steps_per_epoch: int, patience: int) -> int:
        """Epochs without a better validation before a run stops: ``patience``, or more for ``patience_steps``."""
        return max(patience, ceil(self.patience_steps / steps_per_epoch))


STEP_BUDGET = StepBudget()


@dataclass(frozen=True)
class LanguageModelConfig:
    """A recurrent language model of words or characters (Zaremba et al. 2014's shape; LSTM or GRU layers)."""

    RULES: ClassVar[Mapping[str, Rule]] = {
        "cell": one_of("lstm", "gru"),
        "vocab_size": int_at_least(2),
        "hidden_size": int_at_least(1),
        "num_layers": int_at_least(1),
        "dropout": number_in(0, 1, high_open=True),
        "init_scale": number_in(0, low_open=True),
        "tie_weights": BOOL,
    }

    cell: str = _field(
        "lstm",
        "Recurrent cell: LSTM (state h, c) or GRU (state h; no int8 variant: onnxruntime has no int8 GRU kernel).",
    )
    vocab_size: int = _field(10000, "Tokens in the vocabulary (set from the corpus).")
    hidden_size: int = _field(200, "Embedding and recurrent hidden size.")
    num_layers: int = _field(2, "Recurrent layers.")
    dropout: float = _field(0.0, "Dropout probability.")
    init_scale: float = _field(0.1, "Weights start uniform in [-init_scale, init_scale].")
    tie_weights: bool = _field(False, "Share embedding and output weights (Press & Wolf 2017).")

    def __post_init__(self) -> None:
        check_config(self, self.RULES)


@dataclass(frozen=True)
class LanguageTrainConfig:
    """Optimisation settings of every language model (words or characters, any corpus): Zaremba et al.'s schedule.

    Epoch ``e`` (from 0) runs at ``lr * lr_decay ** max(e + 1 - decay_after, 0)``.
    """

    RULES: ClassVar[Mapping[str, Rule]] = {
        **_COMMON_TRAINING,
        "num_steps": int_at_least(1),
        "lr_decay": number_in(0, 1, low_open=True),
        "decay_after": int_at_least(0),
    }

    epochs: int = _field(13, "Passes over the training text.")
    batch_size: int = _field(20, "Parallel rows of text.")
    num_steps: int = _field(20, "Words per truncated-BPTT window.")
    lr: float = _field(1.0, "SGD learning rate.")
    lr_decay: float = _field(0.5, "Factor applied to the learning rate once per epoch after decay_after epochs.")
    decay_after: int = _field(4, "Epochs at the full learning rate.")
    clip_norm: float = _field(5.0, "Gradient norm clipping.")
    seed: int = _field(0, "Seed of the initial weights and the dropout masks.")
    max_steps: int | None = _field(None, "Stop after this many steps.")
    checkpoint_every: int = _field(500, "Steps between checkpoints.")

    def __post_init__(self) -> None:
        check_config(self, self.RULES)


@dataclass(frozen=True)
class PTBPreset:
    """A reference configuration: the network and how it is trained."""

    model: LanguageModelConfig
    train: LanguageTrainConfig


SMALL = PTBPreset(
    LanguageModelConfig(hidden_size=200, num_layers=2, dropout=0.0, init_scale=0.1),
    LanguageTrainConfig(epochs=13, num_steps=20, lr=1.0, lr_decay=0.5, decay_after=4, clip_norm=5.0),
)
MEDIUM = PTBPreset(
    LanguageModelConfig(hidden_size=650, num_layers=2, dropout=0.5, init_scale=0.05),
    LanguageTrainConfig(epochs=39, num_steps=35, lr=1.0, lr_decay=0.8, decay_after=6, clip_norm=5.0),
)
LARGE = PTBPreset(
    LanguageModelConfig(hidden_size=1500, num_layers=2, dropout=0.65, init_scale=0.04),
    LanguageTrainConfig(epochs=55, num_steps=35, lr=1.0, lr_decay=1 / 1.15, decay_after=14, clip_norm=10.0),
)
PRESETS = {"small": SMALL, "medium": MEDIUM, "large": LARGE}


@dataclass(frozen=True)
class ClassifierPreset:
    """A seed classifier: ``rnnedge train classifier``'s network and training settings for its data."""

    model: SequenceClassifierConfig
    train: SequenceTrainConfig


# MNIST read row by row: 28 rows of 28 pixels, one LSTM layer of 128, mean over time. Pixels are
# standardised with the mean and std of all training pixels; random shifts of up to 2 pixels keep the
# row-LSTM from overfitting; 1/12 of each digit's training images (5,002 in all) validate.
MNIST_LSTM = ClassifierPreset(
    SequenceClassifierConfig(input_size=28, num_classes=10, cell="lstm", hidden_size=128, head="mean"),
    SequenceTrainConfig(
        epochs=30,
        batch_size=128,
        lr=2e-3,
        min_lr=1e-5,
        clip_norm=1.0,
        shift=2,
        normalize="global",
        valid_fraction=1 / 12,
    ),
)
MNIST_BILSTM = ClassifierPreset(replace(MNIST_LSTM.model, bidirectional=True), MNIST_LSTM.train)
CLASSIFIER_PRESETS = {"mnist-lstm": MNIST_LSTM, "mnist-bilstm": MNIST_BILSTM}
