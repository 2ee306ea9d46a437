// The loaded model (one onnxruntime session, its metadata, the functional core) and its streams.
//
// `initState` and `step` are the explicit core every other path uses; a Model holds no
// per-caller state, so one instance serves any number of streams. A Stream holds one state
// (batch 1): `feed` advances it, and a failed feed leaves it exactly as it was, because the
// new state is only kept once the whole call succeeded.

import { ConcurrentUseError, InputError, ModelClosedError, StateError } from './errors.js';
import { describe, elementType, flatten, isTensorLike } from './inputs.js';
import { BATCH_AXIS, initialShape } from './metadata.js';
import { State, madeBy, partsOf } from './state.js';

export const STREAM_WINDOW = 256; // a long causal feed runs in windows of this many steps: bounded memory
const MAX_STATE_BYTES = 2 ** 32;
const ARRAY_OF = { float32: Float32Array, float16: Uint16Array, int64: BigInt64Array };
const BYTES_OF = { float32: 4, float16: 2, int64: 8 };

const product = (dims) => dims.reduce((a, b) => a * b, 1);

/** A spec's shape for error messages, e.g. [N, T, 28]. */
export function expectedShape(spec, batch = null) {
  const dims = spec.shape.map((d) => (d === BATCH_AXIS ? (batch ?? 'N') : d === 'sequence' ? 'T' : d));
  return `[${dims.join(', ')}]`;
}

export function allFinite(data) {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return false;
  return true;
}

export class Model {
  #session;
  #ort;
  #tail = Promise.resolve(); // runs on one session are serialised: onnxruntime-web allows one at a time
  #token = Object.freeze({}); // marks the states this model made (they skip the re-check)

  /** Made by `load()`. */
  constructor({ ort, session, metadata, source, backend, threads }) {
    this.#ort = ort;
    this.#session = session;
    /** The parsed rnnedge metadata (docs/metadata.md), frozen. */
    this.metadata = metadata;
    /** Where the model came from (a URL or path, or "bytes"). */
    this.source = source;
    /** "node" (onnxruntime-node) or "wasm" (onnxruntime-web). */
    this.backend = backend;
    /** Intra-op threads onnxruntime runs this model with. */
    this.threads = threads;
    this.stateNames = metadata.states.map((s) => s.name);
    this.outputNames = metadata.outputs.map((o) => o.name);
    this.streamOutputs = this.streamOutputNames();
    this._stateOutputs = metadata.states.map((s) => s.output);
  }

  /** "causal_classifier", "noncausal_classifier" or "language_model". */
  get kind() {
    return this.metadata.kind;
  }

  /** False for models whose output after a chunk depends on the whole prefix (bidirectional). */
  get causal() {
    return this.metadata.causal;
  }

  /** True after dispose(). */
  get disposed() {
    return this.#session === null;
  }

  /** Release the onnxruntime session (its WebAssembly memory); later calls throw ModelClosedError. */
  async dispose() {
    const session = this.#session;
    if (session === null) return;
    this.#session = null;
    await this.#tail; // a run in flight finishes first
    await session.release();
  }

  /** Alias of dispose(). */
  release() {
    return this.dispose();
  }

  toString() {
    return `<${this.constructor.name} ${this.kind} from ${this.source} on ${this.backend}>`;
  }

  // -- the functional core ------------------------------------------------------------------
  /** Zero state for `batch` independent sequences. */
  initState(batch = 1) {
    if (!Number.isInteger(batch) || batch < 1) throw new InputError(`batch must be a positive integer, got ${describe(batch)} ${batch}`);
    const rowBytes = this.metadata.states.reduce((n, s) => n + product(initialShape(s, 1)) * BYTES_OF[s.input.dtype], 0);
    if (batch * rowBytes > MAX_STATE_BYTES) {
      throw new InputError(`batch ${batch} needs ${batch * rowBytes} bytes of state, over the ${MAX_STATE_BYTES}-byte limit`);
    }
    const parts = new Map();
    for (const s of this.metadata.states) {
      const dims = initialShape(s, batch);
      parts.set(s.name, { dtype: s.input.dtype, dims, data: new ARRAY_OF[s.input.dtype](product(dims)) });
    }
    return new State(this.metadata.modelId, parts, batch, this.#token);
  }

  /** Return `state` if it fits this model (and `batch`); else throw StateError. */
  checkState(state, batch = null) {
    if (state instanceof State && madeBy(state) === this.#token) {
      if (batch !== null && state.batchSize !== batch) {
        throw new StateError(`state holds batch ${state.batchSize}, the input has batch ${batch}`);
      }
      return state;
    }
    if (!(state instanceof State)) {
      if (state !== null && typeof state === 'object') return this.checkState(this.stateFromArrays(state), batch);
      throw new StateError(`state must be an rnnedge State or {name: {dims, data}} arrays, got ${describe(state)}`);
    }
    if (state.modelId !== this.metadata.modelId) {
      throw new StateError(
        `state belongs to model ${state.modelId}, not to this model (${this.metadata.modelId}); make one with initState()`,
      );
    }
    const size = this.checkParts(partsOf(state));
    if (size !== state.batchSize) throw new StateError(`state says batch ${state.batchSize}, its arrays hold batch ${size}`);
    if (batch !== null && state.batchSize !== batch) {
      throw new StateError(`state holds batch ${state.batchSize}, the input has batch ${batch}`);
    }
    return new State(state.modelId, partsOf(state), state.batchSize, this.#token);
  }

  /**
   * A State from plain arrays: {name: {dims, data}} or what `state.toJSON()` gave
   * ({modelId, batchSize, parts}). Every part is checked (names, dtype, fixed sizes, one batch size,
   * finite values); the data is copied.
   */
  stateFromArrays(arrays) {
    let parts = arrays;
    if (arrays && typeof arrays === 'object' && arrays.parts && typeof arrays.parts === 'object') {
      if (arrays.modelId !== undefined && arrays.modelId !== this.metadata.modelId) {
        throw new StateError(`state belongs to model ${arrays.modelId}, not to this model (${this.metadata.modelId})`);
      }
      parts = arrays.parts;
    }
    if (parts === null || typeof parts !== 'object') throw new StateError(`state arrays must be an object, got ${describe(parts)}`);
    const converted = new Map();
    for (const spec of this.metadata.states) {
      const part = parts[spec.name];
      if (!isTensorLike(part)) {
        const names = Object.keys(parts).sort();
        if (part === undefined) {
          throw new StateError(`state must have exactly the parts [${[...this.stateNames].sort().join(', ')}], got [${names.join(', ')}]`);
        }
        throw new StateError(`state part ${spec.name} must be {dims, data} ${spec.input.dtype} ${expectedShape(spec.input)}, got ${describe(part)}`);
      }
      const Typed = ARRAY_OF[spec.input.dtype];
      let data;
      try {
        data = spec.input.dtype === 'int64' ? Typed.from(part.data, (v) => BigInt(v)) : Typed.from(part.data, Number);
      } catch {
        throw new StateError(`state part ${spec.name} holds values that are not ${spec.input.dtype}`);
      }
      converted.set(spec.name, { dtype: spec.input.dtype, dims: [...part.dims], data });
    }
    const extra = Object.keys(parts).filter((k) => !this.stateNames.includes(k));
    if (extra.length) {
      throw new StateError(`state must have exactly the parts [${[...this.stateNames].sort().join(', ')}], got extra [${extra.join(', ')}]`);
    }
    const batch = this.checkParts(converted, true);
    return new State(this.metadata.modelId, converted, batch, this.#token);
  }

  /** Names, dtypes, fixed sizes and one common batch size of a state's parts; returns the batch size. */
  checkParts(parts, finite = false) {
    let batch = 0;
    for (const spec of this.metadata.states) {
      const p = parts.get(spec.name);
      const want = spec.input;
      const fits =
        p !== undefined &&
        p.dtype === want.dtype &&
        p.dims.length === want.shape.length &&
        p.data.length === product(p.dims) &&
        want.shape.every((w, i) => typeof w !== 'number' || p.dims[i] === w);
      if (!fits) {
        const got = p === undefined ? 'nothing' : `${p.dtype} of shape [${p.dims.join(', ')}]`;
        throw new StateError(`state part ${spec.name} must be ${want.dtype} of shape ${expectedShape(want)}, got ${got}`);
      }
      const size = p.dims[want.shape.indexOf(BATCH_AXIS)];
      if (size < 1 || (batch && size !== batch)) {
        throw new StateError(`state part ${spec.name} has batch ${size}, other parts have ${batch || size}`);
      }
      batch = size;
      if (finite && want.dtype === 'float32' && !allFinite(p.data)) {
        throw new StateError(`state part ${spec.name} contains NaN or infinity`);
      }
    }
    return batch;
  }

  /** The graph's main input must match the metadata: {data, dims} of its dtype, rank and fixed sizes, non-empty. */
  checkInput(x) {
    const spec = this.metadata.input;
    const want = `${spec.dtype} of shape ${expectedShape(spec)}`;
    if (!isTensorLike(x)) throw new InputError(`${spec.name} must be {data, dims} ${want}, got ${describe(x)}`);
    const type = elementType(x.data);
    const fits =
      type === spec.dtype &&
      x.dims.length === spec.shape.length &&
      !x.dims.includes(0) &&
      x.data.length === product(x.dims) &&
      spec.shape.every((d, i) => typeof d !== 'number' || x.dims[i] === d);
    if (!fits) throw new InputError(`${spec.name} must be ${want}, got ${describe(x)}`);
    if (type === 'float32' && !allFinite(x.data)) throw new InputError(`${spec.name} contains NaN or infinity`);
    return { data: x.data, dims: [...x.dims] };
  }

  /**
   * Run the graph on `x` (the graph input exactly as metadata.input describes it, already
   * preprocessed: {data, dims}) from `state`. Resolves to {outputs: {name: {dims, data}}, state}.
   * Nothing is modified: the caller decides whether to keep the new state.
   */
  async step(x, state) {
    x = this.checkInput(x);
    state = this.checkState(state, x.dims[0]);
    return this.runState(x, state, this.outputNames);
  }

  /** Package-internal: one run on a checked input and state; returns {outputs, state}. */
  async runState(x, state, outputNames, lengths = null) {
    const { outputs, parts } = await this.runParts(x, partsOf(state), outputNames, lengths);
    return { outputs, state: new State(this.metadata.modelId, parts, state.batchSize, this.#token) };
  }

  /** Package-internal: one onnxruntime call; returns {outputs: {name: {dims, data}}, parts: Map(new state)}. */
  async runParts(x, parts, outputNames, lengths = null) {
    this.guard(x, parts);
    const ort = this.#ort;
    const feeds = { [this.metadata.input.name]: new ort.Tensor(this.metadata.input.dtype, x.data, x.dims) };
    if (this.metadata.lengths) {
      // A graph that takes per-sequence lengths (format version 2) gets them on every call: all T unless said.
      const valid = lengths ?? BigInt64Array.from({ length: x.dims[0] }, () => BigInt(x.dims[1]));
      feeds[this.metadata.lengths.name] = new ort.Tensor('int64', valid, [x.dims[0]]);
    }
    for (const [name, p] of parts) feeds[name] = new ort.Tensor(p.dtype, p.data, p.dims);
    const fetch = [...outputNames, ...this._stateOutputs];
    const results = await this.call(feeds, fetch);
    const outputs = {};
    for (const name of outputNames) outputs[name] = { dims: [...results[name].dims], data: results[name].data };
    const next = new Map();
    this.metadata.states.forEach((s) => {
      const t = results[s.output];
      next.set(s.name, { dtype: s.input.dtype, dims: [...t.dims], data: t.data });
    });
    return { outputs, parts: next };
  }

  /** The one onnxruntime call of every path, queued behind the model's previous call. */
  call(feeds, fetch) {
    const run = this.#tail.then(() => {
      const session = this.#session;
      if (session === null) throw new ModelClosedError(`model ${this.source} was disposed`);
      return session.run(feeds, fetch);
    });
    this.#tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** A last check of a run that needs the state's values (none by default). */
  guard() {}

  /** A stream's step: outputs of `streamOutputs` and the new state parts, windowed for long causal feeds. */
  async streamRun(x, parts) {
    const steps = x.dims[1];
    if (!this.causal || steps <= STREAM_WINDOW) return this.runParts(x, parts, this.streamOutputs);
    const rowSize = product(x.dims.slice(2));
    let result;
    for (let lo = 0; lo < steps; lo += STREAM_WINDOW) {
      const n = Math.min(STREAM_WINDOW, steps - lo);
      const window = { data: x.data.subarray(lo * rowSize, (lo + n) * rowSize), dims: [1, n, ...x.dims.slice(2)] };
      result = await this.runParts(window, parts, this.streamOutputs);
      parts = result.parts;
    }
    return result;
  }

  /** A stream holding one state for one caller. */
  stream() {
    return new Stream(this);
  }

  // -- what a stream needs from a task (classifier.js and language.js fill these in) ---------
  streamOutputNames() {
    return this.outputNames;
  }

  /** Turn what a caller feeds a stream into the graph input {data, dims} (batch 1). */
  streamInput() {
    throw new Error(`${this.constructor.name} does not stream`);
  }

  /** Turn the stream outputs into what feed() returns. */
  streamResult(outputs) {
    return outputs[this.streamOutputs[0]].data;
  }
}

/** One state (batch 1) held for one caller; `feed` advances it and returns the prediction so far. */
export class Stream {
  #model;
  #parts; // Map(name -> {dtype, dims, data}) of the current state; replaced, never written to
  #state; // the immutable State of #parts, made when asked for
  #last = null;
  #busy = false;

  constructor(model, state = null) {
    this.#model = model;
    const s = state === null ? model.initState(1) : model.checkState(state, 1);
    this.#state = s;
    this.#parts = partsOf(s);
  }

  /** The model this stream runs. */
  get model() {
    return this.#model;
  }

  /** The current state: an immutable value, safe to keep and restore later. */
  get state() {
    if (this.#state === null) this.#state = this.#model.checkState(new State(this.#model.metadata.modelId, this.#parts, 1));
    return this.#state;
  }

  /** Restore a state (from `stream.state`, `initState()` or `stateFromArrays()`); it is checked first. */
  set state(state) {
    this.#enter();
    try {
      const checked = this.#model.checkState(state, 1);
      this.#state = checked;
      this.#parts = partsOf(checked);
      this.#last = null;
    } finally {
      this.#busy = false;
    }
  }

  /** What the latest successful feed returned (null after a reset or restore). */
  get last() {
    return this.#last;
  }

  /** Start again from the model's initial state. */
  reset() {
    this.state = this.#model.initState(1);
  }

  /** An independent stream starting from this one's state (to branch). */
  copy() {
    const twin = new this.constructor(this.#model, this.state, this.options);
    twin._setLast(this.#last);
    return twin;
  }

  _setLast(last) {
    this.#last = last;
  }

  #enter() {
    if (this.#busy) {
      throw new ConcurrentUseError('this stream is busy with another feed; await each feed before the next, or use one stream per task');
    }
    this.#busy = true;
  }

  /** Package-internal: the graph input for what was fed (LanguageStream passes its strictness). */
  graphInput(x) {
    return this.#model.streamInput(x);
  }

  /** Advance the state by `x` and resolve to the model's prediction after everything fed so far. */
  async feed(x) {
    this.#enter();
    try {
      const input = this.graphInput(x);
      const { outputs, parts } = await this.#model.streamRun(input, this.#parts);
      const result = this.#model.streamResult(outputs);
      this.#parts = parts;
      this.#state = null;
      this.#last = result;
      return result;
    } finally {
      this.#busy = false;
    }
  }
}
