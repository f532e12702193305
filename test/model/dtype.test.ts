import { describe, expect, it } from 'vitest';
import { floatToHalfBits, fromFloat32, toFloat32 } from '../../src/model/dtype.js';
import { randomF32 } from './helpers.js';

/** Reference: the nearest half (ties to even) by exhaustive search over finite halves. */
function nearestHalfBits(x: number, halves: Float32Array): number {
  if (Number.isNaN(x)) return -1;
  let best = 0;
  let bestErr = Infinity;
  for (let h = 0; h < 0x7c00; h++) {
    for (const s of [0, 0x8000]) {
      const err = Math.abs(halves[h | s] - x);
      if (err < bestErr || (err === bestErr && ((h | s) & 1) === 0 && (best & 1) === 1)) {
        bestErr = err;
        best = h | s;
      }
    }
  }
  return best;
}

describe('float conversions', () => {
  const allHalves = toFloat32(new Uint8Array(new Uint16Array(Array.from({ length: 65536 }, (_, i) => i)).buffer), 'F16');

  it('decodes known f16 values', () => {
    expect(allHalves[0x3c00]).toBe(1);
    expect(allHalves[0xc000]).toBe(-2);
    expect(allHalves[0x7bff]).toBe(65504);
    expect(allHalves[0x0001]).toBe(2 ** -24);
    expect(allHalves[0x7c00]).toBe(Infinity);
    expect(Number.isNaN(allHalves[0x7e00])).toBe(true);
  });

  it('every f16 survives f16 → f32 → f16 exactly', () => {
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(allHalves[h])) continue;
      expect(floatToHalfBits(allHalves[h])).toBe(h);
    }
  });

  it('f32 → f16 rounds to nearest even like torch (random values, ties, subnormals, overflow)', () => {
    const values = [...randomF32(300, 3, 4), ...randomF32(100, 4, 1e-5), 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 1e6, -1e6, 2 ** -25, 2 ** -25 * 1.5, 3 * 2 ** -26];
    for (const v of values) {
      const x = Math.fround(v);
      const ref = Math.abs(x) >= 65520 ? (x > 0 ? 0x7c00 : 0xfc00) : nearestHalfBits(x, allHalves);
      expect(floatToHalfBits(x), `${x}`).toBe(ref);
    }
  });

  it('bf16 round-trips and rounds to nearest even', () => {
    const x = new Float32Array([1, -2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.3e38, NaN]);
    const back = toFloat32(fromFloat32(x, 'BF16'), 'BF16');
    expect([...back.slice(0, 4)]).toEqual([1, -2.5, 1, 1 + 2 ** -6]);
    expect(back[4]).toBeCloseTo(3.3e38, -36);
    expect(Number.isNaN(back[5])).toBe(true);
  });

  it('f32 → f32 is the same bytes', () => {
    const x = randomF32(10, 9);
    expect(fromFloat32(x, 'F32')).toEqual(new Uint8Array(x.buffer));
  });
});
