/**
 * The optimizer through the binding (NativeNet.setOptimizer): a fused optimizer (step inside backward)
 * leaves the same bits as full gradients + optimizerStep(), on the tiny UNet (CPU, f32, 8-bit and f32
 * AdamW, two steps); the fused network holds no gradients after backward; misuse is refused.
 */
import { describe, expect, it } from 'vitest';
import { tensor } from '../../src/core/index.js';
import { TINY_ARCH } from '../../src/model/arch.js';
import { NativeNet } from '../../src/nets/index.js';
import { hashUniform, randomParams } from '../reference/params.js';

function build(): NativeNet {
  const ref = randomParams({ f32: true });
  const net = new NativeNet('unet', TINY_ARCH.unet);
  for (const { key, shape } of net.paramSpecs()) {
    const t = tensor(Float32Array.from(ref.get(key, shape)), shape);
    net.setParam(key, t);
    t.dispose();
  }
  return net;
}

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function input(key: string, shape: number[]) {
  return tensor(Float32Array.from(hashUniform(key, shape.reduce((a, b) => a * b, 1))), shape);
}

describe('NativeNet optimizer', () => {
  for (const eightBit of [true, false]) {
    it(`fused ${eightBit ? '8-bit ' : ''}AdamW equals full gradients + optimizerStep, bit for bit`, () => {
      const full = build();
      const fused = build();
      try {
        full.setOptimizer({ eightBit, block: 256 });
        fused.setOptimizer({ eightBit, block: 256, fused: true });
        fused.setCheckpointing(true);
        const keys = full.paramSpecs().map((s) => s.key);
        const before = full.param(keys[5]).read() as Float32Array;
        for (const step of [1, 2]) {
          const x = input(`x${step}`, [1, 4, 8, 8]);
          const c = input(`c${step}`, [1, 5, 32]);
          const dy = input(`dy${step}`, [1, 4, 8, 8]);
          const t = tensor(new Float32Array([100 * step]), [1]);
          for (const net of [full, fused]) {
            net.setOptimizerParams({ lr: 1e-3, weightDecay: 1e-2, step });
            if (net === full) net.zeroGrads();
            net.unetForward(x, t, c, true).dispose();
            net.unetBackward(dy, null);
          }
          full.optimizerStep();
          expect(() => fused.optimizerStep()).toThrow(/fused gradients step in backward/);
          const differ = keys.filter((key) => !bytes(fused.param(key).read()).equals(bytes(full.param(key).read())));
          expect(differ).toEqual([]);
          expect(fused.grad(keys[0])).toBeNull();
          [x, c, dy, t].forEach((v) => v.dispose());
        }
        expect(full.param(keys[5]).read()).not.toEqual(before);
        full.setOptimizer(null);
        expect(full.grad(keys[0])).toBeNull();
        expect(() => full.optimizerStep()).toThrow(/no optimizer/);
        expect(() => full.setOptimizer({ eightBit: true, block: 100 })).toThrow(/block must be 2048 or 256/);
      } finally {
        full.dispose();
        fused.dispose();
      }
    });
  }
});
