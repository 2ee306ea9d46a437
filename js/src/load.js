// Opening an rnnedge file: its bytes checked and its metadata read before onnxruntime sees it,
// then one onnxruntime session whose declared inputs and outputs must match the metadata.
// Shared by the browser entry (index.js, onnxruntime-web) and the Node entry (node.js).

import { ConfigError, ModelFileError, ProviderError } from './errors.js';
import { describe, isTypedArray } from './inputs.js';
import { modelClassFor } from './kinds.js';
import { METADATA_KEY, parseMetadata } from './metadata.js';
import { Malformed, externalTensors, graphSignature, metadataProps } from './protobuf.js';

export const MAX_MODEL_BYTES = 2 * 1024 ** 3; // protobuf's own limit for a single-file model
const MAX_THREADS = 1024;
const OPTIMIZATION = { all: 'all', extended: 'extended', basic: 'basic', disabled: 'disabled' };

/** A model's bytes from a Uint8Array, ArrayBuffer, any typed array view, Blob or Response. */
export async function bytesOf(source) {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (isTypedArray(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  if (typeof Response !== 'undefined' && source instanceof Response) return responseBytes(source, source.url || 'response');
  return null;
}

async function responseBytes(response, where) {
  if (!response.ok) throw new ModelFileError(`cannot fetch model ${where}: HTTP ${response.status} ${response.statusText}`.trim());
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_MODEL_BYTES) throw new ModelFileError(`model ${where} is ${declared} bytes, over the ${MAX_MODEL_BYTES}-byte limit`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Fetch a model by URL (browser, or Node's fetch for http(s) URLs). */
export async function fetchBytes(url, init = {}) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new ModelFileError(`cannot fetch model ${url}: ${e.message}`);
  }
  return responseBytes(response, String(url));
}

/** The parsed metadata of a model's bytes, read without onnxruntime (checks as in docs/metadata.md). */
export function readMetadata(data, where = 'model') {
  checkBytes(data, where);
  let props;
  try {
    props = metadataProps(data);
  } catch (e) {
    if (e instanceof Malformed) throw new ModelFileError(`cannot load ${where} as an ONNX model: not a valid ONNX protobuf (${e.message})`);
    throw e;
  }
  if (!props.has(METADATA_KEY)) {
    throw new ModelFileError(`${where} carries no rnnedge metadata (key '${METADATA_KEY}'); export it with \`rnnedge export\``);
  }
  return parseMetadata(props.get(METADATA_KEY));
}

function checkBytes(data, where) {
  if (data.length === 0) throw new ModelFileError(`model file ${where} is empty`);
  if (data.length > MAX_MODEL_BYTES) throw new ModelFileError(`model file ${where} is ${data.length} bytes, over the ${MAX_MODEL_BYTES}-byte limit`);
  let external;
  try {
    external = externalTensors(data);
  } catch (e) {
    if (e instanceof Malformed) throw new ModelFileError(`cannot load ${where} as an ONNX model: not a valid ONNX protobuf (${e.message})`);
    throw e;
  }
  if (external.length) {
    const shown = external.slice(0, 5).join(', ') + (external.length > 5 ? ` and ${external.length - 5} more` : '');
    throw new ModelFileError(
      `model file ${where} keeps tensor data outside the file (${shown}); rnnedge models must be one self-contained file, and paths inside a model are never opened`,
    );
  }
}

/** The graph's declared inputs and outputs must be the ones the metadata promises. */
function checkGraph(signature, meta, where) {
  const inputs = new Map(signature.inputs.map((i) => [i.name, i]));
  const outputs = new Map(signature.outputs.map((o) => [o.name, o]));
  const wantedIn = [meta.input, ...meta.states.map((s) => s.input), ...(meta.lengths ? [meta.lengths] : [])];
  const declared = new Map([...wantedIn, ...meta.outputs].map((s) => [s.name, s]));
  for (const s of meta.states) declared.set(s.output, s.input);
  const problems = [];
  for (const [name, spec] of declared) {
    const got = inputs.get(name) ?? outputs.get(name);
    if (!got) continue; // reported below
    const sameDims =
      got.shape !== null &&
      got.shape.length === spec.shape.length &&
      spec.shape.every((d, i) => !(typeof d === 'number' && typeof got.shape[i] === 'number' && d !== got.shape[i]));
    if (got.dtype !== spec.dtype || !sameDims) {
      problems.push(`${name}: graph has ${got.dtype} [${got.shape ?? '?'}], metadata ${spec.dtype} [${spec.shape.join(', ')}]`);
    }
  }
  const wantedNames = wantedIn.map((s) => s.name).sort();
  const graphNames = [...inputs.keys()].sort();
  if (wantedNames.join('\0') !== graphNames.join('\0')) {
    problems.push(`graph inputs [${graphNames.join(', ')}] differ from metadata [${wantedNames.join(', ')}]`);
  }
  for (const name of [...meta.outputs.map((o) => o.name), ...meta.states.map((s) => s.output)]) {
    if (!outputs.has(name)) problems.push(`output ${name} promised by the metadata is not in the graph`);
  }
  if (problems.length) throw new ModelFileError(`${where}: graph and metadata disagree: ${problems.join('; ')}`);
}

/**
 * Open an rnnedge model from its bytes with the onnxruntime module `ort` ("node": onnxruntime-node,
 * "wasm": onnxruntime-web). Options: threads (1 by default: fastest for one stream on a small CPU),
 * optimization ("all", "extended", "basic", "disabled").
 */
export async function openModel(ort, backend, data, where, { threads = 1, optimization = 'all' } = {}) {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new ConfigError(`threads must be an integer in [1, ${MAX_THREADS}], got ${describe(threads)} ${threads}`);
  }
  if (!Object.hasOwn(OPTIMIZATION, optimization)) {
    throw new ConfigError(`optimization must be one of ${Object.keys(OPTIMIZATION).join(', ')}, got ${optimization}`);
  }
  const metadata = readMetadata(data, where);
  let signature;
  try {
    signature = graphSignature(data);
  } catch (e) {
    if (e instanceof Malformed) throw new ModelFileError(`cannot load ${where} as an ONNX model: not a valid ONNX protobuf (${e.message})`);
    throw e;
  }
  checkGraph(signature, metadata, where);
  if (metadata.variant === 'fp16') {
    throw new ProviderError(
      `${where} is an fp16 model, which runs on the CUDA provider only (onnxruntime's CPU and WebAssembly LSTM have no float16); load the float32 or int8 file`,
    );
  }
  let effectiveThreads = threads;
  if (backend === 'wasm') effectiveThreads = configureWasmThreads(ort, threads);
  let session;
  try {
    session = await ort.InferenceSession.create(data, {
      executionProviders: [backend === 'wasm' ? 'wasm' : 'cpu'],
      graphOptimizationLevel: OPTIMIZATION[optimization],
      intraOpNumThreads: effectiveThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
  } catch (e) {
    const first = String(e?.message ?? e).trim().split('\n')[0];
    throw new ModelFileError(`onnxruntime cannot load ${where} as an ONNX model: ${first}`);
  }
  const Kind = modelClassFor(metadata.kind); // the kinds register themselves (kinds.js)
  return new Kind({ ort, session, metadata, source: where, backend, threads: effectiveThreads });
}

/**
 * onnxruntime-web's thread count is global and fixed by its first session: set it then, and
 * refuse a later, different request instead of silently ignoring it. Without cross-origin
 * isolation (COOP/COEP headers) a page has no SharedArrayBuffer and runs one thread.
 */
function configureWasmThreads(ort, threads) {
  const isolated = typeof globalThis.crossOriginIsolated === 'boolean' ? globalThis.crossOriginIsolated : true;
  const possible = isolated ? threads : 1;
  const state = (ort.env.wasm.__rnnedgeThreads ??= { fixed: null });
  if (state.fixed === null) {
    ort.env.wasm.numThreads = possible;
    state.fixed = possible;
  } else if (possible !== state.fixed) {
    throw new ConfigError(
      `onnxruntime-web already runs ${state.fixed} thread(s) in this page or process (set by the first load); got threads: ${threads}`,
    );
  }
  if (!isolated && threads > 1) {
    console.warn(`rnnedge: ${threads} threads asked for, but the page is not cross-origin isolated (COOP/COEP): running 1`);
  }
  return possible;
}
