"""What the server computes from a step's probabilities: the runtime's top-k and sampler (one of each).

``top_k_rows`` serves many rows at once; ``sample`` is the specified sampler of docs/metadata.md
(section 5), so ``generate`` through the server gives the words the runtimes give for a seed.
"""

from __future__ import annotations

from rnnedge.runtime.sampling import Pcg32, sample, top_k_ids

__all__ = ["Pcg32", "sample", "top_k_rows"]

top_k_rows = top_k_ids
