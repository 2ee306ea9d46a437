"""The runtime never imports torch or onnx, directly or indirectly."""

from __future__ import annotations

import subprocess
import sys


def test_runtime_and_cli_import_without_torch_or_onnx() -> None:
    code = (
        "import sys, rnnedge.runtime, rnnedge.cli.main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'onnxscript'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_runtime_modules_do_not_mention_torch() -> None:
    import pathlib

    import rnnedge.runtime

    folder = pathlib.Path(rnnedge.runtime.__file__).parent
    for path in folder.glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            assert not stripped.startswith(("import torch", "from torch", "import onnx\n", "from onnx ")), path


def test_errors_and_text_tokens_import_without_numpy_or_onnxruntime() -> None:
    code = (
        "import sys, rnnedge.errors, rnnedge.data.text; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'onnxruntime', 'torch', 'onnx'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
