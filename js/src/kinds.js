// The runtime's kinds: for each metadata `kind`, the model class `load` returns.
//
// A kind registers itself at the end of its own module (classifier.js, language.js); api.js,
// which both entry points export, imports every kind module: that is the one list of built-in
// kinds. load.js looks the file's kind up here and nowhere else switches on kind names.

import { ModelFileError } from './errors.js';

const KINDS = new Map();

/** Make files whose metadata says `kind: name` load as `model` (a Model subclass). */
export function registerKind(name, model) {
  if (KINDS.has(name)) throw new Error(`runtime kind ${name} is registered twice`);
  KINDS.set(name, model);
}

/** The kinds this runtime runs, sorted. */
export function registeredKinds() {
  return [...KINDS.keys()].sort();
}

/** The model class of a metadata kind; ModelFileError for a kind this runtime does not run. */
export function modelClassFor(kind) {
  const model = KINDS.get(kind);
  if (model === undefined) {
    throw new ModelFileError(`model kind '${kind}' is not one this runtime runs (${registeredKinds().join(', ')})`);
  }
  return model;
}
