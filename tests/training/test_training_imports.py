"""What the training stage imports: never the runtime or export; its configs and run folder without torch."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_training_imports_neither_runtime_nor_export() -> None:
    loaded = _modules_after(
        "import rnnedge.training.train_sequences, rnnedge.training.train_lm, rnnedge.training.loop, "
        "rnnedge.training.kinds, rnnedge.training.plots"
    )
    assert not {m for m in loaded if m.startswith(("rnnedge.runtime", "rnnedge.export", "onnx"))}


def test_configs_and_run_folders_need_no_torch() -> None:
    """The command line builds its train options from the configs at start-up, on a base install too."""
    loaded = _modules_after("import rnnedge.training.config, rnnedge.training.run_dir, rnnedge.cli.train")
    assert "torch" not in loaded and "rnnedge.training.loop" not in loaded
