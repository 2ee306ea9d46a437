// One small hierarchy for everything a user of rnnedge can get wrong (the Python runtime's, in JavaScript).
// Every message names what came in and what was expected.

/** Base class of every error rnnedge throws on purpose. */
export class RnnEdgeError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** An input (rows, pixels, words, ids, an option of a call) has the wrong type, shape or values. */
export class InputError extends RnnEdgeError {}

/** A recurrent state does not belong to this model or this batch size. */
export class StateError extends InputError {}

/** A word or token id is outside the model's vocabulary. */
export class TokenError extends InputError {}

/** A setting (threads, backend, wasm paths) is out of range or inconsistent. */
export class ConfigError extends RnnEdgeError {}

/** A model file is unreachable, not ONNX, or lacks valid rnnedge metadata. */
export class ModelFileError extends RnnEdgeError {}

/** The requested onnxruntime backend is not available, or cannot run this file (fp16 on the CPU). */
export class ProviderError extends RnnEdgeError {}

/** The model was disposed; its streams can no longer run. */
export class ModelClosedError extends RnnEdgeError {}

/** A stream was fed again before its previous feed finished (await each feed, or use one stream per task). */
export class ConcurrentUseError extends RnnEdgeError {}
