// The contract between export and every runtime: what an rnnedge .onnx file says about itself.
//
// Written from runtime/rnnedge.schema.json and docs/metadata.md. The JSON under metadata_props
// key "rnnedge" is untrusted input: size-limited, every field type-checked, unknown fields and
// any other format_version refused, and the fields each model kind needs checked against each
// other, with the same rules, limits and messages as the Python runtime (runtime/metadata.py):
// both run the corpus tests/contract/write_corpus.py writes.

import { ModelFileError } from './errors.js';

// These constants and field lists are runtime/rnnedge.schema.json's (the format's one description;
// the npm package ships it as rnnedge/schema.json); js/test/contract.test.js holds them equal to it.
export const FORMAT_VERSION = 1;
export const TOKEN_MODES = Object.freeze(['words', 'chars']);
export const VARIANTS = Object.freeze(['float32', 'int8', 'fp16']);
export const METADATA_KEY = 'rnnedge';
export const MAX_METADATA_BYTES = 8 * 1024 * 1024;
export const MODEL_KINDS = Object.freeze(['causal_classifier', 'noncausal_classifier', 'language_model', 'tagger']);
export const BATCH_AXIS = 'batch';
/** The fields every file has. */
export const COMMON_FIELDS = Object.freeze([
  'format_version', 'kind', 'causal', 'model_id', 'input', 'states', 'outputs', 'config', 'quality', 'producer',
  'variant', 'notes',
]);
/** Each kind's section of the schema: its own fields, all required, and its checks across fields. */
export const KIND_SECTIONS = Object.freeze({
  classifier: Object.freeze({ title: 'classifier', fields: Object.freeze(['labels', 'lengths', 'standardize']) }),
  tagger: Object.freeze({ title: 'tagger', fields: Object.freeze(['labels', 'lengths', 'standardize']) }),
  language_model: Object.freeze({
    title: 'language model',
    fields: Object.freeze(['vocabulary', 'unk_id', 'eos_id', 'tokens']),
  }),
});
export const SECTION_OF = Object.freeze({
  causal_classifier: 'classifier',
  noncausal_classifier: 'classifier',
  language_model: 'language_model',
  tagger: 'tagger',
});
const MAX_FIXED_DIM = 1 << 20;
const MAX_STANDARDIZE_VALUE = 1e6;
const MIN_STANDARDIZE_STD = 1e-6;
const DTYPES = ['float32', 'float16', 'int64'];

function typeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'object') return 'object';
  return typeof value;
}

const CHECKS = {
  string: (v) => typeof v === 'string',
  int: (v) => Number.isSafeInteger(v),
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  boolean: (v) => typeof v === 'boolean',
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  list: (v) => Array.isArray(v),
};

/** Typed field access whose errors name the field's path, e.g. "states[0].input.shape". */
class Reader {
  constructor(raw, path, fields = null) {
    if (!CHECKS.object(raw)) {
      throw new ModelFileError(`metadata field ${path || '<root>'} must be an object, got ${typeName(raw)}`);
    }
    this.raw = raw;
    this.path = path;
    const unknown = fields === null ? [] : Object.keys(raw).filter((k) => !fields.includes(k));
    if (unknown.length) {
      throw new ModelFileError(
        `metadata field ${this.where(unknown[0])} is not part of format ${FORMAT_VERSION}${path ? ' here' : ''} (expected only ${fields.join(', ')})`,
      );
    }
  }

  where(key) {
    return this.path ? `${this.path}.${key}` : key;
  }

  get(key, type, optional = false) {
    if (!Object.hasOwn(this.raw, key)) {
      if (optional) return null;
      throw new ModelFileError(`metadata field ${this.where(key)} is missing`);
    }
    const value = this.raw[key];
    if (value === null) {
      throw new ModelFileError(`metadata field ${this.where(key)} is None (JSON null); leave out a field it lacks`);
    }
    if (typeof value === 'boolean' && type !== 'boolean') {
      throw new ModelFileError(`metadata field ${this.where(key)} must not be a boolean`);
    }
    if (!CHECKS[type](value)) {
      throw new ModelFileError(`metadata field ${this.where(key)} has type ${typeName(value)}, expected ${type}`);
    }
    return value;
  }

  sub(key, fields = null) {
    return new Reader(this.get(key, 'object'), this.where(key), fields);
  }
}

function tensor(raw, path) {
  const r = new Reader(raw, path, ['name', 'dtype', 'shape']);
  const dtype = r.get('dtype', 'string');
  if (!DTYPES.includes(dtype)) {
    throw new ModelFileError(`metadata field ${path}.dtype is '${dtype}', expected one of ${DTYPES.join(', ')}`);
  }
  const shape = r.get('shape', 'list');
  for (const d of shape) {
    const ok = typeof d === 'string' || (Number.isInteger(d) && d >= 0 && d <= MAX_FIXED_DIM);
    if (!ok) {
      throw new ModelFileError(
        `metadata field ${path}.shape has entry ${JSON.stringify(d)}; expected sizes in [0, ${MAX_FIXED_DIM}] or axis names`,
      );
    }
  }
  if (!shape.length || (shape[0] !== BATCH_AXIS && !path.startsWith('states'))) {
    throw new ModelFileError(`metadata field ${path}.shape must start with the 'batch' axis, got ${JSON.stringify(shape)}`);
  }
  return Object.freeze({ name: r.get('name', 'string'), dtype, shape: Object.freeze([...shape]) });
}

function strings(r, key) {
  const values = r.get(key, 'list', true);
  if (values === null) return null;
  if (!values.length || !values.every((v) => typeof v === 'string')) {
    throw new ModelFileError(`metadata field ${key} must be a list of strings (at least one)`);
  }
  return Object.freeze([...values]);
}

function stringMap(obj) {
  return Object.freeze(Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])));
}

/**
 * Parse and check metadata JSON text; any defect throws ModelFileError.
 * Returns a frozen object with the fields docs/metadata.md lists (camelCase: modelId, unkId, eosId,
 * formatVersion), each state as {input: {name, dtype, shape}, output, name}.
 */
export function parseMetadata(text) {
  const size = new TextEncoder().encode(text).length;
  if (size > MAX_METADATA_BYTES) {
    throw new ModelFileError(`rnnedge metadata is ${size} bytes, over the ${MAX_METADATA_BYTES}-byte limit`);
  }
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(`rnnedge metadata is not valid JSON: ${e.message}`);
  }
  let r = new Reader(raw, '');
  const version = r.get('format_version', 'int');
  if (version > FORMAT_VERSION) {
    throw new ModelFileError(
      `model metadata has format version ${version}, but this rnnedge reads version ${FORMAT_VERSION}; upgrade rnnedge to load it`,
    );
  }
  if (version !== FORMAT_VERSION) {
    throw new ModelFileError(`model metadata has invalid format version ${version}; this rnnedge reads ${FORMAT_VERSION}`);
  }
  const kind = r.get('kind', 'string');
  if (!MODEL_KINDS.includes(kind)) {
    throw new ModelFileError(`metadata field kind is '${kind}', expected one of ${MODEL_KINDS.join(', ')}`);
  }
  const section = KIND_SECTIONS[SECTION_OF[kind]];
  r = new Reader(raw, '', [...COMMON_FIELDS, ...section.fields]); // unknown fields refused
  for (const key of section.fields) {
    if (!Object.hasOwn(raw, key)) {
      throw new ModelFileError(`metadata field ${key} is missing: a ${section.title}'s metadata must carry it`);
    }
  }
  const states = r.get('states', 'list').map((s, i) => {
    const sr = new Reader(s, `states[${i}]`, ['input', 'output']);
    const input = tensor(sr.get('input', 'object'), `states[${i}].input`);
    if (!input.shape.includes(BATCH_AXIS)) {
      throw new ModelFileError(`metadata field states[${i}].input.shape has no 'batch' axis`);
    }
    return Object.freeze({ name: input.name, input, output: sr.get('output', 'string') });
  });
  const quality = r.get('quality', 'object');
  if (!Object.values(quality).every((v) => CHECKS.number(v))) {
    throw new ModelFileError('metadata field quality must map names to numbers');
  }
  const variant = r.get('variant', 'string');
  if (!VARIANTS.includes(variant)) {
    throw new ModelFileError(`metadata field variant is '${variant}', expected one of ${VARIANTS.join(', ')}`);
  }
  const tokens = r.get('tokens', 'string', true);
  if (tokens !== null && !TOKEN_MODES.includes(tokens)) {
    throw new ModelFileError(`metadata field tokens is '${tokens}', expected one of ${TOKEN_MODES.join(', ')}`);
  }
  let lengths = null;
  if (r.get('lengths', 'object', true) !== null) {
    lengths = tensor(r.raw.lengths, 'lengths');
    if (lengths.dtype !== 'int64' || lengths.shape.length !== 1 || lengths.shape[0] !== BATCH_AXIS) {
      throw new ModelFileError(
        `metadata field lengths must be int64 of shape ['batch'], got ${lengths.dtype} ${JSON.stringify(lengths.shape)}`,
      );
    }
  }
  const meta = Object.freeze({
    formatVersion: version,
    kind,
    causal: r.get('causal', 'boolean'),
    modelId: r.get('model_id', 'string'),
    input: tensor(r.get('input', 'object'), 'input'),
    states: Object.freeze(states),
    outputs: Object.freeze(r.get('outputs', 'list').map((o, i) => tensor(o, `outputs[${i}]`))),
    config: Object.freeze({ ...r.get('config', 'object') }),
    quality: Object.freeze({ ...quality }),
    producer: stringMap(r.get('producer', 'object')),
    variant,
    labels: strings(r, 'labels'),
    vocabulary: strings(r, 'vocabulary'),
    unkId: r.get('unk_id', 'int', true),
    eosId: r.get('eos_id', 'int', true),
    notes: stringMap(r.get('notes', 'object', true) ?? {}),
    lengths,
    standardize: standardize(r),
    tokens,
  });
  checkNames(meta);
  KIND_CHECKS[SECTION_OF[kind]](meta);
  return meta;
}

function standardize(r) {
  if (r.get('standardize', 'object', true) === null) return null;
  const sr = r.sub('standardize', ['mean', 'std']);
  const [mean, std] = ['mean', 'std'].map((key) => {
    const values = sr.get(key, 'list');
    if (!values.length || !values.every((v) => typeof v === 'number')) {
      throw new ModelFileError(`metadata field standardize.${key} must be a non-empty list of numbers`);
    }
    if (!values.every((v) => Number.isFinite(v) && Math.abs(v) <= MAX_STANDARDIZE_VALUE)) {
      throw new ModelFileError(
        `metadata field standardize.${key} has values outside [-${MAX_STANDARDIZE_VALUE}, ${MAX_STANDARDIZE_VALUE}] or not finite`,
      );
    }
    return Object.freeze([...values]);
  });
  if (mean.length !== std.length) {
    throw new ModelFileError(`metadata field standardize has ${mean.length} means and ${std.length} stds`);
  }
  if (Math.min(...std) < MIN_STANDARDIZE_STD) {
    throw new ModelFileError(`metadata field standardize.std has ${Math.min(...std)}, expected >= ${MIN_STANDARDIZE_STD}`);
  }
  return Object.freeze({ mean, std });
}

function show(spec) {
  return spec ? `${spec.name} ${spec.dtype} [${spec.shape.join(', ')}]` : 'none';
}

function checkNames(meta) {
  const names = [meta.input.name, ...meta.states.map((s) => s.name), ...(meta.lengths ? [meta.lengths.name] : [])];
  const outputs = [...meta.outputs.map((o) => o.name), ...meta.states.map((s) => s.output)];
  if (new Set(names).size !== names.length || new Set(outputs).size !== outputs.length) {
    throw new ModelFileError(
      `metadata names inputs [${names.join(', ')}] and outputs [${outputs.join(', ')}]; each name must appear once`,
    );
  }
}

/** Each schema section's checks across fields (what JSON Schema cannot say), as runtime/metadata.py has them. */
const KIND_CHECKS = {
  language_model(meta) {
    const vocabulary = meta.vocabulary;
    const seen = new Set();
    const repeated = new Set();
    for (const w of vocabulary) (seen.has(w) ? repeated : seen).add(w);
    if (repeated.size) {
      throw new ModelFileError(
        `metadata field vocabulary repeats ${repeated.size} word(s), e.g. ${JSON.stringify([...repeated].slice(0, 5))}; expected each once`,
      );
    }
    for (const [key, value] of [['unk_id', meta.unkId], ['eos_id', meta.eosId]]) {
      if (!(value >= 0 && value < vocabulary.length)) {
        throw new ModelFileError(`metadata field ${key} is ${value}, expected an id in [0, ${vocabulary.length})`);
      }
    }
    if (meta.tokens === 'chars') {
      const specials = new Set([meta.unkId, meta.eosId]);
      const long = vocabulary.filter((w, i) => [...w].length !== 1 && !specials.has(i));
      if (long.length || meta.unkId === meta.eosId) {
        throw new ModelFileError(
          `metadata field vocabulary of a character model (tokens 'chars') must hold single characters besides <unk> and <eos> (two different ids), got ${JSON.stringify(long.slice(0, 5))}`,
        );
      }
    }
    if (meta.input.dtype !== 'int64' || meta.input.shape.length !== 2) {
      throw new ModelFileError(`a language model's input must be int64 (batch, sequence), got ${show(meta.input)}`);
    }
    const byName = new Map(meta.outputs.map((o) => [o.name, o]));
    const logits = byName.get('logits');
    if (!logits || logits.shape.length !== 3 || logits.shape[2] !== vocabulary.length) {
      throw new ModelFileError(
        `a language model needs output logits (batch, sequence, ${vocabulary.length}) to match its vocabulary, got ${show(logits)}`,
      );
    }
    const probs = byName.get('next_probs');
    if (!probs || probs.shape.length !== 2 || probs.shape[1] !== vocabulary.length) {
      throw new ModelFileError(
        `a language model needs output next_probs (batch, ${vocabulary.length}) to match its vocabulary, got ${show(probs)}`,
      );
    }
  },

  tagger(meta) {
    const shape = meta.input.shape;
    if (meta.input.dtype !== 'float32' || shape.length !== 3 || typeof shape[2] !== 'number') {
      throw new ModelFileError(`a tagger's input must be float32 (batch, sequence, features), got ${show(meta.input)}`);
    }
    if (meta.standardize.mean.length !== shape[2]) {
      throw new ModelFileError(
        `metadata field standardize has ${meta.standardize.mean.length} values per channel, the input has ${shape[2]} features`,
      );
    }
    if (!meta.causal) throw new ModelFileError("a tagger's metadata must say causal: true (each frame's result from the frames up to it)");
    const byName = new Map(meta.outputs.map((o) => [o.name, o]));
    for (const name of ['logits', 'probs']) {
      const out = byName.get(name);
      if (!out || out.shape.length !== 3 || out.shape[2] !== meta.labels.length) {
        throw new ModelFileError(
          `a tagger needs output ${name} (batch, sequence, ${meta.labels.length}) to match its labels, got ${show(out)}`,
        );
      }
    }
  },

  classifier(meta) {
    const shape = meta.input.shape;
    if (meta.input.dtype !== 'float32' || shape.length !== 3 || typeof shape[2] !== 'number') {
      throw new ModelFileError(`a classifier's input must be float32 (batch, sequence, features), got ${show(meta.input)}`);
    }
    if (meta.standardize.mean.length !== shape[2]) {
      throw new ModelFileError(
        `metadata field standardize has ${meta.standardize.mean.length} values per channel, the input has ${shape[2]} features`,
      );
    }
    const byName = new Map(meta.outputs.map((o) => [o.name, o]));
    for (const name of ['logits', 'probs']) {
      const out = byName.get(name);
      if (!out || out.shape.length !== 2 || out.shape[1] !== meta.labels.length) {
        throw new ModelFileError(
          `a classifier needs output ${name} (batch, ${meta.labels.length}) to match its labels, got ${show(out)}`,
        );
      }
    }
  },
};

/** A state part's zero shape for `batch` sequences: the batch axis set, other named axes (a growing prefix) 0. */
export function initialShape(spec, batch) {
  return spec.input.shape.map((d) => (d === BATCH_AXIS ? batch : typeof d === 'number' ? d : 0));
}
