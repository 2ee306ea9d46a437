// Language models of words or characters: next-token streams, top-k and generation.
//
// Graph contract (docs/metadata.md): input int64 tokens (batch, sequence) of ids into the
// metadata's vocabulary; state h/c float32 (layers, batch, hidden); outputs logits (batch,
// sequence, vocab) and next_probs (batch, vocab). Text is split into
// words exactly as the Python runtime splits it (Python's str.split(): the whitespace set
// below, not JavaScript's \s); unknown words are <unk>, or a TokenError in strict mode.

import { InputError, TokenError } from './errors.js';
import { describe, elementType, isTypedArray } from './inputs.js';
import { registerKind } from './kinds.js';
import { Model } from './model.js';
import { Pcg32, sample, topKIds } from './sampling.js';

const MAX_SHOWN = 5;
// The characters for which Python's str.isspace() is true: what str.split() splits on.
// (JavaScript's \s differs: it includes U+FEFF and lacks U+001C..U+001F and U+0085.)
const PY_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
// Line breaks of Python's str.splitlines().
const PY_LINE_BREAK = /\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/;
const INT_TYPES = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** Words of `text` as Python's `text.split()` gives them. */
export function splitWords(text) {
  return text.split(PY_WHITESPACE).filter((w) => w.length > 0);
}

function lines(text) {
  const parts = text.split(PY_LINE_BREAK);
  if (parts.length && parts[parts.length - 1] === '') parts.pop(); // splitlines drops a final empty line
  return parts;
}

/** PTB tokenisation: the words of every line, each line closed by `eos` (runtime/language.py's tokenize_lines). */
export function tokenizeLines(text, eos = '<eos>') {
  return lines(text).flatMap((line) => [...splitWords(line), eos]);
}

/**
 * `text` as the tokens a model of the `tokens` mode reads (rnnedge.data.text.tokenize): "words" or
 * "chars" (every code point). closeLines (files, perplexity): every line ends with `eos`. Otherwise
 * (what a stream is fed) words ignore line breaks, and characters read each line break as `eos`
 * and add none at the end.
 */
export function tokenize(text, tokens = 'words', eos = '<eos>', { closeLines = true } = {}) {
  if (tokens === 'words') return closeLines ? tokenizeLines(text, eos) : splitWords(text);
  if (closeLines) return lines(text).flatMap((line) => [...Array.from(line), eos]);
  const out = [];
  const pieces = text.split(new RegExp(`(${PY_LINE_BREAK.source})`));
  pieces.forEach((piece, i) => {
    if (i % 2 === 1) out.push(eos); // a line break
    else out.push(...Array.from(piece));
  });
  return out;
}

/** Tokens back to text: words joined by spaces, characters as they are; `eos` is a line break. */
export function joinTokens(tokens, mode = 'words', eos = '<eos>') {
  const sep = mode === 'words' ? ' ' : '';
  const out = [[]];
  for (const t of tokens) {
    if (t === eos) out.push([]);
    else out[out.length - 1].push(t);
  }
  return out.map((line) => line.join(sep)).join('\n');
}

export class LanguageModel extends Model {
  #index;

  constructor(args) {
    super(args);
    this.#index = new Map(this.metadata.vocabulary.map((w, i) => [w, i]));
  }

  /** The words the model predicts over, indexed by id. */
  get vocabulary() {
    return this.metadata.vocabulary;
  }

  get vocabSize() {
    return this.metadata.vocabulary.length;
  }

  get unkId() {
    return this.metadata.unkId;
  }

  get eosId() {
    return this.metadata.eosId;
  }

  /** How text is split into tokens: "words" or "chars". */
  get tokens() {
    return this.metadata.tokens ?? 'words';
  }

  /** Text as this model's tokens; closeLines closes every line with <eos> (files, perplexity). */
  tokenize(text, { closeLines = true } = {}) {
    return tokenize(text, this.tokens, this.vocabulary[this.eosId], { closeLines });
  }

  /** Tokens (e.g. what generate yields) back to text: words joined by spaces, characters as they are. */
  join(tokens) {
    return joinTokens(tokens, this.tokens, this.vocabulary[this.eosId]);
  }

  /** The graph's next_probs: the softmax of the last position's logits. */
  streamOutputNames() {
    return ['next_probs'];
  }

  // -- words <-> ids -------------------------------------------------------------------------
  /** Words (a string split as Python splits it, or an array of strings) -> ids (Int32Array). */
  encode(words, { strict = false } = {}) {
    const unit = this.tokens.slice(0, -1); // "word" or "char"
    if (typeof words === 'string') words = this.tokenize(words, { closeLines: false });
    if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) {
      throw new InputError(`${this.tokens} must be a string or an array of strings, got ${describe(words)}`);
    }
    if (!words.length) throw new InputError(`no ${this.tokens} given: expected at least one ${unit}`);
    const ids = new Int32Array(words.length);
    const unknown = [];
    words.forEach((w, i) => {
      const id = this.#index.get(w);
      if (id === undefined) unknown.push(w);
      ids[i] = id ?? this.unkId;
    });
    if (unknown.length && strict) {
      const shown = [...new Set(unknown)].slice(0, MAX_SHOWN).map((w) => JSON.stringify(w)).join(', ');
      throw new TokenError(
        `${unknown.length} ${unit}(s) not in the ${this.vocabSize}-${unit} vocabulary: ${shown}; pass strict: false to read them as <unk>`,
      );
    }
    return ids;
  }

  /** Token ids (an array of integers or an integer typed array) -> checked Int32Array, each in [0, vocab). */
  checkIds(ids) {
    const type = elementType(ids);
    if (!(Array.isArray(ids) || isTypedArray(ids)) || !(type === 'number' || type === 'bigint' || type === 'empty' || INT_TYPES.has(type))) {
      throw new InputError(`token ids must be an array of integers or an integer typed array, got ${describe(ids)}`);
    }
    if (ids.length === 0) throw new InputError('no token ids given: expected at least one');
    const out = new Int32Array(ids.length);
    const outside = [];
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i]; // a number, or a bigint from a BigInt64Array
      if (typeof v === 'number' && !Number.isInteger(v)) {
        throw new InputError(`token ids must be integers, got ${v} at position ${i}`);
      }
      if (v < 0 || v >= this.vocabSize) outside.push(v);
      else out[i] = Number(v);
    }
    if (outside.length) throw new TokenError(`token ids must be in [0, ${this.vocabSize}), got [${outside.slice(0, MAX_SHOWN).join(', ')}]`);
    return out;
  }

  /** ids -> words. */
  decode(ids) {
    return Array.from(this.checkIds(ids), (i) => this.vocabulary[i]);
  }

  /** Words, text or ids -> checked ids (Int32Array). */
  toIds(x, { strict = false } = {}) {
    if (typeof x === 'string' || (Array.isArray(x) && x.length && x.every((w) => typeof w === 'string'))) {
      return this.encode(x, { strict });
    }
    return this.checkIds(x);
  }

  // -- streams: fed words or ids, each feed resolves to next-word probabilities Float32Array(vocab) --
  /** Words, text or ids -> the graph input {data: BigInt64Array, dims: [1, T]}; `strict`: unknown words are errors. */
  streamInput(x, strict = false) {
    const ids = this.toIds(x, { strict });
    return { data: BigInt64Array.from(ids, (i) => BigInt(i)), dims: [1, ids.length] };
  }

  // -- tasks --------------------------------------------------------------------------------
  /** The k most probable words of `probs` (vocab,), most probable first (ties by id): [{word, probability}]. */
  topK(probs, k = 5) {
    if (!Number.isInteger(k) || k < 1 || k > this.vocabSize) throw new InputError(`k must be an integer in [1, ${this.vocabSize}], got ${k}`);
    if (!probs || probs.length !== this.vocabSize) {
      throw new InputError(`probs must hold ${this.vocabSize} values, got ${describe(probs)}`);
    }
    return topKIds(probs, k).map((i) => ({ word: this.vocabulary[i], probability: probs[i] }));
  }

  /**
   * Perplexity of a text, state carried, batch 1, as the Python runtime computes it: tokenised as PTB
   * (every line's words, then <eos>), every token after the first scored, `window` tokens per run,
   * log-probabilities in float64. Resolves to a number.
   */
  async perplexity(text, { window = 100, strict = false } = {}) {
    if (typeof text !== 'string') throw new InputError(`text must be a string, got ${describe(text)}`);
    if (!Number.isInteger(window) || window < 1) throw new InputError(`window must be an integer >= 1, got ${window}`);
    const words = this.tokenize(text);
    if (words.length < 2) {
      throw new InputError(`perplexity needs at least 2 tokens (a ${this.tokens.slice(0, -1)} and <eos>), got ${words.length}`);
    }
    const ids = this.encode(words, { strict });
    const v = this.vocabSize;
    let state = this.initState(1);
    let nll = 0;
    for (let lo = 0; lo < ids.length - 1; lo += window) {
      const n = Math.min(window, ids.length - 1 - lo);
      const x = { data: BigInt64Array.from(ids.subarray(lo, lo + n), (i) => BigInt(i)), dims: [1, n] };
      const result = await this.runState(x, state, ['logits']);
      state = result.state;
      const logits = result.outputs.logits.data; // (1, n, V)
      for (let t = 0; t < n; t++) {
        const z = logits.subarray(t * v, (t + 1) * v);
        let max = -Infinity;
        for (let i = 0; i < v; i++) if (z[i] > max) max = z[i];
        let sum = 0;
        for (let i = 0; i < v; i++) sum += Math.exp(z[i] - max);
        nll -= z[ids[lo + t + 1]] - max - Math.log(sum);
      }
    }
    return Math.exp(nll / (ids.length - 1));
  }

  /**
   * Sampled words, yielded one by one as produced (an async generator), after `prompt`
   * (null: at the start of a sentence, after <eos>). The sampler of docs/metadata.md (section 5):
   * for the same seed (an integer in [0, 2^64), a Number or a BigInt), prompt, temperature and
   * topK, the words the Python runtime and `rnnedge serve` give. temperature < 1 sharpens, > 1 flattens.
   */
  generate(prompt = null, { maxWords = 50, temperature = 1, topK = null, seed = null, strict = false } = {}) {
    const ids = prompt === null ? Int32Array.of(this.eosId) : this.toIds(prompt, { strict });
    if (!Number.isInteger(maxWords) || maxWords < 0) throw new InputError(`maxWords must be an integer >= 0, got ${maxWords}`);
    if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature <= 0) {
      throw new InputError(`temperature must be a finite number > 0, got ${temperature}`);
    }
    if (topK !== null && (!Number.isInteger(topK) || topK < 1 || topK > this.vocabSize)) {
      throw new InputError(`topK must be null or an integer in [1, ${this.vocabSize}], got ${topK}`);
    }
    const validSeed =
      (typeof seed === 'bigint' && seed >= 0n && seed < 1n << 64n) || (Number.isSafeInteger(seed) && seed >= 0);
    if (seed !== null && !validSeed) throw new InputError(`seed must be null or an integer >= 0 and < 2^64, got ${seed}`);
    const random = new Pcg32(seed ?? BigInt(Math.floor(Math.random() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(Math.random() * 2 ** 32)));
    return this.#generate(ids, maxWords, temperature, topK, random);
  }

  async *#generate(ids, maxWords, temperature, topK, random) {
    let state = this.initState(1);
    let tokens = { data: BigInt64Array.from(ids, (i) => BigInt(i)), dims: [1, ids.length] };
    for (let n = 0; n < maxWords; n++) {
      const result = await this.runState(tokens, state, ['next_probs']);
      state = result.state;
      const choice = sample(result.outputs.next_probs.data, temperature, topK, random); // next_probs (1, V)
      yield this.vocabulary[choice];
      tokens = { data: BigInt64Array.of(BigInt(choice)), dims: [1, 1] };
    }
  }
}

registerKind('language_model', LanguageModel);
