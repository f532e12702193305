/**
 * Tensor element types as safetensors names them, and the float conversions the loaders and writers need.
 * Conversions are bit-exact: f32→f16/bf16 round to nearest even, NaN stays NaN, overflow goes to ±Inf.
 * Files are little-endian and typed arrays use the machine's byte order: dbt runs on little-endian
 * machines (x86-64, arm64), which `assertLittleEndian` checks once.
 */
export function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('dbt reads and writes model files on little-endian machines only');
}
assertLittleEndian();
export const DTYPE_SIZES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;

export type DType = keyof typeof DTYPE_SIZES;
export type FloatStoreDType = 'F32' | 'F16' | 'BF16';

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZES, s);
}

export function dtypeSize(d: DType): number {
  return DTYPE_SIZES[d];
}

export function isFloatDType(d: DType): boolean {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F8_E4M3' || d === 'F8_E5M2';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

let halfTable: Float32Array | undefined;
/** All 65536 f16 values as f32 (the fastest f16 decoder in JS is a table lookup). */
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloat(h);
  }
  return halfTable;
}

function f8Table(expBits: number, manBits: number, fnuz: boolean): Float32Array {
  const t = new Float32Array(256);
  const bias = (1 << (expBits - 1)) - 1;
  const expMax = (1 << expBits) - 1;
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b >> manBits) & expMax;
    const man = b & ((1 << manBits) - 1);
    let v: number;
    if (exp === 0) v = sign * man * 2 ** (1 - bias - manBits);
    else v = sign * (1 + man / (1 << manBits)) * 2 ** (exp - bias);
    if (fnuz) {
      // E4M3FN: only S.1111.111 is NaN, no infinities.
      if ((b & 0x7f) === 0x7f) v = NaN;
    } else if (exp === expMax) v = man ? NaN : sign * Infinity; // E5M2 follows IEEE
    t[b] = v;
  }
  return t;
}
let e4m3: Float32Array | undefined;
let e5m2: Float32Array | undefined;

/** Decode `count` elements of `dtype` from little-endian bytes into f32. */
export function toFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  const n = bytes.byteLength / dtypeSize(dtype);
  const out = new Float32Array(n);
  const aligned = bytes.byteOffset % dtypeSize(dtype) === 0;
  const src = aligned ? bytes : bytes.slice();
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(src.buffer, src.byteOffset, n));
      return out;
    case 'F16': {
      const t = halfToFloatTable();
      // Two halves per 32-bit load when aligned: half the memory reads of the obvious loop.
      if (src.byteOffset % 4 === 0) {
        const pairs = n >>> 1;
        const w = new Uint32Array(src.buffer, src.byteOffset, pairs);
        for (let i = 0, j = 0; i < pairs; i++, j += 2) {
          const v = w[i];
          out[j] = t[v & 0xffff];
          out[j + 1] = t[v >>> 16];
        }
        if (n & 1) out[n - 1] = t[src[2 * n - 2] | (src[2 * n - 1] << 8)];
        return out;
      }
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = t[h[i]];
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      const o = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) o[i] = h[i] << 16;
      return out;
    }
    case 'F64': {
      const d = new Float64Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = d[i];
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const t = dtype === 'F8_E4M3' ? (e4m3 ??= f8Table(4, 3, true)) : (e5m2 ??= f8Table(5, 2, false));
      for (let i = 0; i < n; i++) out[i] = t[src[i]];
      return out;
    }
    case 'I64': {
      const d = new BigInt64Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = Number(d[i]);
      return out;
    }
    case 'U64': {
      const d = new BigUint64Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = Number(d[i]);
      return out;
    }
    case 'I32':
      out.set(new Int32Array(src.buffer, src.byteOffset, n));
      return out;
    case 'U32':
      out.set(new Uint32Array(src.buffer, src.byteOffset, n));
      return out;
    case 'I16':
      out.set(new Int16Array(src.buffer, src.byteOffset, n));
      return out;
    case 'U16':
      out.set(new Uint16Array(src.buffer, src.byteOffset, n));
      return out;
    case 'I8':
      out.set(new Int8Array(src.buffer, src.byteOffset, n));
      return out;
    case 'U8':
    case 'BOOL':
      out.set(src.subarray(0, n));
      return out;
  }
}

/** f32 → IEEE half bits, round to nearest even (matches torch's `.half()`). */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  return f32BitsToHalfBits(u32[0]);
}

function f32BitsToHalfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let man = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0); // Inf / NaN (quiet)
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    man |= 0x800000; // implicit bit
    const shift = 14 - e; // 14..24
    const half = man >>> shift;
    const rem = man & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  // Rounding may carry into the exponent, and from the largest finite value into Inf: both are correct.
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0));
}

/** f32 → bfloat16 bits, round to nearest even. */
function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Encode f32 values as little-endian bytes of `dtype` (F32: a view; F16/BF16: into `into` when given and large enough). */
export function fromFloat32(values: Float32Array, dtype: FloatStoreDType, into?: Uint8Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const usable = into && into.byteLength >= 2 * n && into.byteOffset % 2 === 0;
  const out = usable ? new Uint16Array(into.buffer, into.byteOffset, n) : new Uint16Array(n);
  if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f32BitsToHalfBits(bits[i]);
  else for (let i = 0; i < n; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return new Uint8Array(out.buffer, out.byteOffset, 2 * n);
}

/** Convert raw little-endian bytes between float dtypes (identity when equal), into `into` when given. */
export function convertFloatBytes(bytes: Uint8Array, from: DType, to: FloatStoreDType, into?: Uint8Array): Uint8Array {
  if (from === to) return bytes;
  return fromFloat32(toFloat32(bytes, from), to, into);
}
