/**
 * Typed op functions over Tensors. Forward functions allocate their outputs; backward functions return
 * input gradients and accumulate parameter gradients (+=) into tensors the caller passes, mirroring the
 * C++ ops (native/src/ops/*.h).
 */
import { call, native, type DType } from './native.js';
import { empty, type Tensor } from './tensor.js';

function outDims(x: Tensor, last: number): number[] {
  const s = x.shape.slice();
  s[s.length - 1] = last;
  return s;
}

/** Fills t with value (converted to its dtype). */
export function fill(t: Tensor, value: number): void {
  call(() => native().fill(t.handle, value));
}

/** dst = src (same dtype and element count; devices may differ). */
export function copy(src: Tensor, dst: Tensor): void {
  call(() => native().copy(src.handle, dst.handle));
}

/** A copy of x converted to dtype (round to nearest even for float targets). */
export function cast<D extends DType>(x: Tensor, dtype: D): Tensor<D> {
  const y = empty<D>(x.shape, { dtype, device: x.device });
  call(() => native().cast(x.handle, y.handle));
  return y;
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/** alpha · op(a) @ op(b), batched over leading dims (a 2-D operand is shared by every batch). */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const ta = opts.transA ?? false;
  const tb = opts.transB ?? false;
  const m = ta ? a.shape.at(-1)! : a.shape.at(-2)!;
  const n = tb ? b.shape.at(-2)! : b.shape.at(-1)!;
  const batch = a.shape.length > 2 ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
  const c = empty([...batch, m, n], { dtype: a.dtype, device: a.device });
  call(() => native().gemm(a.handle, b.handle, c.handle, ta, tb, opts.alpha ?? 1, 0));
  return c;
}

/** c = alpha · op(a) @ op(b) + beta · c, in place. */
export function gemmInto(a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions & { beta?: number } = {}): void {
  call(() => native().gemm(a.handle, b.handle, c.handle, opts.transA ?? false, opts.transB ?? false, opts.alpha ?? 1, opts.beta ?? 0));
}

/** x[..., in] @ w[out, in]^T + b[out]. */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const y = empty(outDims(x, w.shape[0] ?? 0), { dtype: x.dtype, device: x.device });
  call(() => native().linearForward(x.handle, w.handle, b?.handle ?? null, y.handle));
  return y;
}

/** Returns dx; accumulates dw += dy^T x and db += Σ dy when given. */
export function linearBackward(x: Tensor, w: Tensor, dy: Tensor, grads: { dw?: Tensor; db?: Tensor } = {}): Tensor {
  const dx = empty(x.shape, { dtype: x.dtype, device: x.device });
  call(() => native().linearBackward(x.handle, w.handle, dy.handle, dx.handle, grads.dw?.handle ?? null, grads.db?.handle ?? null));
  return dx;
}

export interface Conv2dOptions {
  stride?: number;
  /** Same padding on every side, or [top, bottom, left, right] (the VAE downsample uses [0, 1, 0, 1]). */
  padding?: number | [number, number, number, number];
}

function convPads(o: Conv2dOptions): [number, number, number, number, number] {
  const p = o.padding ?? 0;
  const [t, b, l, r] = typeof p === 'number' ? [p, p, p, p] : p;
  return [o.stride ?? 1, t, b, l, r];
}

/** NCHW convolution: x [N, C, H, W], w [O, C, kh, kw], b [O]. */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | undefined, opts: Conv2dOptions = {}): Tensor {
  const [s, t, bo, l, r] = convPads(opts);
  const [n, , h, wd] = x.shape as [number, number, number, number];
  const [o, , kh, kw] = w.shape as [number, number, number, number];
  const y = empty([n, o, Math.floor((h + t + bo - kh) / s) + 1, Math.floor((wd + l + r - kw) / s) + 1], { dtype: x.dtype, device: x.device });
  call(() => native().conv2dForward(x.handle, w.handle, b?.handle ?? null, y.handle, s, t, bo, l, r));
  return y;
}

/** Returns dx; accumulates dw and db when given. */
export function conv2dBackward(x: Tensor, w: Tensor, dy: Tensor, grads: { dw?: Tensor; db?: Tensor } = {}, opts: Conv2dOptions = {}): Tensor {
  const [s, t, bo, l, r] = convPads(opts);
  const dx = empty(x.shape, { dtype: x.dtype, device: x.device });
  call(() => native().conv2dBackward(x.handle, w.handle, dy.handle, dx.handle, grads.dw?.handle ?? null, grads.db?.handle ?? null, s, t, bo, l, r));
  return dx;
}
