import { describe, expect, it } from 'vitest';
import { allocStats, CoreError, coreInfo, empty, keep, ops, scope, tensor, zeros } from '../../src/core/index.js';
import { DbtError } from '../../src/errors.js';

describe('native tensors', () => {
  it('round-trips data, shape and dtype', () => {
    const t = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('f32');
    expect(t.device).toBe('cpu');
    expect(Array.from(t.read())).toEqual([1, 2, 3, 4, 5, 6]);
    t.write(new Float32Array([6, 5, 4, 3, 2, 1]));
    expect(Array.from(t.view([3, 2]).slice(1, 2).read())).toEqual([4, 3]);
    t.dispose();
  });

  it('supports every dtype for storage', () => {
    const i = tensor(new Int32Array([-3, 7]), [2]);
    expect(i.dtype).toBe('i32');
    expect(Array.from(i.read())).toEqual([-3, 7]);
    const u = tensor(new Uint8Array([0, 255, 9]), [3]);
    expect(Array.from(u.read())).toEqual([0, 255, 9]);
    const h = ops.cast(tensor([1, -2, 0.5], [3]), 'f16');
    expect(Array.from(h.read())).toEqual([0x3c00, 0xc000, 0x3800]);
    const b = ops.cast(h, 'bf16');
    expect(Array.from(b.read())).toEqual([0x3f80, 0xc000, 0x3f00]);
    expect(Array.from(ops.cast(b, 'f32').read())).toEqual([1, -2, 0.5]);
    for (const t of [i, u, h, b]) t.dispose();
  });

  it('rejects bad arguments with clear errors', () => {
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(/5 elements, the shape needs 6/);
    expect(() => empty([1, 2, 3, 4, 5, 6])).toThrow(/at most 5 dimensions/);
    expect(() => empty([2], { dtype: 'f8' as never })).toThrow(/unknown dtype 'f8'/);
    const t = zeros([2]);
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => t.read()).toThrow(/after dispose/);
    t.dispose(); // idempotent
  });

  it('turns an impossible allocation into a CoreError with the figures', () => {
    let err: unknown;
    try {
      empty([1 << 20, 1 << 20]); // 4 TiB
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CoreError);
    expect((err as CoreError).code).toBe('DBT_OOM');
    expect((err as CoreError).message).toMatch(/out of memory on cpu: tried to allocate 4096\.00 GiB with .* in use \(peak .*\); reduce the batch size/);
  });

  it('reports the build', () => {
    const info = coreInfo();
    expect(info.devices).toContain('cpu');
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(['avx512', 'avx2', 'portable']).toContain(info.simd);
  });
});

describe('scope', () => {
  it('frees every intermediate and returns memory to the baseline', () => {
    const before = allocStats();
    const w = tensor(new Float32Array(64 * 32).fill(0.01), [64, 32]);
    const out = scope(() => {
      const back = ops.cast(w.view([32, 64]), 'f32'); // [32, 64]
      let x = zeros([8, 32]);
      for (let i = 0; i < 5; i++) x = ops.linear(ops.linear(x, w), back).view([2, 4, 32]).slice(0, 2).view([8, 32]);
      return ops.linear(x, w);
    });
    const mid = allocStats();
    // only w and out remain (the view/slice handles share their storage and were disposed)
    expect(mid.live - before.live).toBe(2);
    expect(mid.current - before.current).toBe((64 * 32 + 8 * 64) * 4);
    expect(out.disposed).toBe(false);
    out.dispose();
    w.dispose();
    const after = allocStats();
    expect(after.current).toBe(before.current);
    expect(after.live).toBe(before.live);
  });

  it('frees intermediates when fn throws, and nested scopes hand results outward', () => {
    const before = allocStats();
    expect(() =>
      scope(() => {
        zeros([100]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(allocStats().current).toBe(before.current);
    let inner: ReturnType<typeof zeros> | undefined;
    const kept = scope(() => {
      const k = keep(zeros([3]));
      inner = scope(() => {
        zeros([5]);
        return { t: zeros([7]) };
      }).t;
      return k;
    });
    expect(inner!.disposed).toBe(true); // returned to the outer scope, which did not return it
    expect(kept.disposed).toBe(false);
    kept.dispose();
    expect(allocStats().current).toBe(before.current);
  });
});

describe('op errors', () => {
  it('surface as CoreError with the op name and shapes', () => {
    const x = zeros([2, 5]);
    const w = zeros([3, 4]);
    let err: unknown;
    try {
      ops.linear(x, w);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CoreError);
    expect(err).toBeInstanceOf(DbtError);
    const ce = err as CoreError;
    expect(ce.op).toBe('linear_forward');
    expect(ce.code).toBe('DBT_OP_ERROR');
    expect(ce.message).toContain('x [2,5] f32');
    expect(ce.message).toContain('w [3,4] f32');
    x.dispose();
    w.dispose();
  });
});
