// Reading what rnnedge needs from an ONNX file's protobuf bytes, without onnxruntime or a protobuf library.
//
// onnxruntime's JavaScript API exposes no metadata_props, so the file is read here before
// onnxruntime sees it, as the Python runtime does (runtime/session.py): the metadata JSON,
// whether any tensor keeps its data outside the file, and the graph's declared inputs and
// outputs. The wire format and the field numbers are described in docs/metadata.md.

/** The bytes are not a well-formed protobuf message. */
export class Malformed extends Error {}

const MAX_NESTING = 100; // protobuf's own default recursion limit
const utf8 = new TextDecoder('utf-8'); // invalid sequences become U+FFFD, as Python's decode("utf-8", "replace")

function varint(buf, pos, end) {
  // Returns [value, next position]; values past 2^53 lose precision (only lengths and enums are read here).
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new Malformed('a number runs past the end of its message');
    const byte = buf[pos++];
    result += (byte & 0x7f) * scale;
    if (!(byte & 0x80)) return [result, pos];
    scale *= 128;
  }
  throw new Malformed('a number is longer than 10 bytes');
}

/**
 * The fields of buf[start:end]: [field number, wire type, value or start, end] each.
 * Length-delimited fields (wire type 2) give their payload's bounds, varints their value;
 * fixed-size fields are skipped and groups are walked over, as runtime/session.py does.
 */
export function* fields(buf, start, end, depth = 0) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = varint(buf, pos, end);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (number === 0) throw new Malformed('field number 0');
    if (wire === 0) {
      let value;
      [value, pos] = varint(buf, pos, end);
      yield [number, wire, value, pos];
    } else if (wire === 2) {
      let length;
      [length, pos] = varint(buf, pos, end);
      if (length > end - pos) throw new Malformed('a field runs past the end of its message (truncated file?)');
      yield [number, wire, pos, pos + length];
      pos += length;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > end) throw new Malformed('a field runs past the end of its message (truncated file?)');
    } else if (wire === 3) {
      if (depth >= MAX_NESTING) throw new Malformed(`groups nested deeper than ${MAX_NESTING}`);
      let closed = false;
      for (const [inner, innerWire, , innerEnd] of fields(buf, pos, end, depth + 1)) {
        if (innerWire === 4) {
          if (inner !== number) throw new Malformed('a group ends with the wrong field number');
          pos = innerEnd;
          closed = true;
          break;
        }
      }
      if (!closed) throw new Malformed('a group has no end');
    } else if (wire === 4) {
      yield [number, wire, pos, pos]; // the caller (a group) ends here
      return;
    } else {
      throw new Malformed(`wire type ${wire}`);
    }
  }
}

// Where tensors can sit in an ONNX ModelProto: {message: {field number: message type of that field}}.
const TENSOR_FIELDS = {
  model: { 7: 'graph', 20: 'training', 25: 'function' }, // ModelProto.graph, .training_info, .functions
  training: { 1: 'graph', 2: 'graph' }, // TrainingInfoProto.initialization, .algorithm
  function: { 7: 'node' }, // FunctionProto.node
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' }, // GraphProto.node, .initializer, .sparse_initializer
  node: { 5: 'attribute' }, // NodeProto.attribute
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  sparse: { 1: 'tensor', 2: 'tensor' }, // SparseTensorProto.values, .indices
  tensor: {},
};
const TENSOR_NAME = 8;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const EXTERNAL = 1;

/** Names of the tensors that keep their data outside the file (an rnnedge file must have none). */
export function externalTensors(data) {
  const found = [];
  const stack = [['model', 0, data.length, 0]];
  while (stack.length) {
    const [kind, start, end, depth] = stack.pop();
    if (depth > MAX_NESTING) throw new Malformed(`messages nested deeper than ${MAX_NESTING}`);
    let name = '';
    let external = false;
    for (const [number, wire, a, b] of fields(data, start, end)) {
      if (wire === 4) throw new Malformed('a group ends where none began');
      if (kind === 'tensor') {
        if (number === TENSOR_NAME && wire === 2) name = utf8.decode(data.subarray(a, b));
        else if ((number === TENSOR_DATA_LOCATION && wire === 0 && a === EXTERNAL) || number === TENSOR_EXTERNAL_DATA) {
          external = true;
        }
      } else if (wire === 2 && TENSOR_FIELDS[kind][number] !== undefined) {
        stack.push([TENSOR_FIELDS[kind][number], a, b, depth + 1]);
      }
    }
    if (external) found.push(name || '<unnamed>');
  }
  return found;
}

const MODEL_METADATA_PROPS = 14; // ModelProto.metadata_props: StringStringEntryProto {key = 1, value = 2}

/** The model's metadata_props as a Map (a repeated key: the last one wins, as in Python). */
export function metadataProps(data) {
  const props = new Map();
  for (const [number, wire, a, b] of fields(data, 0, data.length)) {
    if (number === MODEL_METADATA_PROPS && wire === 2) {
      const entry = {};
      for (const [n, w, x, y] of fields(data, a, b)) if (w === 2) entry[n] = utf8.decode(data.subarray(x, y));
      props.set(entry[1] ?? '', entry[2] ?? '');
    }
  }
  return props;
}

// TensorProto.DataType values the rnnedge metadata can name.
const ELEM_TYPES = { 1: 'float32', 10: 'float16', 7: 'int64' };

function valueInfo(data, start, end) {
  // ValueInfoProto {name = 1, type = 2}; TypeProto {tensor_type = 1}; Tensor {elem_type = 1, shape = 2};
  // TensorShapeProto {dim = 1}; Dimension {dim_value = 1, dim_param = 2}.
  let name = '';
  let dtype = null;
  let shape = null;
  for (const [n, w, a, b] of fields(data, start, end)) {
    if (n === 1 && w === 2) name = utf8.decode(data.subarray(a, b));
    if (n !== 2 || w !== 2) continue;
    for (const [tn, tw, ta, tb] of fields(data, a, b)) {
      if (tn !== 1 || tw !== 2) continue;
      for (const [en, ew, ea, eb] of fields(data, ta, tb)) {
        if (en === 1 && ew === 0) dtype = ELEM_TYPES[ea] ?? `onnx type ${ea}`;
        if (en === 2 && ew === 2) {
          shape = [];
          for (const [dn, dw, da, db] of fields(data, ea, eb)) {
            if (dn !== 1 || dw !== 2) continue;
            let dim = '?';
            for (const [vn, vw, va, vb] of fields(data, da, db)) {
              if (vn === 1 && vw === 0) dim = va;
              if (vn === 2 && vw === 2) dim = utf8.decode(data.subarray(va, vb));
            }
            shape.push(dim);
          }
        }
      }
    }
  }
  return { name, dtype, shape };
}

/**
 * The graph's declared inputs (initializers left out, as onnxruntime lists them) and outputs:
 * {inputs: [{name, dtype, shape}], outputs: [...], opsets: Map(domain -> version), ops: Set(op types)}.
 */
export function graphSignature(data) {
  const inputs = [];
  const outputs = [];
  const initializers = new Set();
  const ops = new Set();
  const opsets = new Map();
  for (const [number, wire, a, b] of fields(data, 0, data.length)) {
    if (number === 8 && wire === 2) {
      // ModelProto.opset_import: OperatorSetIdProto {domain = 1, version = 2}
      let domain = '';
      let version = 0;
      for (const [n, w, x, y] of fields(data, a, b)) {
        if (n === 1 && w === 2) domain = utf8.decode(data.subarray(x, y));
        if (n === 2 && w === 0) version = x;
      }
      opsets.set(domain, version);
    }
    if (number !== 7 || wire !== 2) continue; // ModelProto.graph
    for (const [n, w, x, y] of fields(data, a, b)) {
      if (w !== 2) continue;
      if (n === 11) inputs.push(valueInfo(data, x, y)); // GraphProto.input
      else if (n === 12) outputs.push(valueInfo(data, x, y)); // GraphProto.output
      else if (n === 5) {
        for (const [tn, tw, ta, tb] of fields(data, x, y)) {
          if (tn === TENSOR_NAME && tw === 2) initializers.add(utf8.decode(data.subarray(ta, tb)));
        }
      } else if (n === 1) {
        for (const [nn, nw, na, nb] of fields(data, x, y)) {
          if (nn === 4 && nw === 2) ops.add(utf8.decode(data.subarray(na, nb))); // NodeProto.op_type
        }
      }
    }
  }
  return { inputs: inputs.filter((i) => !initializers.has(i.name)), outputs, opsets, ops };
}
