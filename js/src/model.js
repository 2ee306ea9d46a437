// The loaded model (one onnxruntime session, its metadata, the functional core) and its streams.
//
// `initState` and `step` are the explicit core every other path uses; a Model holds no
// per-caller state, so one instance serves any number of streams. A Stream is passive: a state
// (batch 1), its options and its last result. The model advances one stream or a list of them in
// one onnxruntime call (`model.feed(streams, inputs)`, sherpa-onnx's decode_streams), and a failed
// call leaves every stream exactly as it was: new states are kept only once the whole call succeeded.

import { ConcurrentUseError, ConfigError, InputError, ModelClosedError, StateError } from './errors.js';
import { describe, elementType, isTensorLike } from './inputs.js';
import { BATCH_AXIS, initialShape } from './metadata.js';
import { State, madeBy, partsOf } from './state.js';

export const STREAM_WINDOW = 256; // a long causal feed runs in windows of this many steps: bounded memory
const MAX_STATE_BYTES = 2 ** 32;
const MAX_SHOWN = 5;
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

  /** False for models whose output after a chunk depends on the whole prefix (bidirectional, convolutional). */
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

  /** Streams' step: outputs of `streamOutputs` and the new state parts, windowed for long causal feeds. */
  async streamRun(x, parts) {
    const steps = x.dims[1];
    if (!this.causal || steps <= STREAM_WINDOW) return this.runParts(x, parts, this.streamOutputs);
    let result;
    for (let lo = 0; lo < steps; lo += STREAM_WINDOW) {
      result = await this.runParts(stepsOf(x, lo, Math.min(STREAM_WINDOW, steps - lo)), parts, this.streamOutputs);
      parts = result.parts;
    }
    return result;
  }

  /**
   * A stream: one state (batch 1) for one caller, from `state` or the initial state. `strict`: for
   * inputs that can be unknown (words), refuse them (TokenError) instead of reading them as unknown.
   */
  stream(state = null, { strict = false } = {}) {
    if (state !== null && typeof state === 'object' && !(state instanceof State) && 'strict' in state) {
      throw new InputError('stream(state, { strict }) takes its options second: stream(null, { strict: true })');
    }
    return new Stream(this, state, { strict });
  }

  /**
   * Advance each of `streams` by its input (`inputs[i]`, what a stream's feed takes) in one onnxruntime
   * call, their states stacked on the batch axis. Every input must advance its stream by the same number
   * of steps. Resolves to one result per stream, row i being what `streams[i].feed(inputs[i])` gives
   * (also kept as `streams[i].last`). If anything is wrong no stream changes.
   */
  async feed(streams, inputs) {
    const held = this.#heldOf(streams);
    if (!Array.isArray(inputs) || inputs.length !== streams.length) {
      throw new InputError(`feed takes one input per stream (${streams.length}), got ${describe(inputs)}`);
    }
    const busy = held.findIndex((h) => h.busy);
    if (busy >= 0) throw busyError(streams.length === 1 ? 'this stream' : `stream ${busy} of this call`);
    for (const h of held) h.busy = true;
    try {
      const x = this.#stack(inputs, streams.map((s) => s.strict));
      const axes = this.#batchAxes();
      const { outputs, parts } = await this.streamRun(x, stackParts(held.map((h) => h.parts), axes));
      const results = this.results(outputs);
      const rows = splitParts(parts, held.length, axes);
      // Nothing below can fail: every stream changes, or (above) none did.
      held.forEach((h, i) => Object.assign(h, { parts: rows[i], state: null, last: results[i] }));
      return results;
    } finally {
      for (const h of held) h.busy = false;
    }
  }

  /** What each of `streams` holds (HELD); throws unless they are distinct streams of this model. */
  #heldOf(streams) {
    if (!Array.isArray(streams) || streams.length === 0) {
      throw new InputError(`feed takes a non-empty array of streams, got ${describe(streams)}`);
    }
    if (!streams.every((s) => s instanceof Stream && s.model === this)) {
      throw new InputError('every stream of one call must be a stream of this model');
    }
    if (new Set(streams).size !== streams.length) throw new InputError('a stream appears twice in one call; advance it once per call');
    if (streams.length > 1 && !this.causal) {
      throw new ConfigError(
        `${this.kind} models re-read each stream's whole prefix, whose lengths differ between streams; feed each stream alone instead`,
      );
    }
    return streams.map((s) => HELD.get(s));
  }

  /** Many streams' inputs -> one graph input {data, dims: [N, T, ...]}; an error names the input. */
  #stack(inputs, strict) {
    const many = inputs.length > 1;
    const xs = inputs.map((v, i) => {
      try {
        return this.streamInput(v, strict[i]);
      } catch (e) {
        if (many && e instanceof InputError) throw new e.constructor(`input ${i}: ${e.message}`);
        throw e;
      }
    });
    if (!many) return xs[0];
    const lengths = xs.map((x) => x.dims[1]);
    if (lengths.some((t) => t !== lengths[0])) {
      const shown = lengths.slice(0, MAX_SHOWN).join(', ') + (lengths.length > MAX_SHOWN ? ', ...' : '');
      throw new InputError(
        `one feed advances every stream by the same number of steps, got lengths [${shown}]; feed streams of different lengths in separate calls`,
      );
    }
    const data = new xs[0].data.constructor(xs.reduce((n, x) => n + x.data.length, 0));
    let offset = 0;
    for (const x of xs) {
      data.set(x.data, offset);
      offset += x.data.length;
    }
    return { data, dims: [xs.length, ...xs[0].dims.slice(1)] };
  }

  /** Map(state name -> its batch axis). */
  #batchAxes() {
    return new Map(this.metadata.states.map((s) => [s.name, s.input.shape.indexOf(BATCH_AXIS)]));
  }

  // -- what a stream needs from a kind (classifier.js, language.js, tagger.js fill these in) ---------
  streamOutputNames() {
    return this.outputNames;
  }

  /** What a caller feeds one stream -> the checked graph input {data, dims: [1, T, ...]}; `strict`: see stream(). */
  streamInput() {
    throw new Error(`${this.constructor.name} does not stream`);
  }

  /** The stream outputs of a call -> one result per sequence (row i: what stream i's feed resolves to). */
  results(outputs) {
    const { data, dims } = outputs[this.streamOutputs[0]];
    const n = dims[0];
    if (n === 1) return [data];
    const size = data.length / n;
    return Array.from({ length: n }, (_, i) => data.subarray(i * size, (i + 1) * size));
  }

  /** The k likeliest entries of a result (next words, labels); kinds that rank entries define it. */
  topK() {
    throw new Error(`${this.kind} models rank no entries`);
  }
}

function busyError(which) {
  return new ConcurrentUseError(`${which} is busy with another feed; await each feed before the next, or use one stream per task`);
}

/** Steps lo..lo+count of every sequence of x {data, dims: [N, T, ...]}: a view for one sequence, else a copy. */
function stepsOf(x, lo, count) {
  const [n, steps, ...rest] = x.dims;
  const row = product(rest);
  const dims = [n, count, ...rest];
  if (n === 1) return { data: x.data.subarray(lo * row, (lo + count) * row), dims };
  const data = new x.data.constructor(n * count * row);
  for (let i = 0; i < n; i++) data.set(x.data.subarray((i * steps + lo) * row, (i * steps + lo + count) * row), i * count * row);
  return { data, dims };
}

/** States of batch 1 (Maps of parts) -> one state of batch N, each part stacked on its batch axis. */
function stackParts(states, axes) {
  if (states.length === 1) return states[0];
  const n = states.length;
  const out = new Map();
  for (const [name, axis] of axes) {
    const parts = states.map((s) => s.get(name));
    const { dtype, dims, data } = parts[0];
    const block = product(dims.slice(axis + 1)); // values of one sequence within one outer index
    const stacked = new data.constructor(data.length * n);
    for (let o = 0; o < product(dims.slice(0, axis)); o++) {
      parts.forEach((p, i) => stacked.set(p.data.subarray(o * block, (o + 1) * block), (o * n + i) * block));
    }
    out.set(name, { dtype, dims: dims.map((d, k) => (k === axis ? n : d)), data: stacked });
  }
  return out;
}

/** The inverse of stackParts: a state of batch n -> n states of batch 1 (copies). */
function splitParts(parts, n, axes) {
  if (n === 1) return [parts];
  const states = Array.from({ length: n }, () => new Map());
  for (const [name, axis] of axes) {
    const { dtype, dims, data } = parts.get(name);
    const block = product(dims.slice(axis + 1));
    const outer = product(dims.slice(0, axis));
    states.forEach((state, i) => {
      const own = new data.constructor(outer * block);
      for (let o = 0; o < outer; o++) own.set(data.subarray((o * n + i) * block, (o * n + i + 1) * block), o * block);
      state.set(name, { dtype, dims: dims.map((d, k) => (k === axis ? 1 : d)), data: own });
    });
  }
  return states;
}

// Stream -> {parts, state, last, busy}: what a stream holds, read and replaced by Model.feed (this module only).
// parts: Map(name -> {dtype, dims, data}) of the current state, replaced, never written to; state: its
// immutable State, made when asked for; busy: a feed of it is in flight.
const HELD = new WeakMap();

/**
 * One state (batch 1) of a model, its options and its last result: a value the model advances
 * (`stream.feed(x)` is `model.feed([stream], [x])`). A failed feed leaves it exactly as it was.
 */
export class Stream {
  #model;

  constructor(model, state = null, { strict = false } = {}) {
    if (typeof strict !== 'boolean') throw new InputError(`strict must be true or false, got ${describe(strict)}`);
    this.#model = model;
    /** Unknown words are a TokenError instead of <unk> (language models; other kinds read no words). */
    this.strict = strict;
    const s = state === null ? model.initState(1) : model.checkState(state, 1);
    HELD.set(this, { parts: partsOf(s), state: s, last: null, busy: false });
  }

  /** The model this stream runs. */
  get model() {
    return this.#model;
  }

  /** The current state: an immutable value, safe to keep and restore later. */
  get state() {
    const held = HELD.get(this);
    if (held.state === null) held.state = this.#model.checkState(new State(this.#model.metadata.modelId, held.parts, 1));
    return held.state;
  }

  /** Restore a state (from `stream.state`, `initState()` or `stateFromArrays()`); it is checked first. */
  set state(state) {
    const held = HELD.get(this);
    if (held.busy) throw busyError('this stream');
    const checked = this.#model.checkState(state, 1);
    Object.assign(held, { parts: partsOf(checked), state: checked, last: null });
  }

  /** What the latest successful feed returned (null after a reset or restore). */
  get last() {
    return HELD.get(this).last;
  }

  /** Start again from the model's initial state. */
  reset() {
    this.state = this.#model.initState(1);
  }

  /** An independent stream starting from this one's state and last result (to branch). */
  copy() {
    const twin = new Stream(this.#model, this.state, { strict: this.strict });
    HELD.get(twin).last = this.last;
    return twin;
  }

  /** The k likeliest entries of the last result (next words, labels), most probable first: the model's topK of `last`. */
  topK(k = 5) {
    if (this.last === null) {
      throw new InputError('no prediction yet: feed at least one input after creating, resetting or restoring the stream');
    }
    return this.#model.topK(this.last, k);
  }

  /** Advance the state by `x` and resolve to the model's result after everything fed so far. */
  async feed(x) {
    const [result] = await this.#model.feed([this], [x]);
    return result;
  }
}
