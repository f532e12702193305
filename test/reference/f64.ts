/**
 * Plain float64 tensor primitives for the independent reference of the SD1.x networks.
 * Written for clarity, not speed: every loop is the textbook definition. Shares no code with the core.
 * Layout: row-major; images NCHW; token sequences [B, N, D].
 */
export interface T {
  data: Float64Array;
  shape: number[];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensor(shape: number[], data?: ArrayLike<number>): T {
  const n = numel(shape);
  if (data !== undefined && data.length !== n) throw new Error(`tensor: ${data.length} values for shape [${shape}]`);
  return { shape: [...shape], data: data === undefined ? new Float64Array(n) : Float64Array.from(data) };
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

/** 2-D convolution, groups 1. pad = [top, bottom, left, right] zeros (LDM's VAE Downsample pads (0,1,0,1)). */
export function conv2d(x: T, w: Float64Array, wShape: number[], b: Float64Array | null, stride: number, pad: [number, number, number, number]): T {
  const [N, C, H, W] = x.shape;
  const [O, Cw, KH, KW] = wShape;
  check(C === Cw, `conv2d: input has ${C} channels, weight expects ${Cw}`);
  const [pt, pb, pl, pr] = pad;
  const HO = Math.floor((H + pt + pb - KH) / stride) + 1;
  const WO = Math.floor((W + pl + pr - KW) / stride) + 1;
  const y = tensor([N, O, HO, WO]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const out = y.data.subarray(((n * O + o) * HO) * WO, ((n * O + o + 1) * HO) * WO);
      if (b) out.fill(b[o]);
      for (let c = 0; c < C; c++) {
        const plane = (n * C + c) * H * W;
        for (let ky = 0; ky < KH; ky++) {
          for (let kx = 0; kx < KW; kx++) {
            const wv = w[((o * C + c) * KH + ky) * KW + kx];
            for (let oy = 0; oy < HO; oy++) {
              const iy = oy * stride + ky - pt;
              if (iy < 0 || iy >= H) continue;
              for (let ox = 0; ox < WO; ox++) {
                const ix = ox * stride + kx - pl;
                if (ix < 0 || ix >= W) continue;
                out[oy * WO + ox] += wv * x.data[plane + iy * W + ix];
              }
            }
          }
        }
      }
    }
  }
  return y;
}

/** GroupNorm over (channels of the group × spatial), biased variance, affine per channel. */
export function groupNorm(x: T, groups: number, gamma: Float64Array, beta: Float64Array, eps: number): T {
  const [N, C] = x.shape;
  const S = numel(x.shape.slice(2));
  check(C % groups === 0, `groupNorm: ${C} channels not divisible by ${groups} groups`);
  const cpg = C / groups;
  const y = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const start = (n * C + g * cpg) * S;
      const len = cpg * S;
      let mean = 0;
      for (let i = 0; i < len; i++) mean += x.data[start + i];
      mean /= len;
      let v = 0;
      for (let i = 0; i < len; i++) v += (x.data[start + i] - mean) ** 2;
      v /= len;
      const inv = 1 / Math.sqrt(v + eps);
      for (let cc = 0; cc < cpg; cc++) {
        const c = g * cpg + cc;
        for (let s = 0; s < S; s++) {
          const i = start + cc * S + s;
          y.data[i] = (x.data[i] - mean) * inv * gamma[c] + beta[c];
        }
      }
    }
  }
  return y;
}

/** LayerNorm over the last dimension. */
export function layerNorm(x: T, gamma: Float64Array, beta: Float64Array, eps: number): T {
  const D = x.shape[x.shape.length - 1];
  const rows = x.data.length / D;
  const y = tensor(x.shape);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x.data[r * D + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x.data[r * D + i] - mean) ** 2;
    v /= D;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < D; i++) y.data[r * D + i] = (x.data[r * D + i] - mean) * inv * gamma[i] + beta[i];
  }
  return y;
}

/** y = x·Wᵀ + b over the last dimension; W is [out, in] (PyTorch Linear). */
export function linear(x: T, w: Float64Array, wShape: number[], b: Float64Array | null): T {
  const [O, I] = wShape;
  check(x.shape[x.shape.length - 1] === I, `linear: input width ${x.shape[x.shape.length - 1]}, weight expects ${I}`);
  const rows = x.data.length / I;
  const y = tensor([...x.shape.slice(0, -1), O]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < O; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < I; i++) s += x.data[r * I + i] * w[o * I + i];
      y.data[r * O + o] = s;
    }
  }
  return y;
}

export function map(x: T, f: (v: number) => number): T {
  const y = tensor(x.shape);
  for (let i = 0; i < x.data.length; i++) y.data[i] = f(x.data[i]);
  return y;
}

export function add(a: T, b: T): T {
  check(a.data.length === b.data.length, `add: shapes [${a.shape}] and [${b.shape}]`);
  const y = tensor(a.shape);
  for (let i = 0; i < a.data.length; i++) y.data[i] = a.data[i] + b.data[i];
  return y;
}

export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
export const silu = (v: number): number => v * sigmoid(v);
export const quickGelu = (v: number): number => v * sigmoid(1.702 * v);
export const geluErf = (v: number): number => 0.5 * v * (1 + erf(v / Math.SQRT2));

/**
 * erf to ~1e-15: Maclaurin series for |x| < 2.5 (alternating terms peak near 1e2, so about 2 digits are lost),
 * continued fraction of erfc beyond (modified Lentz). JavaScript has no Math.erf.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + …)))))
  const tiny = 1e-300;
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = ax + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** Channel concatenation of two NCHW tensors, a first. */
export function concatChannels(a: T, b: T): T {
  const [N, Ca, H, W] = a.shape;
  const Cb = b.shape[1];
  check(b.shape[0] === N && b.shape[2] === H && b.shape[3] === W, `concat: [${a.shape}] with [${b.shape}]`);
  const S = H * W;
  const y = tensor([N, Ca + Cb, H, W]);
  for (let n = 0; n < N; n++) {
    y.data.set(a.data.subarray(n * Ca * S, (n + 1) * Ca * S), n * (Ca + Cb) * S);
    y.data.set(b.data.subarray(n * Cb * S, (n + 1) * Cb * S), (n * (Ca + Cb) + Ca) * S);
  }
  return y;
}

export function upsampleNearest2x(x: T): T {
  const [N, C, H, W] = x.shape;
  const y = tensor([N, C, 2 * H, 2 * W]);
  for (let p = 0; p < N * C; p++) {
    for (let oy = 0; oy < 2 * H; oy++) {
      for (let ox = 0; ox < 2 * W; ox++) y.data[(p * 2 * H + oy) * 2 * W + ox] = x.data[(p * H + (oy >> 1)) * W + (ox >> 1)];
    }
  }
  return y;
}

/** [N, C, H, W] -> [N, H·W, C] */
export function toTokens(x: T): T {
  const [N, C, H, W] = x.shape;
  const S = H * W;
  const y = tensor([N, S, C]);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) y.data[(n * S + s) * C + c] = x.data[(n * C + c) * S + s];
  return y;
}

/** [N, H·W, C] -> [N, C, H, W] */
export function fromTokens(x: T, H: number, W: number): T {
  const [N, S, C] = x.shape;
  check(S === H * W, `fromTokens: ${S} tokens for ${H}x${W}`);
  const y = tensor([N, C, H, W]);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) y.data[(n * C + c) * S + s] = x.data[(n * S + s) * C + c];
  return y;
}

/**
 * Multi-head scaled dot-product attention. q [B, Nq, H·d], k and v [B, Nk, H·d]; head h uses columns
 * h·d … h·d+d-1 (the `b n (h d)` split of LDM and HF CLIP). causal: query i sees keys 0..i only.
 */
export function attention(q: T, k: T, v: T, heads: number, scale: number, causal: boolean): T {
  const [B, Nq, D] = q.shape;
  const Nk = k.shape[1];
  check(D % heads === 0, `attention: width ${D} not divisible by ${heads} heads`);
  const d = D / heads;
  const y = tensor([B, Nq, D]);
  const w = new Float64Array(Nk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < Nq; i++) {
        const kmax = causal ? Math.min(i + 1, Nk) : Nk;
        let m = -Infinity;
        for (let j = 0; j < kmax; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) s += q.data[(b * Nq + i) * D + h * d + c] * k.data[(b * Nk + j) * D + h * d + c];
          w[j] = s * scale;
          if (w[j] > m) m = w[j];
        }
        let z = 0;
        for (let j = 0; j < kmax; j++) {
          w[j] = Math.exp(w[j] - m);
          z += w[j];
        }
        for (let c = 0; c < d; c++) {
          let s = 0;
          for (let j = 0; j < kmax; j++) s += w[j] * v.data[(b * Nk + j) * D + h * d + c];
          y.data[(b * Nq + i) * D + h * d + c] = s / z;
        }
      }
    }
  }
  return y;
}

/** Adds a per-(n, c) value to every spatial position: ResBlock timestep injection. */
export function addPerChannel(x: T, e: T): T {
  const [N, C] = x.shape;
  const S = numel(x.shape.slice(2));
  check(e.shape[0] === N && e.shape[1] === C, `addPerChannel: [${x.shape}] + [${e.shape}]`);
  const y = tensor(x.shape);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) y.data[(n * C + c) * S + s] = x.data[(n * C + c) * S + s] + e.data[n * C + c];
  return y;
}

/** Channels [from, to) of an NCHW tensor. */
export function sliceChannels(x: T, from: number, to: number): T {
  const [N, C, H, W] = x.shape;
  const S = H * W;
  const y = tensor([N, to - from, H, W]);
  for (let n = 0; n < N; n++) y.data.set(x.data.subarray((n * C + from) * S, (n * C + to) * S), n * (to - from) * S);
  return y;
}
