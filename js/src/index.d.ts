// Types of the rnnedge JavaScript runtime (browser entry index.js and Node entry node.js).

import type { ModelKind, ModelMetadata } from './metadata.js';

export type { DType, ModelKind, ModelMetadata, StateSpec, TensorSpec } from './metadata.js';
export { FORMAT_VERSION, METADATA_KEY, parseMetadata } from './metadata.js';

/** A flat array with its shape, e.g. {data: Uint8Array(784), dims: [1, 28, 28]} (an onnxruntime Tensor is one). */
export interface TensorLike<D extends ArrayLike<unknown> = ArrayLike<number>> {
  data: D;
  dims: readonly number[];
}

/** Float32Array, or BigInt64Array for int64 parts. */
export type StateData = Float32Array | BigInt64Array | Uint16Array;

export interface StatePart {
  dtype: string;
  dims: number[];
  data: StateData;
}

/** What State.toJSON() gives and Model.stateFromArrays() takes back. */
export interface StateJSON {
  modelId: string;
  batchSize: number;
  parts: Record<string, { dtype: string; dims: number[]; data: number[] }>;
}

/** One recurrent state: an immutable value (its arrays are private; get() copies). */
export declare class State {
  private constructor();
  readonly modelId: string;
  readonly batchSize: number;
  /** The part names, e.g. ["h", "c"]. */
  readonly names: string[];
  /** A copy of one part. */
  get(name: string): StatePart;
  toJSON(): StateJSON;
}

export interface LoadOptions {
  /** Intra-op threads (default 1). In a browser, more than 1 needs a cross-origin-isolated page. */
  threads?: number;
  /** onnxruntime's graph optimisation level (default "all"). */
  optimization?: 'all' | 'extended' | 'basic' | 'disabled';
  /** Node only: "node" (onnxruntime-node, the default) or "wasm" (onnxruntime-web). */
  backend?: 'node' | 'wasm';
  /** Browser only: where onnxruntime-web's .wasm and .mjs files are served (ort.env.wasm.wasmPaths). */
  wasmPaths?: string | Record<string, string>;
  /** RequestInit for fetching a model by URL. */
  fetch?: RequestInit;
  /** An onnxruntime module to use instead of the default one. */
  ort?: unknown;
}

export type ModelSource = string | URL | Uint8Array | ArrayBuffer | ArrayBufferView | Blob | Response;

/** Open an rnnedge .onnx file: a path or URL (Node), a URL (browser), or its bytes. */
export declare function load(source: ModelSource, options?: LoadOptions): Promise<ClassifierModel | LanguageModel>;

/** The parsed metadata of a model's bytes, without onnxruntime. */
export declare function readMetadata(bytes: Uint8Array, where?: string): ModelMetadata;
/** Make files whose metadata says `kind: name` load as `model` (each kind module registers itself). */
export declare function registerKind(name: string, model: new (...args: any[]) => Model): void;
/** The kinds this runtime runs, sorted. */
export declare function registeredKinds(): string[];

export declare class Model {
  readonly metadata: ModelMetadata;
  readonly source: string;
  readonly backend: 'node' | 'wasm';
  readonly threads: number;
  readonly kind: ModelKind;
  readonly causal: boolean;
  readonly disposed: boolean;
  readonly stateNames: string[];
  readonly outputNames: string[];
  /** Zero state for `batch` sequences. */
  initState(batch?: number): State;
  /** `state` if it fits this model (and batch); else throws StateError. Plain arrays are converted. */
  checkState(state: State | StateJSON | Record<string, TensorLike>, batch?: number | null): State;
  /** A checked State from {name: {dims, data}} or State.toJSON()'s output. */
  stateFromArrays(arrays: StateJSON | Record<string, TensorLike>): State;
  /** The graph on its own input (already preprocessed) from `state`; nothing is modified. */
  step(x: TensorLike, state: State): Promise<{ outputs: Record<string, { dims: number[]; data: Float32Array }>; state: State }>;
  /** A stream from `state` (default: the initial state); `strict` refuses unknown words (TokenError) instead of <unk>. */
  stream(state?: State | StateJSON | null, options?: { strict?: boolean }): Stream;
  /**
   * Advance each stream by its input in one onnxruntime call (every input the same number of steps);
   * resolves to one result per stream, row i also kept as streams[i].last. A failure changes no stream.
   */
  feed(streams: Stream[], inputs: unknown[]): Promise<unknown[]>;
  /** Release the onnxruntime session; later calls throw ModelClosedError. */
  dispose(): Promise<void>;
  release(): Promise<void>;
}

/** One state of a model, its options and its last result: a value the model advances. */
export declare class Stream<Input = unknown, Result = Float32Array, Ranked = Suggestion> {
  readonly model: Model;
  /** Unknown words are a TokenError instead of <unk> (language models). */
  strict: boolean;
  /** The current state; assign a State (or arrays) to restore one (checked first). */
  get state(): State;
  set state(state: State | StateJSON);
  /** What the latest successful feed returned (null after a reset or restore). */
  readonly last: Result | null;
  reset(): void;
  /** An independent stream from this one's state, options and last result (to branch). */
  copy(): this;
  /** The k likeliest entries of `last` (next words, or labels: a tagger's last frame): the model's topK of it. */
  topK(k?: number): Ranked[];
  /** Advance the state and resolve to the prediction after everything fed so far; a failure changes nothing. */
  feed(x: Input): Promise<Result>;
}

/** Rows: one row (F values) or T rows; Uint8Array/Uint8ClampedArray are pixels 0..255, numbers are floats in [0, 1]. */
export type Rows = ArrayLike<number> | ArrayLike<ArrayLike<number>> | TensorLike;

export declare class ClassifierModel extends Model {
  readonly labels: readonly string[];
  readonly featureSize: number;
  /** Normalised float32 rows as the graph takes them. */
  preprocess(rows: Rows | ArrayLike<ArrayLike<ArrayLike<number>>>): { data: Float32Array; dims: number[] };
  /**
   * Class probabilities for images [N][T][F] (or {data, dims: [N, T, F]}), or for sequences of
   * different lengths ([N][T_i][F]): one Float32Array per image or sequence.
   */
  predict(images: ArrayLike<ArrayLike<ArrayLike<number>>> | TensorLike, options?: { batchSize?: number }): Promise<Float32Array[]>;
  stream(state?: State | StateJSON | null, options?: { strict?: boolean }): Stream<Rows, Float32Array, LabelProbability>;
  feed(streams: Stream<Rows>[], inputs: Rows[]): Promise<Float32Array[]>;
  /** The k likeliest labels of `probs` (classes,), most probable first (ties by index). */
  topK(probs: ArrayLike<number>, k?: number): LabelProbability[];
}

/** Words: text (split as Python's str.split()), an array of words, or ids. */
export type Words = string | string[] | ArrayLike<number> | BigInt64Array;

/** One of a classifier's or tagger's likeliest labels. */
export interface LabelProbability {
  label: string;
  probability: number;
}

export interface Suggestion {
  word: string;
  probability: number;
}

export interface GenerateOptions {
  maxWords?: number;
  temperature?: number;
  /** Sample among the k likeliest words only; 1 is greedy. */
  topK?: number | null;
  /** In [0, 2^64): the same words as the Python runtime and `rnnedge serve` give for this seed. */
  seed?: number | bigint | null;
  strict?: boolean;
}

export declare class LanguageModel extends Model {
  readonly vocabulary: readonly string[];
  readonly vocabSize: number;
  readonly unkId: number;
  readonly eosId: number;
  /** How text is split: "words" or "chars" (format version 2). */
  readonly tokens: 'words' | 'chars';
  /** Text as this model's tokens; closeLines (default) ends every line with <eos>. */
  tokenize(text: string, options?: { closeLines?: boolean }): string[];
  /** Tokens back to text: words joined by spaces, characters as they are, <eos> as a line break. */
  join(tokens: string[]): string;
  /** Words -> ids; unknown words are <unk>, or TokenError with strict. */
  encode(words: string | string[], options?: { strict?: boolean }): Int32Array;
  decode(ids: ArrayLike<number>): string[];
  toIds(x: Words, options?: { strict?: boolean }): Int32Array;
  stream(state?: State | StateJSON | null, options?: { strict?: boolean }): Stream<Words>;
  feed(streams: Stream<Words>[], inputs: Words[]): Promise<Float32Array[]>;
  /** The k likeliest words of `probs`, most probable first (ties by id). */
  topK(probs: ArrayLike<number>, k?: number): Suggestion[];
  /** Perplexity of a text (PTB tokenisation, state carried, batch 1), as the Python runtime computes it. */
  perplexity(text: string, options?: { window?: number; strict?: boolean }): Promise<number>;
  /** Words yielded as produced. */
  generate(prompt?: Words | null, options?: GenerateOptions): AsyncGenerator<string, void, undefined>;
}

/** Python's str.split() (not JavaScript's \s). */
export declare function splitWords(text: string): string[];
/** PTB tokenisation: every line's words, then "<eos>". */
export declare function tokenizeLines(text: string, eos?: string): string[];
/** Text as words or characters (rnnedge.data.text.tokenize). */
export declare function tokenize(text: string, tokens?: 'words' | 'chars', eos?: string, options?: { closeLines?: boolean }): string[];
export declare function joinTokens(tokens: string[], mode?: 'words' | 'chars', eos?: string): string;

/** PCG32 (XSH-RR), seeded as the reference's pcg32_srandom_r(seed, 54): the sampler's generator (docs/metadata.md, section 5). */
export declare class Pcg32 {
  constructor(seed: number | bigint);
  /** The next 32 random bits, in [0, 2^32). */
  nextUint32(): number;
  /** A number in [0, 1) from 53 random bits. */
  uniform(): number;
}
/** The k likeliest ids of `probs`, likeliest first, equal probabilities in order of id. */
export declare function topKIds(probs: ArrayLike<number>, k: number): number[];
/** One id drawn from next-token probabilities, as docs/metadata.md (section 5) specifies. */
export declare function sample(probs: ArrayLike<number>, temperature: number, topK: number | null, rng: Pcg32): number;

export declare class RnnEdgeError extends Error {}
export declare class InputError extends RnnEdgeError {}
export declare class StateError extends InputError {}
export declare class TokenError extends InputError {}
export declare class ConfigError extends RnnEdgeError {}
export declare class ModelFileError extends RnnEdgeError {}
export declare class ProviderError extends RnnEdgeError {}
export declare class ModelClosedError extends RnnEdgeError {}
export declare class ConcurrentUseError extends RnnEdgeError {}
