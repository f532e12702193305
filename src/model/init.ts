/**
 * Random initialisation of a fresh model, tensor by tensor, as the original code would initialise it
 * (see the InitRule of each TensorSpec). Each tensor's values depend only on (seed, key), so tensors can
 * be produced lazily, in any order, and a model can be regenerated bit for bit.
 */
import type { TensorSpec } from './keys.js';
import { numel } from './keys.js';
import { CounterStream } from './random.js';

/** f32 values of a float tensor. */
export function initTensorF32(spec: TensorSpec, seed: number): Float32Array {
  const n = numel(spec.shape);
  const out = new Float32Array(n);
  const init = spec.init;
  switch (init.kind) {
    case 'kaiming_uniform':
    case 'bias_uniform': {
      // kaiming_uniform_(a=√5) gives bound = gain·√(3/fan_in) with gain = √(2/(1+5)), i.e. 1/√fan_in.
      const bound = 1 / Math.sqrt(init.fanIn);
      new CounterStream(seed, spec.key).uniform(out, -bound, bound);
      return out;
    }
    case 'normal':
      new CounterStream(seed, spec.key).normal(out, 0, init.std);
      return out;
    case 'ones':
      out.fill(1);
      return out;
    case 'zeros':
      return out;
    case 'position_ids':
      for (let i = 0; i < n; i++) out[i] = i;
      return out;
  }
}

/** Bytes of an initialised tensor in its own dtype (I64 for position_ids, else f32). */
export function initTensorBytes(spec: TensorSpec, seed: number): Uint8Array {
  if (spec.dtype === 'I64') {
    const ids = new BigInt64Array(numel(spec.shape));
    for (let i = 0; i < ids.length; i++) ids[i] = BigInt(i);
    return new Uint8Array(ids.buffer);
  }
  const f = initTensorF32(spec, seed);
  return new Uint8Array(f.buffer);
}
