// rnnedge in Node: run rnnedge .onnx files on onnxruntime-node (native, the default) or on
// onnxruntime-web (WebAssembly, `backend: 'wasm'`), the same files and answers as in a browser.
//
//   import { load } from 'rnnedge';
//   const lm = await load('ptb-small.onnx');
//   const stream = lm.stream();
//   await stream.feed('the stock market');
//   console.log(stream.topK(5));

import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ConfigError, ModelFileError, ProviderError } from './errors.js';
import { MAX_MODEL_BYTES, bytesOf, fetchBytes, openModel } from './load.js';

export * from './api.js';

const BACKENDS = {
  node: () => import('onnxruntime-node'),
  wasm: () => import('onnxruntime-web'),
};

async function readPath(path) {
  try {
    const { size } = await stat(path);
    if (size > MAX_MODEL_BYTES) throw new ModelFileError(`model file ${path} is ${size} bytes, over the ${MAX_MODEL_BYTES}-byte limit`);
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(`cannot read model file ${path}: ${e.code ?? e.message}`);
  }
}

/**
 * Open an rnnedge model from a path, a file:/http(s): URL or its bytes. Options: backend
 * ("node": onnxruntime-node, the default; "wasm": onnxruntime-web), threads (default 1),
 * optimization ("all"), fetch (RequestInit for http(s)), ort (an onnxruntime module to use).
 * Resolves to a ClassifierModel or a LanguageModel.
 */
export async function load(source, options = {}) {
  const { backend = 'node', fetch: init, ort: given, ...rest } = options;
  if (!Object.hasOwn(BACKENDS, backend)) throw new ConfigError(`backend must be "node" or "wasm", got ${backend}`);
  let ort = given;
  if (ort === undefined) {
    try {
      ort = await BACKENDS[backend]();
    } catch (e) {
      const pkg = backend === 'node' ? 'onnxruntime-node' : 'onnxruntime-web';
      // A linked install (`npm install ./js`) resolves onnxruntime from rnnedge's own folder, not the app's.
      throw new ProviderError(
        `backend "${backend}" needs the ${pkg} package beside rnnedge (npm install ${pkg}@1.30.0; ` +
          `if it is installed in your application, install rnnedge with npm install --install-links PATH/TO/rnnedge/js): ${e.message}`,
      );
    }
  }
  let data = await bytesOf(source);
  let where = 'bytes';
  if (data === null) {
    if (source instanceof URL) source = source.href;
    if (typeof source !== 'string') throw new ConfigError(`load takes a path, a URL or the model's bytes, got ${typeof source}`);
    where = source;
    if (/^https?:/i.test(source)) data = await fetchBytes(source, init);
    else data = await readPath(source.startsWith('file:') ? fileURLToPath(source) : source);
  }
  return openModel(ort, backend, data, where, rest);
}
