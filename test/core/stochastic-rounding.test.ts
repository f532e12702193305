import { describe, expect, it } from 'vitest';
import { ops, scope, tensor, zeros, type Tensor } from '../../src/core/index.js';
import { philox4x32 } from '../../src/model/random.js';

const bits = (t: Tensor): number[] => Array.from(t.read() as Uint16Array);
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The documented rule, in TypeScript: element i adds the low 16 bits of Philox word i % 4 and truncates. */
function expectedBits(xs: Float32Array, seed: number, step: number, stream: number): number[] {
  const out: number[] = [];
  const w = new Uint32Array(4);
  for (let i = 0; i < xs.length; i++) {
    if (i % 4 === 0) philox4x32(i / 4, stream, step >>> 0, Math.floor(step / 2 ** 32), seed >>> 0, Math.floor(seed / 2 ** 32), w);
    const u = f32Bits(xs[i]!);
    out.push(((u + (w[i % 4]! & 0xffff)) >>> 16) & 0xffff);
  }
  return out;
}

describe('stochastic rounding through the binding', () => {
  it('castStochastic draws the same Philox words as src/model/random.ts', () =>
    scope(() => {
      const xs = new Float32Array(1001);
      for (let i = 0; i < xs.length; i++) xs[i] = Math.sin(i * 1.7) * 10 ** ((i % 9) - 4);
      const x = tensor(xs, [xs.length]);
      const seed = 2 ** 40 + 12345, step = 2 ** 33 + 7;
      const y = ops.castStochastic(x, { seed, step, stream: 3 });
      expect(y.dtype).toBe('bf16');
      expect(bits(y)).toEqual(expectedBits(xs, seed, step, 3));
      // a BigInt key part is the same key
      expect(bits(ops.castStochastic(x, { seed: BigInt(seed), step: BigInt(step), stream: 3 }))).toEqual(bits(y));
      expect(bits(ops.castStochastic(x, { seed, step, stream: 4 }))).not.toEqual(bits(y));
      expect(() => ops.castStochastic(x, { seed: -1, step: 0, stream: 0 })).toThrow(/seed/);
    }));

  it('adamw with stochasticRounding equals the f32 update then castStochastic', () =>
    scope(() => {
      const n = 513;
      const p0 = new Float32Array(n).map((_, i) => 1 + Math.cos(i) / 3);
      const g0 = new Float32Array(n).map((_, i) => Math.sin(i * 0.3));
      const p = ops.cast(tensor(p0, [n]), 'bf16');
      const g = ops.cast(tensor(g0, [n]), 'bf16');
      const m = zeros([n]), v = zeros([n]);
      const opts = { lr: 1e-3, step: 3, stochasticRounding: true, srSeed: 77, srStream: 5 };
      const w = ops.cast(p, 'f32');
      ops.adamw(p, g, m, v, opts);
      ops.adamw(w, ops.cast(g, 'f32'), zeros([n]), zeros([n]), { lr: 1e-3, step: 3 });
      expect(bits(p)).toEqual(bits(ops.castStochastic(w, { seed: 77, step: 3, stream: 5 })));
      // 8-bit, multi-tensor: entry i rounds with srStream (default: its index)
      const a = ops.cast(tensor(p0, [n]), 'bf16'), b = ops.cast(tensor(p0, [n]), 'bf16');
      const sa = ops.adamw8bitState(a, 256), sb = ops.adamw8bitState(b, 256);
      ops.adamw8bitMulti([{ param: zeros([1], { dtype: 'bf16' }), grad: zeros([1], { dtype: 'bf16' }), state: ops.adamw8bitState(zeros([1]), 256) }, { param: a, grad: g, state: sa }], opts);
      ops.adamw8bit(b, g, sb, { ...opts, srStream: 1 });
      expect(bits(a)).toEqual(bits(b));
      expect(() => ops.adamw(zeros([n]), zeros([n]), zeros([n]), zeros([n]), opts)).toThrow(/bf16/);
    }));
});
