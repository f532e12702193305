/**
 * A small hand-written ONNX encoder: enough of ModelProto / GraphProto / NodeProto / TensorProto /
 * ValueInfoProto / AttributeProto to build small graphs with initializers that onnxruntime loads.
 * Tests and benchmarks use it to make tiny models themselves (nothing is ever downloaded).
 *
 * Self-contained on purpose (no imports): bench scripts transpile and load it as plain JS.
 * Field numbers follow onnx/onnx.proto (IR version 8, default opset 17).
 */

/** ONNX TensorProto.DataType values for the element types we write. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
} as const;
export type OnnxElemType = keyof typeof OnnxDataType;

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A constant tensor: a graph initializer or a `value` attribute. Data is stored little-endian in raw_data. */
export interface OnnxTensor {
  name?: string;
  type: OnnxElemType;
  dims: number[];
  data: TensorData;
}

/** A graph input or output: element type and shape; a string dimension is symbolic (e.g. 'N'). */
export interface OnnxValueInfo {
  name: string;
  type: OnnxElemType;
  shape: (number | string)[];
}

export type OnnxAttribute =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number | bigint }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: OnnxTensor }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: (number | bigint)[] }
  | { kind: 'strings'; value: string[] };

/** Attribute constructors, so call sites read `attr.ints([1, 1])` rather than spelling out kinds. */
export const attr = {
  float: (value: number): OnnxAttribute => ({ kind: 'float', value }),
  int: (value: number | bigint): OnnxAttribute => ({ kind: 'int', value }),
  string: (value: string): OnnxAttribute => ({ kind: 'string', value }),
  tensor: (value: OnnxTensor): OnnxAttribute => ({ kind: 'tensor', value }),
  floats: (value: number[]): OnnxAttribute => ({ kind: 'floats', value }),
  ints: (value: (number | bigint)[]): OnnxAttribute => ({ kind: 'ints', value }),
  strings: (value: string[]): OnnxAttribute => ({ kind: 'strings', value }),
};

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, OnnxAttribute>;
}

export interface OnnxGraph {
  name?: string;
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers?: OnnxTensor[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  /** Default 17. */
  opset?: number;
  /** Default 8. */
  irVersion?: number;
  producerName?: string;
}

// ---------------------------------------------------------------- protobuf wire format

const WIRE_VARINT = 0;
const WIRE_I32 = 5;
const WIRE_LEN = 2;

/** Appends protobuf fields to a growing list of byte chunks. */
class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private varint(v: number | bigint): void {
    // int64 fields: negative values are two's complement in 64 bits, i.e. ten bytes on the wire.
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated int64 (proto3 default for repeated scalars). */
  packedInts(field: number, values: (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

// ---------------------------------------------------------------- ONNX messages

const BYTES_PER_ELEMENT: Record<OnnxElemType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  uint32: 4,
  uint64: 8,
};

function littleEndianBytes(t: OnnxTensor): Uint8Array {
  const numel = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== numel) {
    throw new Error(`tensor ${t.name ?? '(unnamed)'}: ${t.data.length} values for dims [${t.dims}] (${numel} expected)`);
  }
  if (t.data.BYTES_PER_ELEMENT !== BYTES_PER_ELEMENT[t.type]) {
    throw new Error(`tensor ${t.name ?? '(unnamed)'}: ${t.data.constructor.name} does not hold ${t.type}`);
  }
  // x86-64 and arm64 are little-endian, so the typed array's own bytes are the wire bytes.
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
}

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  if (t.dims.length) w.packedInts(1, t.dims);
  w.int(2, OnnxDataType[t.type]);
  if (t.name) w.string(8, t.name);
  w.bytes(9, littleEndianBytes(t));
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.int(1, OnnxDataType[v.type]);
      tensorType.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

// AttributeProto.AttributeType
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7, strings: 8 } as const;

function writeAttribute(w: ProtoWriter, name: string, a: OnnxAttribute): void {
  w.string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
    case 'strings':
      for (const s of a.value) w.string(9, s);
      break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
}

function writeNode(w: ProtoWriter, n: OnnxNode, index: number): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name ?? `${n.opType}_${index}`);
  w.string(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.message(5, (m) => writeAttribute(m, name, a));
  if (n.domain) w.string(7, n.domain);
}

/** Serialises a model to the bytes of an .onnx file. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const g = model.graph;
  for (const init of g.initializers ?? []) if (!init.name) throw new Error('every initializer needs a name');
  const w = new ProtoWriter();
  w.int(1, model.irVersion ?? 8);
  w.string(2, model.producerName ?? 'dbt-test-onnx-writer');
  w.message(7, (graph) => {
    g.nodes.forEach((n, i) => graph.message(1, (m) => writeNode(m, n, i)));
    graph.string(2, g.name ?? 'graph');
    for (const init of g.initializers ?? []) graph.message(5, (m) => writeTensor(m, init));
    for (const v of g.inputs) graph.message(11, (m) => writeValueInfo(m, v));
    for (const v of g.outputs) graph.message(12, (m) => writeValueInfo(m, v));
  });
  w.message(8, (opset) => opset.string(1, '').int(2, model.opset ?? 17));
  return w.finish();
}

/** Convenience for one-op graphs (benchmarks against onnxruntime): inputs first, then initializers. */
export function singleNodeModel(opts: {
  opType: string;
  inputs: OnnxValueInfo[];
  initializers?: OnnxTensor[];
  output: OnnxValueInfo;
  attributes?: Record<string, OnnxAttribute>;
  opset?: number;
}): Uint8Array {
  const initializers = opts.initializers ?? [];
  return encodeOnnxModel({
    opset: opts.opset,
    graph: {
      name: opts.opType.toLowerCase(),
      nodes: [
        {
          opType: opts.opType,
          inputs: [...opts.inputs.map((i) => i.name), ...initializers.map((t) => t.name as string)],
          outputs: [opts.output.name],
          attributes: opts.attributes,
        },
      ],
      inputs: opts.inputs,
      outputs: [opts.output],
      initializers,
    },
  });
}
