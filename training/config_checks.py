"""Range checks for the configuration dataclasses, run when a configuration is made.

The command line validates its options with click's types; these checks give a program
(or a checkpoint's stored config) the same guarantee, as a :class:`ConfigError` that
names every bad field, its value and what is allowed, instead of a failure deep in torch.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rnnedge.errors import ConfigError

__all__ = ["BOOL", "Rule", "check_config", "int_at_least", "number_in", "one_of", "optional"]


@dataclass(frozen=True)
class Rule:
    """A test a field's value must pass, and how the error describes the values it allows.

    The other fields say the same in a form the command line turns into its option types
    (``value_type`` "int", "float", "choice" or "bool"; the bounds; whether ``None`` is allowed), so
    an option and its field can never disagree about the range.
    """

    test: Callable[[Any], bool]
    allowed: str
    value_type: str = "any"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def int_at_least(low: int) -> Rule:
    """An int (not a bool) ``>= low``."""
    return Rule(lambda v: _is_int(v) and v >= low, f"an int >= {low}", value_type="int", low=low)


def number_in(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite number in the interval from ``low`` to ``high`` (each end closed unless ``*_open``)."""

    def test(v: Any) -> bool:
        return _is_number(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
    return Rule(
        test,
        f"a finite number in {left}{low:g}, {high:g}{right}",
        value_type="float",
        low=low,
        high=None if high == math.inf else high,
        low_open=low_open,
        high_open=high_open,
    )


def optional(rule: Rule) -> Rule:
    """``None`` or what ``rule`` allows."""
    return replace(rule, test=lambda v: v is None or rule.test(v), allowed=f"None or {rule.allowed}", nullable=True)


def one_of(*choices: str) -> Rule:
    """One of the strings ``choices`` (the command line offers them as a choice)."""
    return Rule(
        lambda v: isinstance(v, str) and v in choices,
        f"one of {', '.join(choices)}",
        value_type="choice",
        choices=choices,
    )


BOOL = Rule(lambda v: isinstance(v, bool), "True or False", value_type="bool")


def check_config(config: Any, rules: Mapping[str, Rule]) -> None:
    """Raise :class:`ConfigError` naming every field of ``config`` whose value breaks its rule."""
    problems = [
        f"{name}={getattr(config, name)!r} (expected {rule.allowed})"
        for name, rule in rules.items()
        if not rule.test(getattr(config, name))
    ]
    if problems:
        raise ConfigError(f"{type(config).__name__} has invalid values: " + "; ".join(problems))
