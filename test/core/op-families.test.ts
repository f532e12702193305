import { describe, expect, it } from 'vitest';
import { allocStats, CoreError, ops, scope, tensor, zeros, full, type Tensor } from '../../src/core/index.js';

function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = lo + ((s / 4294967296) * (hi - lo) || 0.25);
  }
  return a;
}
const arr = (t: Tensor): number[] => Array.from(t.read() as Float32Array);
function close(got: number[], want: number[], tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(tol + tol * Math.abs(want[i]!)));
}

describe('op families through the binding', () => {
  it('activations, GEGLU and softmax follow their formulas', () =>
    scope(() => {
      const xv = rand(12, 1, -3, 3);
      const x = tensor(xv, [3, 4]);
      close(arr(ops.activation('silu', x)), [...xv].map((v) => v / (1 + Math.exp(-v))));
      close(arr(ops.activation('quick_gelu', x)), [...xv].map((v) => v / (1 + Math.exp(-1.702 * v))));
      const g = arr(ops.geglu(x)); // [3, 2]: h = x[:, :2], gate = x[:, 2:]
      expect(g.length).toBe(6);
      const sm = arr(ops.softmax(x));
      for (let r = 0; r < 3; r++) {
        const row = [...xv.slice(r * 4, r * 4 + 4)];
        const m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b, 0);
        close(sm.slice(r * 4, r * 4 + 4), e.map((v) => v / s));
      }
    }));

  it('group norm and layer norm normalise', () =>
    scope(() => {
      const x = tensor(rand(2 * 4 * 9, 2, 1, 5), [2, 4, 3, 3]);
      const { y, mean, rstd } = ops.groupNorm(x, full([4], 1), zeros([4]), { groups: 2, eps: 1e-6 });
      expect(mean.shape).toEqual([2, 2]);
      expect(rstd.shape).toEqual([2, 2]);
      const yv = arr(y);
      for (let grp = 0; grp < 4; grp++) {
        const part = yv.slice(grp * 18, grp * 18 + 18);
        const m = part.reduce((a, b) => a + b, 0) / 18;
        const v = part.reduce((a, b) => a + (b - m) ** 2, 0) / 18;
        expect(Math.abs(m)).toBeLessThan(1e-5);
        expect(Math.abs(v - 1)).toBeLessThan(1e-4);
      }
      const ln = ops.layerNorm(tensor(rand(10, 3), [2, 5]), full([5], 2), full([5], 1));
      const lv = arr(ln.y);
      expect(Math.abs(lv.slice(0, 5).reduce((a, b) => a + b, 0) / 5 - 1)).toBeLessThan(1e-5); // beta 1
    }));

  it('broadcast arithmetic and its gradients', () =>
    scope(() => {
      const a = tensor(rand(2 * 3 * 2, 4), [2, 3, 2]);
      const b = tensor([10, 20, 30], [3, 1]);
      const y = ops.add(a, b);
      expect(y.shape).toEqual([2, 3, 2]);
      const av = arr(a);
      close(arr(y), av.map((v, i) => v + [10, 20, 30][Math.floor(i / 2) % 3]!));
      const { da, db } = ops.binaryBackward('mul', a, b, full([2, 3, 2], 1));
      close(arr(da), av.map((_, i) => [10, 20, 30][Math.floor(i / 2) % 3]!));
      close(arr(db), [0, 1, 2].map((c) => av[c * 2]! + av[c * 2 + 1]! + av[6 + c * 2]! + av[6 + c * 2 + 1]!));
      expect(() => ops.add(a, tensor([1, 2], [2, 1]))).toThrow(/add_forward: shapes \[2,3,2\] and \[2,1\] do not broadcast/);
    }));

  it('attention matches a direct computation', () =>
    scope(() => {
      const [N, M, C] = [3, 4, 2]; // one head of dim 2
      const qv = rand(N * C, 5);
      const kv = rand(M * C, 6);
      const vv = rand(M * C, 7);
      const { out } = ops.attention(tensor(qv, [1, N, C]), tensor(kv, [1, M, C]), tensor(vv, [1, M, C]), { heads: 1 });
      const want: number[] = [];
      for (let i = 0; i < N; i++) {
        const s = [...Array(M).keys()].map((j) => (qv[i * C]! * kv[j * C]! + qv[i * C + 1]! * kv[j * C + 1]!) / Math.sqrt(C));
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let c = 0; c < C; c++) want.push(e.reduce((acc, p, j) => acc + (p / z) * vv[j * C + c]!, 0));
      }
      close(arr(out), want);
    }));

  it('data movement, embeddings, loss', () =>
    scope(() => {
      const h = tensor(rand(8, 8), [1, 2, 2, 2]);
      const skip = tensor(rand(4, 9), [1, 1, 2, 2]);
      const cat = ops.concat([h, skip], 1);
      expect(cat.shape).toEqual([1, 3, 2, 2]);
      const [h2, s2] = ops.split(cat, 1, [2, 1]);
      expect(arr(h2!)).toEqual(arr(h));
      expect(arr(s2!)).toEqual(arr(skip));
      expect(ops.upsample2x(h).shape).toEqual([1, 2, 4, 4]);
      const table = tensor(rand(5 * 3, 10), [5, 3]);
      const e = ops.embedding(tensor(new Int32Array([4, 0, 4]), [3]), table);
      expect(arr(e).slice(0, 3)).toEqual(arr(table).slice(12, 15));
      expect(() => ops.embedding(tensor(new Int32Array([5]), [1]), table)).toThrow(/token id 5 at position 0 is outside/);
      const te = arr(ops.timestepEmbedding(tensor([0, 1], [2]), 4));
      close(te, [1, 1, 0, 0, Math.cos(1), Math.cos(0.01), Math.sin(1), Math.sin(0.01)]);
      const pred = tensor([1, 2, 3, 4], [2, 2]);
      const target = tensor([0, 0, 0, 0], [2, 2]);
      const { loss, perSample } = ops.mseLoss(pred, target, tensor([1, 0.5], [2]));
      close(arr(perSample), [2.5, 12.5]);
      close(arr(loss), [2.5 + 6.25]);
      close(arr(ops.mean(pred)), [2.5]);
    }));

  it('optimizer updates and step utilities', () =>
    scope(() => {
      const p = tensor([0.5, -0.5], [2]);
      const g = tensor([0.2, -0.1], [2]);
      const m = zeros([2]);
      const v = zeros([2]);
      ops.adamw(p, g, m, v, { lr: 0.01, step: 1, weightDecay: 0 });
      close(arr(p), [0.5 - 0.01, -0.5 + 0.01], 1e-6);
      const w = tensor(rand(3000, 11), [3000]);
      const before = arr(w);
      const st = ops.adamw8bitState(w, 256);
      expect(st.mAbsmax.shape).toEqual([12]);
      const grad = full([3000], 1);
      ops.adamw8bit(w, grad, st, { lr: 0.01, step: 1, weightDecay: 0 });
      arr(w).forEach((x, i) => expect(x).toBeLessThan(before[i]!)); // positive gradient: every weight decreases
      // the multi-tensor call equals per-tensor calls, bit for bit
      const ws = [tensor(rand(700, 21), [700]), tensor(rand(300, 22), [3, 100])];
      const gs = [tensor(rand(700, 23), [700]), tensor(rand(300, 24), [3, 100])];
      const single = ws.map((x) => tensor(arr(x), [...x.shape]));
      const sts = ws.map((x) => ops.adamw8bitState(x, 256));
      const sts1 = single.map((x) => ops.adamw8bitState(x, 256));
      ops.adamw8bitMulti(ws.map((x, i) => ({ param: x, grad: gs[i]!, state: sts[i]! })), { lr: 0.01, step: 1 });
      single.forEach((x, i) => ops.adamw8bit(x, gs[i]!, sts1[i]!, { lr: 0.01, step: 1 }));
      ws.forEach((x, i) => expect(arr(x)).toEqual(arr(single[i]!)));
      sts.forEach((st, i) => expect(arr(st.vQ)).toEqual(arr(sts1[i]!.vQ)));
      expect(() =>
        ops.adamw8bitMulti([{ param: ws[0]!, grad: gs[0]!, state: sts[0]! }, { param: ws[1]!, grad: gs[1]!, state: ops.adamw8bitState(ws[1]!, 2048) }], { lr: 0.01, step: 2 }),
      ).toThrow(TypeError);
      const n = ops.globalNorm([tensor([3, 4], [2])]);
      close(arr(n), [5]);
      const t = tensor([3, 4], [2]);
      ops.clipByNorm([t], n, 1);
      close(arr(t), [0.6, 0.8], 1e-5);
      const ema = tensor([1, 1], [2]);
      ops.emaUpdate(ema, tensor([2, 0], [2]), 0.75);
      close(arr(ema), [1.25, 0.75]);
      expect(arr(ops.checkFinite([t, tensor([1, Infinity], [2])]))).toEqual([1]);
      expect(arr(ops.checkFinite([t]))).toEqual([0]);
      expect(() => ops.adamw(p, g, m, zeros([3]), { lr: 0.01, step: 1 })).toThrow(CoreError);
    }));

  it('returns memory to the baseline after a scope of many ops', () => {
    const before = allocStats();
    scope(() => {
      const x = tensor(rand(2 * 32 * 8 * 8, 12), [2, 32, 8, 8]);
      const w = tensor(rand(32 * 32 * 9, 13), [32, 32, 3, 3]);
      const y = ops.conv2d(x, w, undefined, { padding: 1 });
      const n = ops.groupNorm(y, full([32], 1), zeros([32]), { silu: true });
      const up = ops.upsample2x(n.y);
      const seq = up.view([2, 32, 256]);
      ops.softmax(seq);
      ops.sum(ops.add(up, up));
    });
    const after = allocStats();
    expect(after.current).toBe(before.current);
    expect(after.live).toBe(before.live);
  });
});
