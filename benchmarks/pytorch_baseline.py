"""The two PyTorch contenders every side-by-side benchmark times: eager as installed, and tuned for batch 1."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")  # printed by mkldnn.flags()


def pytorch_contenders(run: Callable[[], object]) -> dict[str, Callable[[], object]]:
    """``run`` with PyTorch's default threads, and tuned: one thread and mkldnn off (faster at batch 1).

    The tuned contender restores the default thread count after each call, so the two can be
    interleaved with each other and with the onnxruntime contenders.
    """
    default_threads = torch.get_num_threads()

    def tuned() -> None:
        torch.set_num_threads(1)
        try:
            with torch.backends.mkldnn.flags(enabled=False):
                run()
        finally:
            torch.set_num_threads(default_threads)

    return {f"pytorch eager ({default_threads} threads)": run, "pytorch tuned (1 thread, no mkldnn)": tuned}
