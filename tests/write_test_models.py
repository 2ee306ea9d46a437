"""Write the test suite's tiny real models into a folder, for running the runtime's tests on the base install.

    python tests/write_test_models.py OUT_DIR        (needs the train extra and the datasets)

Then, in an environment with only the base install and pytest:
    RNNEDGE_TEST_MODELS=OUT_DIR python -m pytest tests/runtime
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from conftest import _data_dir, train_tiny, train_tiny_lm
from sequence_models import write_sequence_models

from rnnedge.export.exporter import export_checkpoint


def main(out: Path) -> None:
    data = _data_dir()
    if data is None:
        raise SystemExit("real datasets not found: set RNNEDGE_DATA to a folder holding mnist/ and ptb/")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        runs = Path(work)
        export_checkpoint(train_tiny(data, runs / "lstm"), out / "tiny.onnx")
        export_checkpoint(train_tiny(data, runs / "bilstm", bidirectional=True), out / "tiny-bi.onnx")
        export_checkpoint(train_tiny_lm(data, runs / "lm"), out / "tiny-lm.onnx")
        write_sequence_models(runs)  # the sequence classifiers' files, copied without their checkpoints
        for model in runs.glob("sequence-*.onnx"):
            (out / model.name).write_bytes(model.read_bytes())
        sys.path.insert(0, str(Path(__file__).parent / "runtime"))
        from test_tagger import write_tagger

        write_tagger(out / "tagger.onnx")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
