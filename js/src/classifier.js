// Sequence classifiers (a user's sequences of rows; MNIST images read row by row): predict and streams of rows.
//
// Graph contract (docs/metadata.md): input float32 (batch, sequence, features), already
// standardised; outputs logits and probs float32 (batch, classes) for the whole prefix seen so
// far. Raw inputs (any finite real numbers: plain arrays, typed arrays) become
// (x - mean[f]) / std[f] per channel as the metadata's standardize says, in float32 and in the
// order the Python runtime applies it.

import { InputError, StateError } from './errors.js';
import { describe, flatten } from './inputs.js';
import { registerKind } from './kinds.js';
import { Model, allFinite } from './model.js';
import { topKIds } from './sampling.js';

export const MAX_EXACT_ROWS = 2 ** 24; // float32 counts rows exactly up to here
const f32 = Math.fround;
const REAL_TYPES = new Set(['number', 'float32', 'float64', 'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32']);
const FLOAT32_MAX = 3.4028234663852886e38;

export class ClassifierModel extends Model {
  /** Class names, indexed like the probabilities. */
  get labels() {
    return this.metadata.labels;
  }

  /** The k most probable labels of `probs` (classes,), most probable first (ties by index): [{label, probability}]. */
  topK(probs, k = 5) {
    const classes = this.labels.length;
    if (!Number.isInteger(k) || k < 1 || k > classes) throw new InputError(`k must be an integer in [1, ${classes}], got ${k}`);
    if (!probs || probs.length !== classes || typeof probs[0] !== 'number') {
      throw new InputError(`probs must be one result (${classes} values), got ${describe(probs)}`);
    }
    return topKIds(probs, k).map((i) => ({ label: this.labels[i], probability: probs[i] }));
  }

  /** Values per row: the channels of a user's sequences (28 for MNIST). */
  get featureSize() {
    return this.metadata.input.shape[2];
  }

  /**
   * Raw values (any finite real numbers) -> (x - mean[f]) / std[f] in float32, per channel. `rows` is
   * anything `flatten` takes (nested arrays, a typed array, {data, dims}) whose last axis is featureSize.
   * Returns {data, dims}.
   */
  preprocess(rows, what = 'rows') {
    return this.#standardiseChannels(rows, what);
  }

  #standardiseChannels(rows, what) {
    const { data, dims, type } = flatten(rows, what);
    const size = data.length;
    const f = this.featureSize;
    if (size === 0) throw new InputError(`${what} must not be empty, got ${describe(rows)}`);
    if (dims[dims.length - 1] !== f) throw new InputError(`each row must have ${f} values (channels), got ${describe(rows)}`);
    if (!REAL_TYPES.has(type)) throw new InputError(`${what} must be numbers (ints or floats), got ${describe(rows)}`);
    if (!allFinite(data)) throw new InputError(`${what} contain NaN or infinity (${describe(rows)})`);
    const out = new Float32Array(size);
    const { mean, std } = this.metadata.standardize;
    const m = mean.map(f32);
    const sd = std.map(f32);
    for (let i = 0; i < size; i++) {
      if (Math.abs(data[i]) > FLOAT32_MAX) {
        throw new InputError(`${what} hold values beyond float32's range (${data[i]}, ${describe(rows)})`);
      }
      const c = i % f;
      out[i] = f32(f32(f32(data[i]) - m[c]) / sd[c]);
    }
    return { data: out, dims };
  }

  /**
   * Class probabilities for images (N, T, features): nested arrays ([image][row] of Uint8Array
   * rows or number arrays) or {data, dims}. Any T >= 1 (a prefix of rows).
   * Resolves to one Float32Array(classes) per image.
   */
  async predict(images, { batchSize = 256 } = {}) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be an integer >= 1, got ${batchSize}`);
    if (Array.isArray(images) && images.length > 1 && images.some((s) => s?.length !== images[0]?.length)) {
      return this.#predictList(images, batchSize);
    }
    const x = this.preprocess(images, 'images');
    if (x.dims.length !== 3) {
      throw new InputError(`images must have shape [N, T, ${this.featureSize}], got ${describe(images)}`);
    }
    const [n, t, f] = x.dims;
    const classes = this.labels.length;
    const out = [];
    for (let lo = 0; lo < n; lo += batchSize) {
      const b = Math.min(batchSize, n - lo);
      const chunk = { data: x.data.subarray(lo * t * f, (lo + b) * t * f), dims: [b, t, f] };
      const { outputs } = await this.runState(chunk, this.initState(b), ['probs']);
      for (let i = 0; i < b; i++) out.push(outputs.probs.data.slice(i * classes, (i + 1) * classes));
    }
    return out;
  }

  /**
   * Each of `sequences` preprocessed to a [T, F] tensor; an error names the sequence.
   * @param {Array<unknown>} sequences
   */
  preprocessSequences(sequences) {
    const f = this.featureSize;
    return sequences.map((s, i) => {
      let x;
      try {
        x = this.preprocess(s, `sequence ${i}`);
      } catch (e) {
        if (e instanceof InputError) throw new InputError(`sequence ${i}: ${e.message}`);
        throw e;
      }
      if (x.dims.length !== 2) throw new InputError(`sequence ${i} must have shape [T, ${f}] with T >= 1, got ${describe(s)}`);
      return x;
    });
  }

  /**
   * predict of sequences of different lengths: padded and run with lengths (files whose graph takes
   * them), else grouped by length. Each result is what that sequence alone gives.
   */
  async #predictList(sequences, batchSize) {
    const f = this.featureSize;
    const rows = this.preprocessSequences(sequences);
    const classes = this.labels.length;
    const result = new Array(rows.length);
    const groups = [];
    if (this.metadata.lengths) {
      for (let lo = 0; lo < rows.length; lo += batchSize) groups.push(rows.slice(lo, lo + batchSize).map((_, j) => lo + j));
    } else {
      const byLength = new Map(); // an older file: one call per length, no padding
      rows.forEach((r, i) => byLength.set(r.dims[0], [...(byLength.get(r.dims[0]) ?? []), i]));
      for (const members of byLength.values()) {
        for (let lo = 0; lo < members.length; lo += batchSize) groups.push(members.slice(lo, lo + batchSize));
      }
    }
    for (const idx of groups) {
      const steps = Math.max(...idx.map((i) => rows[i].dims[0]));
      const data = new Float32Array(idx.length * steps * f); // (B, T_max, F), zero padding
      idx.forEach((i, j) => data.set(rows[i].data, j * steps * f));
      const lengths = this.metadata.lengths ? BigInt64Array.from(idx, (i) => BigInt(rows[i].dims[0])) : null;
      const { outputs } = await this.runState({ data, dims: [idx.length, steps, f] }, this.initState(idx.length), ['probs'], lengths);
      idx.forEach((i, j) => (result[i] = outputs.probs.data.slice(j * classes, (j + 1) * classes)));
    }
    return result;
  }

  /**
   * A stream's feed: one row (featureSize values) or rows (T x featureSize) -> the graph input
   * {data, dims: [1, T, F]}; the feed resolves to class probabilities Float32Array(classes). For a
   * non-causal model (bidirectional, or with a convolutional branch) every feed re-reads the whole prefix, so a feed costs
   * O(prefix length); the result is what predict gives on the prefix.
   */
  streamInput(rows) {
    const x = this.preprocess(rows, 'rows');
    if (x.dims.length === 1) return { data: x.data, dims: [1, 1, x.dims[0]] };
    if (x.dims.length === 2) return { data: x.data, dims: [1, ...x.dims] };
    throw new InputError(`feed takes one row [${this.featureSize}] or rows [T, ${this.featureSize}], got ${describe(rows)}`);
  }

  streamOutputNames() {
    return ['probs'];
  }

  /** Refuse to count rows past what the float32 `steps` state holds exactly (the mean would drift). */
  guard(x, parts) {
    const steps = parts.get('steps');
    if (!steps) return;
    let seen = 0;
    for (const v of steps.data) seen = Math.max(seen, v);
    if (seen + x.dims[1] > MAX_EXACT_ROWS) {
      throw new InputError(
        `a sequence can hold at most ${MAX_EXACT_ROWS} rows (the row count is float32); this feed of ${x.dims[1]} rows would pass it after ${seen}: reset the stream`,
      );
    }
  }

  /** A bidirectional state's row count must be the length of the prefix it holds (else the mean is wrong). */
  checkParts(parts, finite = false) {
    const batch = super.checkParts(parts, finite);
    const steps = parts.get('steps');
    const prefix = parts.get('prefix');
    if (steps && prefix && !steps.data.every((v) => v === prefix.dims[1])) {
      throw new StateError(`state part steps says ${[...new Set(steps.data)].slice(0, 5)} rows, but the prefix holds ${prefix.dims[1]}`);
    }
    return batch;
  }
}

registerKind('causal_classifier', ClassifierModel);
registerKind('noncausal_classifier', ClassifierModel);
