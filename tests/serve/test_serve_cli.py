"""The `rnnedge serve` command: the base install stays light, a missing extra is named, bad settings are refused."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import serve_harness  # noqa: F401  (skips this module without the serve extra)

_BLOCK_SERVE_EXTRA = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('websockets', 'prometheus_client'): raise ImportError(name, name=name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from rnnedge.cli.main import cli\n"
    "cli(sys.argv[1:])\n"
)


def _cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    prog = code or "import sys\nfrom rnnedge.cli.main import cli\ncli(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", prog, *args], capture_output=True, text=True, timeout=60)


def test_help_imports_neither_websockets_nor_prometheus() -> None:
    probe = (
        "import sys\nfrom rnnedge.cli.main import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('websockets', 'prometheus_client', 'rnnedge.serve') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().endswith("[]"), done.stdout + done.stderr
    assert "serve" in done.stdout


def test_serve_without_the_extra_names_it(tiny_lm_onnx: Path) -> None:
    done = _cli("serve", str(tiny_lm_onnx), code=_BLOCK_SERVE_EXTRA)
    assert done.returncode == 1
    assert done.stderr.strip() in {  # the first of the extra's modules the server imports
        f"Error: MissingExtraError: rnnedge serve needs {module}; install the serve extra: pip install 'rnnedge[serve]'"
        for module in ("websockets", "prometheus_client")
    }


def test_bad_settings_and_models_are_one_line_errors(tiny_lm_onnx: Path, tiny_bi_onnx: Path) -> None:
    for args, fragment in (
        (["--max-batch", "0"], "Invalid value for '--max-batch': 0 is not in the range x>=1"),
        (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range 0<=x<=65535"),
        (["--max-message-bytes", "10"], "Invalid value for '--max-message-bytes'"),
    ):
        done = _cli("serve", str(tiny_lm_onnx), *args)
        assert done.returncode == 2 and fragment in done.stderr, done.stderr
    done = _cli("serve", str(tiny_bi_onnx), "--port", "0")
    assert done.returncode == 1 and "Error: ConfigError: serve: " in done.stderr
    assert "is a noncausal_classifier model" in done.stderr and "serves causal models only" in done.stderr
    assert "Traceback" not in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("serve", str(tiny_lm_onnx), "--port", str(port))
    assert done.returncode == 1 and f"Error: ConfigError: serve: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    done = _cli("serve", str(tiny_lm_onnx), str(tiny_lm_onnx), "--port", "0")
    assert done.returncode == 1 and "two model files are named 'tiny-lm'" in done.stderr
