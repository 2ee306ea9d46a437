"""``serve`` for per-frame taggers: frames in as a classifier's rows, one distribution per frame fed out.

A feed of ``T`` frames (at most the runtime's ``STREAM_WINDOW``: a longer one is refused with the
runtime's ``InputError`` and changes nothing) answers ``T`` rows of probabilities and ``T`` lists of
top-k pairs; ``top_k`` afterwards reads the last frame's.
"""

from __future__ import annotations

from dataclasses import replace

from .classifier_kind import ROWS
from .kinds import register_serve_kind
from .outcomes import per_frame

register_serve_kind(("tagger",), replace(ROWS, unit="frames", outcomes=per_frame))
