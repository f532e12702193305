/**
 * Parameters of the reference networks, addressed by original LDM checkpoint keys, and a deterministic
 * hash-based generator for random weights and inputs. scripts/golden/make_golden.py implements the same
 * generator bit for bit, so golden fixtures need to store only outputs.
 *
 *   fnv1a32(utf8(key)) = h;  u(key, i) = (mix32((h + i·0x9E3779B9) mod 2³²) >>> 8) / 2²³ − 1   ∈ [−1, 1)
 *   parameter of shape [o, …]: u · √(3 / fan_in) with fan_in = ∏ shape[1:]   (unit-variance preserving)
 *   1-D `…weight` (norm gains): 1 + 0.2·u;  other 1-D (biases): 0.2·u
 */
import { numel } from './f64.js';

export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** n values in [-1, 1), exactly representable (24-bit grid), a pure function of (key, index). */
export function hashUniform(key: string, n: number): Float64Array {
  const h = fnv1a32(key);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (mix32((h + Math.imul(i, 0x9e3779b9)) >>> 0) >>> 8) / 8388608 - 1;
  return out;
}

export function randomParamValues(key: string, shape: readonly number[]): Float64Array {
  const u = hashUniform(key, numel(shape));
  if (shape.length >= 2) {
    const s = Math.sqrt(3 / numel(shape.slice(1)));
    for (let i = 0; i < u.length; i++) u[i] *= s;
  } else if (key.endsWith('.weight')) {
    for (let i = 0; i < u.length; i++) u[i] = 1 + 0.2 * u[i];
  } else {
    for (let i = 0; i < u.length; i++) u[i] *= 0.2;
  }
  return u;
}

/** Where the reference reads its weights from. `get` checks the shape the network expects. */
export interface ParamSource {
  get(key: string, shape: readonly number[]): Float64Array;
}

/** A parameter set held in memory; records every key the reference read (and its shape). */
export class ParamStore implements ParamSource {
  readonly tensors = new Map<string, { shape: number[]; data: Float64Array }>();
  constructor(
    private readonly make?: (key: string, shape: readonly number[]) => Float64Array,
  ) {}

  set(key: string, shape: readonly number[], data: ArrayLike<number>): void {
    if (data.length !== numel(shape)) throw new Error(`${key}: ${data.length} values for shape [${shape}]`);
    this.tensors.set(key, { shape: [...shape], data: Float64Array.from(data) });
  }

  get(key: string, shape: readonly number[]): Float64Array {
    let t = this.tensors.get(key);
    if (!t) {
      if (!this.make) throw new Error(`reference: missing parameter ${key} [${shape}]`);
      t = { shape: [...shape], data: this.make(key, shape) };
      this.tensors.set(key, t);
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`reference: ${key} has shape [${t.shape}], the network expects [${shape}]`);
    }
    return t.data;
  }
}

/**
 * Random weights from the hash generator. f32: round every value to float32 (to feed the same numbers
 * to a float32 implementation under test).
 */
export function randomParams(opts: { f32?: boolean } = {}): ParamStore {
  return new ParamStore((key, shape) => {
    const v = randomParamValues(key, shape);
    if (opts.f32) for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i]);
    return v;
  });
}
