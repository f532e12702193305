/** Shared by the network tests: hash-generated weights (test/reference/params.ts) as f32 or f16 files. */
import { writeSafetensors } from '../../src/model/safetensors.js';
import { expectedTensors, isBufferKey } from '../../src/model/keys.js';
import { fromFloat32, toFloat32 } from '../../src/model/dtype.js';
import type { ModelArch } from '../../src/model/arch.js';
import { type T } from '../reference/f64.js';
import { ParamStore, randomParamValues } from '../reference/params.js';

/** max |a − b| / max |b|. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} vs ${b.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

export function toF32(t: T): { data: Float32Array; shape: number[] } {
  return { data: Float32Array.from(t.data), shape: t.shape };
}

/**
 * Writes a single-file SD1 checkpoint (LDM keys, position_ids included) of hash-generated weights in
 * `dtype`, and returns the reference parameter store holding exactly the stored values.
 */
export async function writeHashCheckpoint(path: string, arch: ModelArch, dtype: 'F32' | 'F16' | 'BF16'): Promise<ParamStore> {
  const store = new ParamStore();
  const tensors = expectedTensors(arch).map((s) => {
    if (isBufferKey(s.key)) {
      const ids = new BigInt64Array(s.shape[1]);
      for (let i = 0; i < ids.length; i++) ids[i] = BigInt(i);
      return { key: s.key, dtype: 'I64' as const, shape: s.shape, data: new Uint8Array(ids.buffer) };
    }
    const bytes = fromFloat32(Float32Array.from(randomParamValues(s.key, s.shape)), dtype).slice();
    store.set(s.key, s.shape, toFloat32(bytes, dtype));
    return { key: s.key, dtype, shape: s.shape, data: bytes };
  });
  await writeSafetensors(path, tensors);
  return store;
}
