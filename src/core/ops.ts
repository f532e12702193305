/**
 * Typed op functions over Tensors. Forward functions allocate their outputs; backward functions return
 * input gradients and accumulate parameter gradients (+=) into tensors the caller passes, mirroring the
 * C++ ops (native/src/ops/*.h).
 */
import { call, native, type AdamWOptions, type DType } from './native.js';
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

/** Key of a stochastic rounding: element i's noise is Philox(counter (i/4, stream, step), key seed) word i%4. */
export interface SrKey {
  seed: number | bigint;
  step: number | bigint;
  stream: number;
}
/**
 * x (f32) rounded to bf16 stochastically: up or down with probabilities that make the expected value x.
 * Deterministic for a key, and the same bits on every device.
 */
export function castStochastic(x: Tensor, key: SrKey): Tensor<'bf16'> {
  const y = empty<'bf16'>(x.shape, { dtype: 'bf16', device: x.device });
  call(() => native().castStochastic(x.handle, y.handle, key.seed, key.step, key.stream));
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

function like(x: Tensor, shape = x.shape): Tensor {
  return empty(shape, { dtype: x.dtype, device: x.device });
}

export type ActivationName = 'silu' | 'gelu' | 'quick_gelu';

/** silu, gelu (exact, erf) or quick_gelu (CLIP), element-wise. */
export function activation(name: ActivationName, x: Tensor): Tensor {
  const y = like(x);
  call(() => native().activationForward(name, x.handle, y.handle));
  return y;
}
export function activationBackward(name: ActivationName, x: Tensor, dy: Tensor): Tensor {
  const dx = like(x);
  call(() => native().activationBackward(name, x.handle, dy.handle, dx.handle));
  return dx;
}

/** x [..., 2F] -> x[..., :F] * gelu(x[..., F:]). */
export function geglu(x: Tensor): Tensor {
  const y = like(x, outDims(x, (x.shape.at(-1) ?? 0) / 2));
  call(() => native().gegluForward(x.handle, y.handle));
  return y;
}
export function gegluBackward(x: Tensor, dy: Tensor): Tensor {
  const dx = like(x);
  call(() => native().gegluBackward(x.handle, dy.handle, dx.handle));
  return dx;
}

/** Softmax over the last dim; the backward takes the forward's output. */
export function softmax(x: Tensor): Tensor {
  const y = like(x);
  call(() => native().softmaxForward(x.handle, y.handle));
  return y;
}
export function softmaxBackward(y: Tensor, dy: Tensor): Tensor {
  const dx = like(y);
  call(() => native().softmaxBackward(y.handle, dy.handle, dx.handle));
  return dx;
}

export interface GroupNormOptions {
  groups?: number;
  eps?: number;
  /** y = silu(groupnorm(x)) */
  silu?: boolean;
}
export interface NormResult {
  y: Tensor;
  mean: Tensor;
  rstd: Tensor;
}

/** GroupNorm over x [N, C, ...] (32 groups by default); mean/rstd [N, groups] for the backward. */
export function groupNorm(x: Tensor, gamma: Tensor, beta: Tensor, opts: GroupNormOptions = {}): NormResult {
  const g = opts.groups ?? 32;
  const y = like(x);
  const mean = like(x, [x.shape[0] ?? 0, g]);
  const rstd = like(x, [x.shape[0] ?? 0, g]);
  call(() => native().groupNormForward(x.handle, gamma.handle, beta.handle, y.handle, mean.handle, rstd.handle, g, opts.eps ?? 1e-5, opts.silu ?? false));
  return { y, mean, rstd };
}
/** Returns dx; accumulates dgamma/dbeta when given. */
export function groupNormBackward(
  x: Tensor, gamma: Tensor, beta: Tensor, saved: { mean: Tensor; rstd: Tensor }, dy: Tensor,
  opts: GroupNormOptions = {}, grads: { dgamma?: Tensor; dbeta?: Tensor } = {},
): Tensor {
  const dx = like(x);
  call(() =>
    native().groupNormBackward(x.handle, gamma.handle, beta.handle, saved.mean.handle, saved.rstd.handle, dy.handle, dx.handle,
      grads.dgamma?.handle ?? null, grads.dbeta?.handle ?? null, opts.groups ?? 32, opts.eps ?? 1e-5, opts.silu ?? false),
  );
  return dx;
}

/** LayerNorm over the last dim; mean/rstd have one entry per row. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): NormResult {
  const rows = x.numel / (x.shape.at(-1) ?? 1);
  const y = like(x);
  const mean = like(x, [rows]);
  const rstd = like(x, [rows]);
  call(() => native().layerNormForward(x.handle, gamma.handle, beta.handle, y.handle, mean.handle, rstd.handle, eps));
  return { y, mean, rstd };
}
export function layerNormBackward(
  x: Tensor, gamma: Tensor, saved: { mean: Tensor; rstd: Tensor }, dy: Tensor, grads: { dgamma?: Tensor; dbeta?: Tensor } = {},
): Tensor {
  const dx = like(x);
  call(() => native().layerNormBackward(x.handle, gamma.handle, saved.mean.handle, saved.rstd.handle, dy.handle, dx.handle, grads.dgamma?.handle ?? null, grads.dbeta?.handle ?? null));
  return dx;
}

export type BinaryOpName = 'add' | 'sub' | 'mul';

/** NumPy broadcast shape of a and b (throws like the core when they do not broadcast). */
export function broadcastShape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[i - (n - a.length)] ?? 1;
    const db = b[i - (n - b.length)] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** a op b with broadcasting. */
export function binary(op: BinaryOpName, a: Tensor, b: Tensor): Tensor {
  const y = like(a, broadcastShape(a.shape, b.shape));
  call(() => native().binaryForward(op, a.handle, b.handle, y.handle));
  return y;
}
export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
/** Gradients of a op b, each reduced to its operand's shape. */
export function binaryBackward(op: BinaryOpName, a: Tensor, b: Tensor, dy: Tensor): { da: Tensor; db: Tensor } {
  const da = like(a);
  const db = like(b);
  call(() => native().binaryBackward(op, a.handle, b.handle, dy.handle, da.handle, db.handle));
  return { da, db };
}
/** y = alpha x + beta y, in place (beta 0: y is only written). */
export function axpby(alpha: number, x: Tensor, beta: number, y: Tensor): void {
  call(() => native().axpby(alpha, x.handle, beta, y.handle));
}
/** x summed over the dims where `shape` broadcasts to x's shape. */
export function sumTo(x: Tensor, shape: number[]): Tensor {
  const y = like(x, shape);
  call(() => native().sumTo(x.handle, y.handle));
  return y;
}

export interface AttentionOptions {
  heads: number;
  /** default 1/sqrt(head dim) */
  scale?: number;
  causal?: boolean;
}
/** q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*Dv] -> out [B, Nq, H*Dv], lse [B, H, Nq]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): { out: Tensor; lse: Tensor } {
  const out = like(q, [q.shape[0] ?? 0, q.shape[1] ?? 0, v.shape[2] ?? 0]);
  const lse = like(q, [q.shape[0] ?? 0, opts.heads, q.shape[1] ?? 0]);
  call(() => native().attentionForward(q.handle, k.handle, v.handle, out.handle, lse.handle, opts.heads, opts.scale ?? 0, opts.causal ?? false));
  return { out, lse };
}
export function attentionBackward(
  q: Tensor, k: Tensor, v: Tensor, saved: { out: Tensor; lse: Tensor }, dout: Tensor, opts: AttentionOptions,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const dq = like(q);
  const dk = like(k);
  const dv = like(v);
  call(() =>
    native().attentionBackward(q.handle, k.handle, v.handle, saved.out.handle, saved.lse.handle, dout.handle, dq.handle, dk.handle, dv.handle,
      opts.heads, opts.scale ?? 0, opts.causal ?? false),
  );
  return { dq, dk, dv };
}

/** Nearest-neighbour 2x upsampling of x [N, C, H, W]. */
export function upsample2x(x: Tensor): Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const y = like(x, [n, c, 2 * h, 2 * w]);
  call(() => native().upsampleForward(x.handle, y.handle));
  return y;
}
export function upsample2xBackward(dy: Tensor): Tensor {
  const [n, c, h, w] = dy.shape as [number, number, number, number];
  const dx = like(dy, [n, c, h / 2, w / 2]);
  call(() => native().upsampleBackward(dy.handle, dx.handle));
  return dx;
}

/** cat(xs, dim). */
export function concat(xs: Tensor[], dim: number): Tensor {
  const first = xs[0];
  if (!first) throw new TypeError('concat needs at least one tensor');
  const d = dim < 0 ? dim + first.shape.length : dim;
  const shape = first.shape.slice();
  shape[d] = xs.reduce((s, t) => s + (t.shape[d] ?? 0), 0);
  const y = like(first, shape);
  call(() => native().concat(xs.map((t) => t.handle), dim, y.handle));
  return y;
}
/** The inverse of concat: parts of the given sizes along dim. */
export function split(y: Tensor, dim: number, sizes: number[]): Tensor[] {
  const d = dim < 0 ? dim + y.shape.length : dim;
  const parts = sizes.map((s) => {
    const shape = y.shape.slice();
    shape[d] = s;
    return like(y, shape);
  });
  call(() => native().split(y.handle, dim, parts.map((t) => t.handle)));
  return parts;
}

/** table[ids] with ids i32 [...] and table [V, D]. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  const y = like(table, [...ids.shape, table.shape[1] ?? 0]);
  call(() => native().embeddingForward(ids.handle, table.handle, y.handle));
  return y;
}
/** dtable[ids] += dy (in place). */
export function embeddingBackward(ids: Tensor, dy: Tensor, dtable: Tensor): void {
  call(() => native().embeddingBackward(ids.handle, dy.handle, dtable.handle));
}
/** Sinusoidal timestep embedding, cos first: t [N] -> [N, dim]. */
export function timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
  const y = like(t, [t.shape[0] ?? 0, dim]);
  call(() => native().timestepEmbedding(t.handle, dim, maxPeriod, y.handle));
  return y;
}

/** Sum (or mean) of all elements, as a one-element tensor. */
export function sum(x: Tensor): Tensor {
  const y = like(x, [1]);
  call(() => native().reduceAll(x.handle, false, y.handle));
  return y;
}
export function mean(x: Tensor): Tensor {
  const y = like(x, [1]);
  call(() => native().reduceAll(x.handle, true, y.handle));
  return y;
}
/** Gradient of sum/mean: dy broadcast to `shape` (divided by the count for the mean). */
export function reduceBackward(dy: Tensor, shape: number[], isMean: boolean): Tensor {
  const dx = like(dy, shape);
  call(() => native().reduceAllBackward(dy.handle, isMean, dx.handle));
  return dx;
}

/** loss = Σ_n w_n · mean_i (pred − target)² (w_n = 1/N by default); perSample = unweighted means. */
export function mseLoss(pred: Tensor, target: Tensor, weights?: Tensor): { loss: Tensor; perSample: Tensor } {
  const loss = like(pred, [1]);
  const perSample = like(pred, [pred.shape[0] ?? 0]);
  call(() => native().mseForward(pred.handle, target.handle, weights?.handle ?? null, loss.handle, perSample.handle));
  return { loss, perSample };
}
export function mseLossBackward(pred: Tensor, target: Tensor, weights: Tensor | undefined, dloss: Tensor): Tensor {
  const dpred = like(pred);
  call(() => native().mseBackward(pred.handle, target.handle, weights?.handle ?? null, dloss.handle, dpred.handle));
  return dpred;
}

export type { AdamWOptions };

/** AdamW step in place on param, m, v (f32 moments). */
export function adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void {
  call(() => native().adamw(param.handle, grad.handle, m.handle, v.handle, opts));
}

/** 8-bit AdamW state of one parameter tensor (format: docs/native.md). */
export interface AdamW8bitState {
  block: 256 | 2048;
  mQ: Tensor;
  mAbsmax: Tensor;
  vQ: Tensor;
  vAbsmax: Tensor;
}
export function adamw8bitState(param: Tensor, block: 256 | 2048 = 2048): AdamW8bitState {
  const blocks = Math.ceil(param.numel / block);
  const st = {
    block,
    mQ: empty([param.numel], { dtype: 'u8', device: param.device }),
    mAbsmax: empty([blocks], { device: param.device }),
    vQ: empty([param.numel], { dtype: 'u8', device: param.device }),
    vAbsmax: empty([blocks], { device: param.device }),
  };
  call(() => native().adamw8bitInit(st.mQ.handle, st.mAbsmax.handle, st.vQ.handle, st.vAbsmax.handle));
  return st;
}
export function adamw8bit(param: Tensor, grad: Tensor, st: AdamW8bitState, opts: AdamWOptions): void {
  call(() => native().adamw8bit(param.handle, grad.handle, st.mQ.handle, st.mAbsmax.handle, st.vQ.handle, st.vAbsmax.handle, st.block, opts));
}

/**
 * 8-bit AdamW over many parameters in one call (on CUDA a few launches for all of them: 56 tensors each);
 * the same as adamw8bit on each entry in turn. Entries share the device, the parameter dtype and the block size.
 */
export function adamw8bitMulti(
  entries: { param: Tensor; grad: Tensor; state: AdamW8bitState; /** stochastic rounding stream; default: the entry's index */ srStream?: number }[],
  opts: AdamWOptions,
): void {
  const first = entries[0];
  if (!first) return;
  const block = first.state.block;
  if (entries.some((e) => e.state.block !== block)) throw new TypeError('adamw8bitMulti: every state must use the same block size');
  const h = (f: (e: (typeof entries)[number]) => Tensor) => entries.map((e) => f(e).handle);
  call(() =>
    native().adamw8bitMulti(h((e) => e.param), h((e) => e.grad), h((e) => e.state.mQ), h((e) => e.state.mAbsmax),
      h((e) => e.state.vQ), h((e) => e.state.vAbsmax), block, opts, entries.map((e, i) => e.srStream ?? i)),
  );
}

/** sqrt of the sum of squares over all tensors, as a one-element tensor. */
export function globalNorm(ts: Tensor[]): Tensor {
  const first = ts[0];
  if (!first) throw new TypeError('globalNorm needs at least one tensor');
  const out = like(first, [1]);
  call(() => native().globalNorm(ts.map((t) => t.handle), out.handle));
  return out;
}
/** Scales every tensor by min(1, maxNorm / (norm + 1e-6)), in place. */
export function clipByNorm(ts: Tensor[], norm: Tensor, maxNorm: number): void {
  call(() => native().clipByNorm(ts.map((t) => t.handle), norm.handle, maxNorm));
}
/** ema -= (1 - decay)(ema - param), in place. */
export function emaUpdate(ema: Tensor, param: Tensor, decay: number): void {
  call(() => native().emaUpdate(ema.handle, param.handle, decay));
}
/** One-element f32 tensor: 1 if any tensor holds inf or NaN (loss-scale overflow), else 0. */
export function checkFinite(ts: Tensor[]): Tensor {
  const first = ts[0];
  if (!first) throw new TypeError('checkFinite needs at least one tensor');
  const found = empty([1], { device: first.device });
  call(() => native().checkFinite(ts.map((t) => t.handle), found.handle));
  return found;
}
