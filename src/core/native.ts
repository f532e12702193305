/**
 * Loads the native addon (build/Release/dbt_native.node, built by `npm install`) and types its surface.
 * This directory is the only TypeScript that touches the addon; everything else uses ./index.js.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbtError } from '../errors.js';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u8' | 'f64';
export type DeviceName = 'cpu' | 'cuda';
export type TypedArrayFor<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'f64'
    ? Float64Array
    : D extends 'i32'
      ? Int32Array
      : D extends 'u8'
        ? Uint8Array
        : Uint16Array; // f16 / bf16: raw bits
export type AnyTypedArray = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array;

/** The addon's tensor object (owned by src/core/tensor.ts's Tensor). */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: DeviceName;
  readonly nbytes: number;
  readonly disposed: boolean;
  dispose(): void;
  read(): AnyTypedArray;
  write(data: AnyTypedArray): void;
  view(shape: number[]): NativeTensor;
  slice(begin: number, end: number): NativeTensor;
}

export interface AllocStats {
  /** Bytes held by live tensors. */
  current: number;
  /** Highest `current` since start or the last resetPeak(). */
  peak: number;
  /** Bytes held from the system (a caching allocator may hold more than `current`). */
  reserved: number;
  live: number;
  allocations: number;
}

export interface CoreInfo {
  simd: 'avx512' | 'avx2' | 'portable';
  threads: number;
  devices: DeviceName[];
}

/** AdamW hyper-parameters (PyTorch semantics; `gradScale` multiplies the gradient first). */
export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** 1-based step count (bias correction). */
  step: number;
  gradScale?: number;
  /**
   * bf16 parameters without an f32 master copy: param and grad bf16, moments f32 (adamw) or 8-bit; the f32
   * result is stored by stochastic rounding keyed by (srSeed, step, srStream) — see docs/native.md.
   */
  stochasticRounding?: boolean;
  /** Rounding seed (a safe integer or a BigInt up to 2^64). */
  srSeed?: number | bigint;
  /** Rounding stream of this tensor (u32; adamw8bitMulti takes one per entry instead). */
  srStream?: number;
}

export interface CudaDeviceInfo {
  index: number;
  name: string;
  /** e.g. "8.6" */
  computeCapability: string;
  multiprocessors: number;
  /** Bytes. */
  totalMemory: number;
}

/** What the CUDA backend found (see src/core/device.ts). */
export interface CudaStatus {
  /** This build has the CUDA backend. */
  built: boolean;
  /** A usable device was found: tensors on 'cuda' work. */
  available: boolean;
  /** Why CUDA is unavailable ('' when available). */
  reason: string;
  /** Compute capabilities compiled in, e.g. "75 80 86 89 90 (+PTX 90)". */
  archs: string;
  /** Index of the device ops run on (-1 when unavailable). */
  device: number;
  runtimeVersion: number;
  driverVersion: number;
  devices: CudaDeviceInfo[];
}

type T = NativeTensor;
type Opt = NativeTensor | null;

/** Functions of the addon; outputs are preallocated tensors, like the C++ ops. */
export interface NativeModule {
  empty(shape: number[], dtype: DType, device: DeviceName): T;
  fromArray(data: AnyTypedArray, shape: number[], dtype: DType, device: DeviceName): T;
  allocStats(device: DeviceName): AllocStats;
  resetPeak(device: DeviceName): void;
  info(): CoreInfo;
  setNumThreads(n: number): void;
  cudaStatus(): CudaStatus;
  cudaSelectDevice(index: number): void;
  /** Copies a byte range between open files on a worker thread (api_fs.cpp); see src/core/fs.ts. */
  copyFileRange(srcFd: number, srcOffset: number, dstFd: number, dstOffset: number, length: number, readWrite?: boolean, writeback?: boolean): Promise<{ bytes: number; method: 'copy_file_range' | 'read/write' }>;

  fill(t: T, value: number): void;
  copy(src: T, dst: T): void;
  cast(src: T, dst: T): void;
  castStochastic(src: T, dst: T, seed: number | bigint, step: number | bigint, stream: number): void;
  gemm(a: T, b: T, c: T, transA: boolean, transB: boolean, alpha: number, beta: number): void;
  linearForward(x: T, w: T, b: Opt, y: T): void;
  linearBackward(x: T, w: T, dy: T, dx: Opt, dw: Opt, db: Opt): void;
  conv2dForward(x: T, w: T, b: Opt, y: T, stride: number, padTop: number, padBottom: number, padLeft: number, padRight: number): void;
  conv2dBackward(x: T, w: T, dy: T, dx: Opt, dw: Opt, db: Opt, stride: number, padTop: number, padBottom: number, padLeft: number, padRight: number): void;
  activationForward(name: string, x: T, y: T): void;
  activationBackward(name: string, x: T, dy: T, dx: T): void;
  gegluForward(x: T, y: T): void;
  gegluBackward(x: T, dy: T, dx: T): void;
  softmaxForward(x: T, y: T): void;
  softmaxBackward(y: T, dy: T, dx: T): void;
  groupNormForward(x: T, gamma: T, beta: T, y: T, mean: Opt, rstd: Opt, groups: number, eps: number, silu: boolean): void;
  groupNormBackward(x: T, gamma: T, beta: T, mean: T, rstd: T, dy: T, dx: Opt, dgamma: Opt, dbeta: Opt, groups: number, eps: number, silu: boolean): void;
  layerNormForward(x: T, gamma: T, beta: T, y: T, mean: Opt, rstd: Opt, eps: number): void;
  layerNormBackward(x: T, gamma: T, mean: T, rstd: T, dy: T, dx: Opt, dgamma: Opt, dbeta: Opt): void;
  binaryForward(op: string, a: T, b: T, y: T): void;
  binaryBackward(op: string, a: T, b: T, dy: T, da: Opt, db: Opt): void;
  axpby(alpha: number, x: T, beta: number, y: T): void;
  sumTo(x: T, y: T): void;
  attentionForward(q: T, k: T, v: T, out: T, lse: Opt, heads: number, scale: number, causal: boolean): void;
  attentionBackward(q: T, k: T, v: T, out: T, lse: T, dout: T, dq: Opt, dk: Opt, dv: Opt, heads: number, scale: number, causal: boolean): void;
  upsampleForward(x: T, y: T): void;
  upsampleBackward(dy: T, dx: T): void;
  concat(xs: T[], dim: number, y: T): void;
  split(y: T, dim: number, parts: T[]): void;
  embeddingForward(ids: T, table: T, y: T): void;
  embeddingBackward(ids: T, dy: T, dtable: T): void;
  timestepEmbedding(t: T, dim: number, maxPeriod: number, y: T): void;
  reduceAll(x: T, mean: boolean, y: T): void;
  reduceAllBackward(dy: T, mean: boolean, dx: T): void;
  mseForward(pred: T, target: T, weights: Opt, loss: T, perSample: Opt): void;
  mseBackward(pred: T, target: T, weights: Opt, dloss: T, dpred: T): void;
  adamw(param: T, grad: T, m: T, v: T, opts: AdamWOptions): void;
  adamw8bitInit(mQ: T, mAbsmax: T, vQ: T, vAbsmax: T): void;
  adamw8bit(param: T, grad: T, mQ: T, mAbsmax: T, vQ: T, vAbsmax: T, block: number, opts: AdamWOptions): void;
  adamw8bitMulti(params: T[], grads: T[], mQ: T[], mAbsmax: T[], vQ: T[], vAbsmax: T[], block: number, opts: AdamWOptions, srStreams?: number[]): void;
  globalNorm(ts: T[], out: T): void;
  clipByNorm(ts: T[], norm: T, maxNorm: number): void;
  emaUpdate(ema: T, param: T, decay: number): void;
  checkFinite(ts: T[], found: T): void;
}

/** An error raised by the native core: `op` names the operation for argument errors. */
export class CoreError extends DbtError {
  readonly code: string;
  readonly op?: string;
  constructor(message: string, code: string, op?: string) {
    super(message);
    this.code = code;
    this.op = op;
  }
}

let loaded: NativeModule | undefined;

/**
 * Path of the compiled addon (DBT_NATIVE_ADDON overrides it, e.g. for a debug build; a relative path is
 * taken from the working directory: require() would look it up as a package name).
 */
export function addonPath(): string {
  if (process.env.DBT_NATIVE_ADDON) return resolve(process.env.DBT_NATIVE_ADDON);
  const here = dirname(fileURLToPath(import.meta.url)); // src/core or dist/core
  return join(here, '..', '..', 'build', 'Release', 'dbt_native.node');
}

/** The addon when it is built, else undefined (for paths with a plain-JS fallback). */
export function nativeIfBuilt(): NativeModule | undefined {
  return loaded ?? (existsSync(addonPath()) ? native() : undefined);
}

export function native(): NativeModule {
  if (loaded) return loaded;
  const path = addonPath();
  if (!existsSync(path))
    throw new DbtError(`the native core is not built (${path} is missing)`, {
      details: ['run `npm install` (or `npm run build`) in the package directory; it needs make and a C++17 compiler'],
    });
  const require = createRequire(import.meta.url);
  loaded = require(path) as NativeModule;
  return loaded;
}

/** Runs a native call, turning the addon's errors into CoreError (a DbtError: printed without a stack). */
export function call<R>(fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && !(e instanceof DbtError)) {
      const ne = e as Error & { code: string; op?: string };
      if (ne.code.startsWith('DBT_')) throw new CoreError(ne.message, ne.code, ne.op);
    }
    throw e;
  }
}
