/**
 * One tensor from an open model to a writer, converted to the target dtype on the way: the common step of
 * `create` (checkpoint → model directory) and `export` (model → single file / diffusers folder).
 */
import { convertFloatBytes, dtypeSize, isFloatDType, type DType, type FloatStoreDType } from './dtype.js';
import { numel } from './keys.js';
import type { TensorToWrite } from './safetensors.js';
import type { WeightSource } from './weights.js';

export interface TransferOptions {
  /** Name in the output (diffusers export renames). */
  as?: string;
  /** Shape in the output (same element count; diffusers' VAE attention linears). */
  shape?: number[];
  onBytes?: (bytes: number) => void;
}

/** The dtype a tensor is written as when floats go to `floatType` (integers stay as they are). */
export function targetDType(stored: DType, floatType: FloatStoreDType): DType {
  return isFloatDType(stored) ? floatType : stored;
}

export function transferTensor(w: WeightSource, key: string, floatType: FloatStoreDType, opts: TransferOptions = {}): TensorToWrite {
  const t = w.tensors.get(key);
  if (!t) throw new Error(`internal: no tensor ${key} to transfer`);
  const dtype = targetDType(t.dtype, floatType);
  const bytes = numel(t.shape) * dtypeSize(dtype);
  const at = w.location(key);
  return {
    key: opts.as ?? key,
    dtype,
    shape: opts.shape ?? t.shape,
    // Same dtype from a file: the writer copies the stored bytes in the kernel (and never calls `data`).
    source: at ? { ...at, verbatim: dtype === t.dtype } : undefined,
    onCopied: opts.onBytes,
    data: (scratch) => {
      // Same dtype: a plain copy in small chunks through one cache-resident buffer (no 100 MB buffers).
      if (dtype === t.dtype) return countChunks(w.chunks(key), opts.onBytes);
      // Conversion: the whole tensor, converted into the writer's scratch (it is overlapped with writing).
      return w.readRaw(key).then((raw) => {
        const out = convertFloatBytes(raw, t.dtype, dtype as FloatStoreDType, scratch(bytes));
        opts.onBytes?.(out.byteLength);
        return out;
      });
    },
  };
}

async function* countChunks(chunks: AsyncIterable<Uint8Array>, onBytes?: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const c of chunks) {
    yield c;
    onBytes?.(c.byteLength);
  }
}
