// Per-frame taggers: one label distribution per input frame (voice activity, events, per-step flags), causal.
//
// Graph contract (docs/metadata.md, runtime/tagger.py): input x float32 (batch, sequence, features)
// and lengths int64 (batch,); outputs logits and probs float32 (batch, sequence, classes), frame t's
// from the frames up to t. Raw frames are normalised per channel with the metadata's standardize,
// exactly as a classifier's rows are (ClassifierModel.preprocess). A stream's feed resolves to one
// Float32Array(classes) per frame fed.

import { ClassifierModel } from './classifier.js';
import { InputError } from './errors.js';
import { describe } from './inputs.js';
import { registerKind } from './kinds.js';
import { STREAM_WINDOW } from './model.js';

export class TaggerModel extends ClassifierModel {
  /** The k most probable labels of one frame, or of the last frame of a feed's result (T frames). */
  topK(probs, k = 5) {
    const frame = Array.isArray(probs) && probs.length > 0 && typeof probs[0] !== 'number' ? probs[probs.length - 1] : probs;
    return super.topK(frame, k);
  }

  /**
   * Label probabilities for every frame of each sequence: `sequences` is a list of sequences, each
   * nested arrays [T][features] or {data, dims: [T, F]}, of any lengths (run padded, with lengths).
   * Resolves to one array per sequence of T Float32Array(classes), what that sequence alone gives.
   */
  async predict(sequences, { batchSize = 256 } = {}) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be an integer >= 1, got ${batchSize}`);
    if (!Array.isArray(sequences) || sequences.length === 0) {
      throw new InputError(`sequences must be a non-empty list of [T, ${this.featureSize}] sequences, got ${describe(sequences)}`);
    }
    const f = this.featureSize;
    const classes = this.labels.length;
    const frames = this.preprocessSequences(sequences);
    const result = [];
    for (let lo = 0; lo < frames.length; lo += batchSize) {
      const part = frames.slice(lo, lo + batchSize);
      const steps = Math.max(...part.map((x) => x.dims[0]));
      const data = new Float32Array(part.length * steps * f); // (B, T_max, F), zero padding
      part.forEach((x, j) => data.set(x.data, j * steps * f));
      const lengths = BigInt64Array.from(part, (x) => BigInt(x.dims[0]));
      const { outputs } = await this.runState({ data, dims: [part.length, steps, f] }, this.initState(part.length), ['probs'], lengths);
      part.forEach((x, j) => result.push(this.#frames(outputs.probs.data, (j * steps) * classes, x.dims[0])));
    }
    return result;
  }

  #frames(data, start, count) {
    const classes = this.labels.length;
    const out = [];
    for (let t = 0; t < count; t++) out.push(data.slice(start + t * classes, start + (t + 1) * classes));
    return out;
  }

  /** One frame (featureSize values) or frames (T x featureSize, T <= STREAM_WINDOW) -> {data, dims: [1, T, F]}. */
  streamInput(frames) {
    const x = super.streamInput(frames);
    if (x.dims[1] > STREAM_WINDOW) {
      throw new InputError(`a tagger's stream takes at most ${STREAM_WINDOW} frames per feed (one result each), got ${x.dims[1]}`);
    }
    return x;
  }

  /** Per sequence of a call, one Float32Array(classes) per frame fed. */
  results(outputs) {
    const [n, steps, classes] = outputs.probs.dims;
    return Array.from({ length: n }, (_, i) => this.#frames(outputs.probs.data, i * steps * classes, steps));
  }
}

registerKind('tagger', TaggerModel);
