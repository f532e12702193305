import { describe, expect, it } from 'vitest';
import { ops, scope, tensor, zeros } from '../../src/core/index.js';

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = (s / 2147483648) * 2 - 1 || 0.5;
  }
  return a;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(tol + tol * Math.abs(want[i]!));
}

describe('ops through the binding', () => {
  it('matmul matches a plain JS product, with transposes and batches', () =>
    scope(() => {
      const [M, N, K] = [5, 7, 3];
      const a = rand(2 * M * K, 1);
      const b = rand(K * N, 2);
      const want = new Float32Array(2 * M * N);
      for (let bi = 0; bi < 2; bi++)
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += a[bi * M * K + i * K + k]! * b[k * N + j]!;
            want[bi * M * N + i * N + j] = s;
          }
      const c = ops.matmul(tensor(a, [2, M, K]), tensor(b, [K, N]));
      expect(c.shape).toEqual([2, M, N]);
      expectClose(c.read(), want);
      // (B^T)^T via transB
      const bt = new Float32Array(N * K);
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bt[j * K + k] = b[k * N + j]!;
      expectClose(ops.matmul(tensor(a, [2, M, K]), tensor(bt, [N, K]), { transB: true }).read(), want);
    }));

  it('linear forward and backward agree with their definitions', () =>
    scope(() => {
      const x = tensor(rand(4 * 6, 3), [4, 6]);
      const w = tensor(rand(3 * 6, 4), [3, 6]);
      const b = tensor(rand(3, 5), [3]);
      const y = ops.linear(x, w, b);
      const xv = x.read();
      const wv = w.read();
      const bv = b.read();
      const want = new Float32Array(12);
      for (let r = 0; r < 4; r++)
        for (let o = 0; o < 3; o++) {
          let s = bv[o]!;
          for (let i = 0; i < 6; i++) s += xv[r * 6 + i]! * wv[o * 6 + i]!;
          want[r * 3 + o] = s;
        }
      expectClose(y.read(), want);
      const dy = tensor(new Float32Array(12).fill(1), [4, 3]);
      const dw = zeros([3, 6]);
      const db = zeros([3]);
      const dx = ops.linearBackward(x, w, dy, { dw, db });
      expectClose(db.read(), [4, 4, 4]);
      const colsum = (v: Float32Array, rows: number, cols: number, c: number) => {
        let s = 0;
        for (let r = 0; r < rows; r++) s += v[r * cols + c]!;
        return s;
      };
      expectClose(dx.read(), Array.from({ length: 24 }, (_, k) => colsum(wv, 3, 6, k % 6)));
      expectClose(dw.read(), Array.from({ length: 18 }, (_, k) => colsum(xv, 4, 6, k % 6)));
    }));
});

describe('conv2d through the binding', () => {
  it('matches a direct convolution with the VAE padding, and reports shape errors', () =>
    scope(() => {
      const [N, C, H, W, O] = [1, 2, 5, 4, 3];
      const xv = rand(N * C * H * W, 7);
      const wv = rand(O * C * 9, 8);
      const y = ops.conv2d(tensor(xv, [N, C, H, W]), tensor(wv, [O, C, 3, 3]), undefined, { stride: 2, padding: [0, 1, 0, 1] });
      expect(y.shape).toEqual([1, 3, 2, 2]);
      const got = y.read();
      for (let o = 0; o < O; o++)
        for (let oy = 0; oy < 2; oy++)
          for (let ox = 0; ox < 2; ox++) {
            let s = 0;
            for (let c = 0; c < C; c++)
              for (let ky = 0; ky < 3; ky++)
                for (let kx = 0; kx < 3; kx++) {
                  const iy = oy * 2 + ky;
                  const ix = ox * 2 + kx;
                  if (iy < H && ix < W) s += xv[(c * H + iy) * W + ix]! * wv[((o * C + c) * 3 + ky) * 3 + kx]!;
                }
            expect(Math.abs(got[(o * 2 + oy) * 2 + ox]! - s)).toBeLessThan(1e-5);
          }
      expect(() => ops.conv2d(tensor(xv, [N, C, H, W]), zeros([O, 3, 3, 3]), undefined, { padding: 1 })).toThrow(
        /conv2d_forward: w must be \[out, in, kh, kw\] with in = x's channels \(x \[1,2,5,4\] f32, w \[3,3,3,3\] f32/,
      );
    }));
});
