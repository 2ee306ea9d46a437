"""How text becomes tokens: the one tokeniser that training, the runtime and docs/metadata.md share."""

from __future__ import annotations

__all__ = ["tokenize_lines"]


def tokenize_lines(text: str, eos: str = "<eos>") -> list[str]:
    """PTB tokenisation: the words of every line, each line closed by ``eos`` (a blank line is just ``eos``).

    The one tokeniser of rnnedge: training reads the corpus with it too, as the reference does.
    """
    words: list[str] = []
    for line in text.splitlines():
        words.extend(line.split())
        words.append(eos)
    return words
