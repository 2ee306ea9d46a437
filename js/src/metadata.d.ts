// Types of the rnnedge metadata as the JavaScript runtime parses it (docs/metadata.md).

export declare const FORMAT_VERSION: 1;
export declare const TOKEN_MODES: readonly ['words', 'chars'];
export declare const VARIANTS: readonly ['float32', 'int8', 'fp16'];
export declare const BATCH_AXIS: 'batch';
/** The fields every file has (runtime/rnnedge.schema.json's "properties"). */
export declare const COMMON_FIELDS: readonly string[];
/** Each kind's section of the schema: its title and its own fields (all required). */
export declare const KIND_SECTIONS: Readonly<Record<'classifier' | 'language_model', { readonly title: string; readonly fields: readonly string[] }>>;
/** The section each kind's fields are in. */
export declare const SECTION_OF: Readonly<Record<ModelKind, 'classifier' | 'language_model'>>;
export declare const METADATA_KEY: 'rnnedge';
export declare const MAX_METADATA_BYTES: number;
export declare const MODEL_KINDS: readonly ['causal_classifier', 'noncausal_classifier', 'language_model'];

export type ModelKind = 'causal_classifier' | 'noncausal_classifier' | 'language_model';
export type DType = 'float32' | 'float16' | 'int64';

/** A graph input or output: sizes are numbers, dynamic axes are names ("batch", "sequence", "received"). */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly (number | string)[];
}

/** One part of the recurrent state: the graph input and the output that updates it. */
export interface StateSpec {
  readonly name: string;
  readonly input: TensorSpec;
  readonly output: string;
}

export interface ModelMetadata {
  readonly formatVersion: number;
  readonly kind: ModelKind;
  readonly causal: boolean;
  /** A digest of the weights: a state made by one model is refused by another. */
  readonly modelId: string;
  readonly input: TensorSpec;
  readonly states: readonly StateSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly config: Readonly<Record<string, unknown>>;
  readonly quality: Readonly<Record<string, number>>;
  readonly producer: Readonly<Record<string, string>>;
  readonly variant: 'float32' | 'int8' | 'fp16';
  /** Not part of format 1: always null. */
  /** Classifiers: class names, indexed like probs. */
  readonly labels: readonly string[] | null;
  readonly vocabulary: readonly string[] | null;
  readonly unkId: number | null;
  readonly eosId: number | null;
  readonly notes: Readonly<Record<string, string>>;
  /** Classifiers: the graph input of per-sequence valid steps, int64 ["batch"]. */
  readonly lengths: TensorSpec | null;
  /** Classifiers: per-channel normalisation of raw values, (x - mean[f]) / std[f]. */
  readonly standardize: { readonly mean: readonly number[]; readonly std: readonly number[] } | null;
  /** Language models: how text is split into tokens. */
  readonly tokens: 'words' | 'chars' | null;
}

/** Parse and check metadata JSON text; throws ModelFileError on any defect. */
export declare function parseMetadata(text: string): ModelMetadata;
