// Turning what JavaScript callers pass (nested arrays, typed arrays, {data, dims} tensors) into
// flat arrays with a shape, and naming what came in when it does not fit.

import { InputError } from './errors.js';

const TYPED_NAMES = new Map([
  [Uint8Array, 'uint8'],
  [Uint8ClampedArray, 'uint8'],
  [Int8Array, 'int8'],
  [Uint16Array, 'uint16'],
  [Int16Array, 'int16'],
  [Uint32Array, 'uint32'],
  [Int32Array, 'int32'],
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [BigInt64Array, 'int64'],
  [BigUint64Array, 'uint64'],
]);

/** 'uint8', 'float32', ... for a typed array; 'number', 'string', 'bigint', 'mixed', 'none' for a plain array. */
export function elementType(data) {
  for (const [cls, name] of TYPED_NAMES) if (data instanceof cls) return name;
  if (!Array.isArray(data)) return 'none';
  if (data.length === 0) return 'empty';
  const kinds = new Set(data.map((v) => typeof v));
  return kinds.size === 1 ? [...kinds][0] : 'mixed';
}

export function isTypedArray(x) {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

/** How an error message names what came in: "float64 of shape [1, 28]", "string", "Array(3) of string". */
export function describe(x) {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (isTypedArray(x)) return `${elementType(x)} of shape [${x.length}]`;
  if (isTensorLike(x)) return `${elementType(x.data) === 'none' ? typeof x.data : elementType(x.data)} of shape [${x.dims.join(', ')}]`;
  if (Array.isArray(x)) {
    try {
      const { dims, type } = shapeOf(x);
      return `${type} of shape [${dims.join(', ')}]`;
    } catch {
      return `a ragged Array(${x.length})`;
    }
  }
  return typeof x === 'object' ? x.constructor?.name ?? 'object' : typeof x;
}

/** {data, dims} with dims an array of non-negative integers (an onnxruntime Tensor is one). */
export function isTensorLike(x) {
  return (
    x !== null &&
    typeof x === 'object' &&
    !Array.isArray(x) &&
    !isTypedArray(x) &&
    Array.isArray(x.dims ?? null) === true &&
    x.dims.every((d) => Number.isInteger(d) && d >= 0) &&
    (isTypedArray(x.data) || Array.isArray(x.data))
  );
}

function shapeOf(x) {
  // Dims and leaf element type of nested arrays whose leaves are typed arrays or arrays of scalars.
  const dims = [];
  let level = x;
  while (Array.isArray(level)) {
    dims.push(level.length);
    if (level.length === 0) return { dims, type: 'empty' };
    level = level[0];
    if (isTypedArray(level)) {
      dims.push(level.length);
      return { dims, type: elementType(level) };
    }
  }
  return { dims, type: typeof level };
}

/**
 * Nested arrays, a typed array, or {data, dims} as {data, dims, type}: data flat (the caller's
 * own typed array when it was one, else a new array), type the element type ('uint8', 'float64',
 * 'number', 'int64', ...). Throws InputError on ragged nesting or mixed leaves.
 */
export function flatten(x, what) {
  if (isTensorLike(x)) {
    const size = x.dims.reduce((a, b) => a * b, 1);
    if (x.data.length !== size) {
      throw new InputError(`${what}: data holds ${x.data.length} values but dims [${x.dims.join(', ')}] need ${size}`);
    }
    return { data: x.data, dims: [...x.dims], type: elementType(x.data) };
  }
  if (isTypedArray(x)) return { data: x, dims: [x.length], type: elementType(x) };
  if (!Array.isArray(x)) throw new InputError(`${what} must be an array, a typed array or {data, dims}, got ${describe(x)}`);
  const { dims, type } = shapeOf(x);
  const size = dims.reduce((a, b) => a * b, 1);
  const leafIsTyped = type !== 'number' && type !== 'string' && type !== 'bigint' && type !== 'empty' && type !== 'boolean';
  const out = leafIsTyped ? null : new Array(size);
  const parts = leafIsTyped ? [] : null;
  let k = 0;
  const walk = (node, depth) => {
    if (depth === dims.length - (leafIsTyped ? 1 : 0)) {
      if (leafIsTyped) {
        if (!isTypedArray(node) || elementType(node) !== type || node.length !== dims[depth]) {
          throw new InputError(`${what} must be rectangular with rows of one type, got a ragged or mixed array`);
        }
        parts.push(node);
      } else {
        if (typeof node !== type) throw new InputError(`${what} must hold values of one type, got ${type} and ${typeof node}`);
        out[k++] = node;
      }
      return;
    }
    if (!Array.isArray(node) || node.length !== dims[depth]) {
      throw new InputError(`${what} must be rectangular (dims [${dims.join(', ')}]), got a ragged array`);
    }
    for (const child of node) walk(child, depth + 1);
  };
  walk(x, 0);
  if (!leafIsTyped) return { data: out, dims, type };
  const data = new parts[0].constructor(size);
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return { data, dims, type };
}
