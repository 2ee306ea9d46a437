// rnnedge in the browser: run rnnedge .onnx files on onnxruntime-web (WebAssembly).
//
//   import { load } from 'rnnedge';
//   const model = await load('models/mnist-lstm.onnx');
//   const stream = model.stream();
//   for (const row of rows) probs = await stream.feed(row);   // Uint8Array(28) of pixels per row
//
// onnxruntime-web finds its .wasm and .mjs next to its own module; set `wasmPaths` to serve
// them from elsewhere. More than one thread needs a cross-origin-isolated page (COOP/COEP).

import * as ortWeb from 'onnxruntime-web/wasm';
import { ConfigError } from './errors.js';
import { bytesOf, fetchBytes, openModel } from './load.js';

export * from './api.js';

/**
 * Open an rnnedge model from a URL (string or URL) or its bytes (Uint8Array, ArrayBuffer, Blob,
 * Response). Options: threads (default 1), optimization ("all"), wasmPaths (where onnxruntime-web's
 * .wasm/.mjs are served), fetch (RequestInit for the download), ort (an onnxruntime-web module to use).
 * Resolves to a ClassifierModel or a LanguageModel.
 */
export async function load(source, options = {}) {
  const { wasmPaths, fetch: init, ort = ortWeb, ...rest } = options;
  if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
  let data = await bytesOf(source);
  let where = 'bytes';
  if (data === null) {
    if (typeof source !== 'string' && !(source instanceof URL)) {
      throw new ConfigError(`load takes a URL or the model's bytes, got ${typeof source}`);
    }
    where = String(source);
    data = await fetchBytes(source, init);
  }
  return openModel(ort, 'wasm', data, where, rest);
}
