// Recurrent state as an immutable value.
//
// A State maps the model's state input names to arrays and remembers which model made it, so
// a state handed to the wrong model is caught instead of silently giving wrong numbers. Its
// arrays are private: `get(name)` returns a copy, so a kept state can never change under the
// stream it is restored into. `toJSON()` / `model.stateFromArrays()` carry one across a page
// reload or a worker boundary (checked again when it comes back).

const PARTS = new WeakMap(); // State -> Map(name -> {dtype, dims, data}); read only inside the package
const MADE_BY = new WeakMap(); // State -> token of the model that made (and so checked) it

export class State {
  #modelId;
  #batchSize;

  /** Made by models (`initState`, a stream's `state`, `stateFromArrays`), not by callers. */
  constructor(modelId, parts, batchSize, token = null) {
    this.#modelId = modelId;
    this.#batchSize = batchSize;
    const frozen = new Map();
    for (const [name, p] of parts) frozen.set(name, Object.freeze({ dtype: p.dtype, dims: Object.freeze([...p.dims]), data: p.data }));
    PARTS.set(this, frozen);
    if (token !== null) MADE_BY.set(this, token);
    Object.freeze(this);
  }

  /** The id (a digest of the weights) of the model this state belongs to. */
  get modelId() {
    return this.#modelId;
  }

  /** Number of sequences the state holds. */
  get batchSize() {
    return this.#batchSize;
  }

  /** The state's part names (the graph's state input names), e.g. ["h", "c"]. */
  get names() {
    return [...PARTS.get(this).keys()];
  }

  /** A copy of one part: {dtype, dims, data} (data a Float32Array; changing it changes nothing here). */
  get(name) {
    const p = PARTS.get(this).get(name);
    if (!p) throw new RangeError(`state has no part ${JSON.stringify(name)}; it has ${JSON.stringify(this.names)}`);
    return { dtype: p.dtype, dims: [...p.dims], data: p.data.slice() };
  }

  /** A plain, JSON-serialisable copy: {modelId, batchSize, parts: {name: {dtype, dims, data: number[]}}}. */
  toJSON() {
    const parts = {};
    for (const [name, p] of PARTS.get(this)) parts[name] = { dtype: p.dtype, dims: [...p.dims], data: Array.from(p.data, Number) };
    return { modelId: this.#modelId, batchSize: this.#batchSize, parts };
  }

  toString() {
    const shapes = [...PARTS.get(this)].map(([k, p]) => `${k}: ${p.dtype}[${p.dims.join(', ')}]`).join(', ');
    return `State(batchSize=${this.#batchSize}, ${shapes})`;
  }
}

/** The parts of a state without copying (package-internal: callers never write to them). */
export function partsOf(state) {
  return PARTS.get(state);
}

/** The token of the model that made `state`, or undefined. */
export function madeBy(state) {
  return MADE_BY.get(state);
}
