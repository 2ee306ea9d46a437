// What both entry points (index.js for browsers, node.js for Node) export besides `load`.
export {
  ConcurrentUseError,
  ConfigError,
  InputError,
  ModelClosedError,
  ModelFileError,
  ProviderError,
  RnnEdgeError,
  StateError,
  TokenError,
} from './errors.js';
// The built-in kinds: each module registers its kind on import (kinds.js); this is their one list.
export { ClassifierModel } from './classifier.js';
export { LanguageModel, joinTokens, splitWords, tokenize, tokenizeLines } from './language.js';
export { FORMAT_VERSION, METADATA_KEY, parseMetadata } from './metadata.js';
export { Pcg32, sample, topKIds } from './sampling.js';
export { Model, Stream } from './model.js';
export { State } from './state.js';
export { TaggerModel } from './tagger.js';
export { readMetadata } from './load.js';
export { registerKind, registeredKinds } from './kinds.js';
