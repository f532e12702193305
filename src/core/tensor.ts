/**
 * Tensors of the native core, with explicit lifetime: `dispose()`, or `scope(fn)` which frees every
 * tensor created inside fn except those it returns. Garbage collection also frees native memory
 * eventually, but only as a safety net: memory use must not depend on it.
 */
import { call, native, type AnyTypedArray, type DeviceName, type DType, type NativeTensor, type TypedArrayFor } from './native.js';

const scopes: Set<Tensor>[] = [];

export class Tensor<D extends DType = DType> {
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal use the creation functions (empty, zeros, tensor, …). */
  constructor(handle: NativeTensor) {
    this.handle = handle;
    scopes.at(-1)?.add(this);
  }

  get shape(): number[] {
    return this.handle.shape;
  }
  get dtype(): D {
    return this.handle.dtype as D;
  }
  get device(): DeviceName {
    return this.handle.device;
  }
  get numel(): number {
    return this.handle.shape.reduce((a, b) => a * b, 1);
  }
  get nbytes(): number {
    return this.handle.nbytes;
  }
  get disposed(): boolean {
    return this.handle.disposed;
  }

  /** A copy of the contents (f16/bf16 as raw Uint16 bits). */
  read(): TypedArrayFor<D> {
    return call(() => this.handle.read()) as TypedArrayFor<D>;
  }
  /** Overwrites the contents; the array type must match the dtype and its length the element count. */
  write(data: TypedArrayFor<D>): void {
    call(() => this.handle.write(data as AnyTypedArray));
  }
  /** Same memory, another shape with the same element count. */
  view(shape: number[]): Tensor<D> {
    return new Tensor<D>(call(() => this.handle.view(shape)));
  }
  /** Rows [begin, end) of the first dimension, sharing memory. */
  slice(begin: number, end: number): Tensor<D> {
    return new Tensor<D>(call(() => this.handle.slice(begin, end)));
  }
  /** Releases this handle; memory is freed when no view shares it. Idempotent. */
  dispose(): void {
    this.handle.dispose();
    for (const s of scopes) s.delete(this);
  }
  toString(): string {
    return `Tensor([${this.shape.join(',')}] ${this.dtype}${this.device === 'cpu' ? '' : ` ${this.device}`})`;
  }
}

export interface CreateOptions<D extends DType> {
  dtype?: D;
  device?: DeviceName;
}

/** Uninitialised tensor. */
export function empty<D extends DType = 'f32'>(shape: number[], opts: CreateOptions<D> = {}): Tensor<D> {
  return new Tensor<D>(call(() => native().empty(shape, opts.dtype ?? 'f32', opts.device ?? 'cpu')));
}

export function full<D extends DType = 'f32'>(shape: number[], value: number, opts: CreateOptions<D> = {}): Tensor<D> {
  const t = empty<D>(shape, opts);
  call(() => native().fill(t.handle, value));
  return t;
}

export function zeros<D extends DType = 'f32'>(shape: number[], opts: CreateOptions<D> = {}): Tensor<D> {
  return full(shape, 0, opts);
}

function dtypeOfArray(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Float64Array) return 'f64';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Uint8Array) return 'u8';
  return 'f16';
}

/** A tensor holding a copy of `data` (dtype from the array type unless given: Uint16Array means f16 or bf16 bits). */
export function tensor<D extends DType = 'f32'>(data: AnyTypedArray | number[], shape: number[], opts: CreateOptions<D> = {}): Tensor<D> {
  const arr = Array.isArray(data) ? Float32Array.from(data) : data;
  const dtype = opts.dtype ?? (dtypeOfArray(arr) as D);
  return new Tensor<D>(call(() => native().fromArray(arr, shape, dtype, opts.device ?? 'cpu')));
}

function collect(value: unknown, out: Set<Tensor>, depth: number): void {
  if (value instanceof Tensor) out.add(value);
  else if (depth > 0 && Array.isArray(value)) for (const v of value) collect(v, out, depth - 1);
  else if (depth > 0 && value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, out, depth - 1);
}

/**
 * Runs fn and disposes every tensor created during it, except tensors in its result (a tensor, or
 * arrays / plain objects of them, up to three levels deep), which move to the enclosing scope.
 * Synchronous only: native ops are synchronous, and an async fn would let other work into the scope.
 */
export function scope<R>(fn: () => R): R {
  const tracked = new Set<Tensor>();
  scopes.push(tracked);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of tracked) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of tracked) t.dispose();
    throw new TypeError('scope(fn): fn must be synchronous (it returned a Promise)');
  }
  const kept = new Set<Tensor>();
  collect(result, kept, 3);
  const parent = scopes.at(-1);
  for (const t of tracked) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Takes t out of every enclosing scope: the caller disposes it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}
