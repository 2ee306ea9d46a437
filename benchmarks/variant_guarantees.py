"""What holds for which variant: how far a result moves with the batch it runs in and the chunks it is fed in.

    python benchmarks/variant_guarantees.py CLASSIFIER.onnx CLASSIFIER.int8.onnx [--lm LM.onnx LM.int8.onnx]
        [--data DIR] [--images 64] [--json [PATH]]

For each file, on real MNIST test images (and PTB test text for a language model), prints the
largest absolute difference of the probabilities between:
  - ``predict`` of one image alone and of the same image inside a batch of ``--images``;
  - a stream fed one row at a time and ``predict`` of the whole image;
  - a ``StreamBatch`` member and the same stream fed alone, while the other members get other input;
  - (language models) a stream fed word by word and one fed the same words as one chunk.
float32 files give 0 or float rounding (~1e-7); int8 files are dynamically quantized — onnxruntime
picks one activation scale per tensor per call, over the whole batch and chunk — so their results
move with what else is in the call.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from results import Results, add_json_option

from rnnedge.data.mnist import load_mnist_test
from rnnedge.runtime import ClassifierModel, LanguageModel, load_classifier, load_language_model


def classifier_gaps(model: ClassifierModel, images: np.ndarray) -> dict[str, float]:
    """Largest |difference| of class probabilities between ways of running the same images."""
    batch = model.predict(images)
    alone = np.concatenate([model.predict(images[i : i + 1]) for i in range(len(images))])
    streamed = []
    for image in images:
        stream = model.stream()
        for row in image:
            last = stream.feed(row)
        streamed.append(last)
    gaps = {
        "predict: alone vs in a batch": float(np.abs(alone - batch).max()),
        "stream row by row vs predict": float(np.abs(np.stack(streamed) - alone).max()),
    }
    if model.causal:
        members = model.stream_batch()
        for i in range(len(images)):
            members.add(i)
        rng = np.random.default_rng(0)
        lone = model.stream()
        gap = 0.0
        for t in range(images.shape[1]):
            rows = {i: images[i, t] for i in range(len(images))}
            rows.update({i: rng.integers(0, 256, images.shape[2], dtype=np.uint8) for i in range(1, len(images))})
            gap = max(gap, float(np.abs(members.feed(rows)[0] - lone.feed(images[0, t])).max()))
        gaps["StreamBatch member vs alone"] = gap
    return gaps


def language_gaps(model: LanguageModel, words: list[str], streams: int) -> dict[str, float]:
    """Largest |difference| of next-word probabilities between ways of feeding the same words."""
    one, chunk = model.stream(), model.stream()
    word_by_word = [one.feed([w]) for w in words][-1]
    gaps = {"stream word by word vs one chunk": float(np.abs(word_by_word - chunk.feed(words)).max())}
    members = model.stream_batch()
    for i in range(streams):
        members.add(i)
    lone = model.stream()
    rng = np.random.default_rng(0)
    gap = 0.0
    for w in words:
        feeds: dict[int, object] = {i: [int(rng.integers(model.vocab_size))] for i in range(1, streams)}
        feeds[0] = [w]
        gap = max(gap, float(np.abs(members.feed(feeds)[0] - lone.feed([w])).max()))
    gaps["StreamBatch member vs alone"] = gap
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("classifiers", nargs="+", type=Path, help="classifier files (float32, int8, ...)")
    parser.add_argument("--lm", nargs="*", type=Path, default=[], help="language-model files")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--images", type=int, default=64)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("variant_guarantees", __doc__, models=[*args.classifiers, *args.lm])
    images = load_mnist_test(args.data)[0][: args.images]
    rows: list[tuple[str, str, float]] = []
    for path in args.classifiers:
        with load_classifier(path) as model:
            rows += [(path.name, what, gap) for what, gap in classifier_gaps(model, images).items()]
    if args.lm:
        from rnnedge.data.datasets import resolve_data_dir

        text = (resolve_data_dir(args.data)[0] / "ptb" / "ptb.test.txt").read_text().split()[:40]
        for path in args.lm:
            with load_language_model(path) as model:
                rows += [(path.name, what, gap) for what, gap in language_gaps(model, text, args.images).items()]
    width = max(len(r[0]) for r in rows)
    print(f"{'file':<{width}}  {'comparison':<36}  largest |difference|")
    table = results.table(
        "Largest absolute difference of the probabilities", ["file", "comparison", "largest |difference|"]
    )
    for name, what, gap in rows:
        print(f"{name:<{width}}  {what:<36}  {gap:.2e}")
        table.add(name, what, gap)
    results.write(args.json)


if __name__ == "__main__":
    main()
