/**
 * The plain-TypeScript reference against the PyTorch golden fixtures (float64 both sides), so that the
 * reference the core is tested against is itself checked once against an independent implementation.
 */
import { describe, expect, it } from 'vitest';
import { TINY_ARCH } from '../../src/model/arch.js';
import { expectedTensors, isBufferKey } from '../../src/model/keys.js';
import { clipTextForward } from './clip.js';
import { erf, tensor } from './f64.js';
import { decode, hashInput, loadGolden, relErr } from './golden.js';
import { randomParams } from './params.js';
import { timestepEmbedding, unetForward } from './unet.js';
import { vaeDecode, vaeEncode } from './vae.js';

const golden = loadGolden();
const TOL = 1e-10;
/**
 * The timestep embedding is float32 on both sides (as LDM computes it); PyTorch's vectorised f32 cos/sin
 * differ from correctly rounded ones by 1 ulp in a few entries, which moves the UNet output by ~4e-9.
 * With the embedding's cos/sin taken in f64 on the PyTorch side the two agree to 2e-15.
 */
const TOL_UNET = 2e-8;

/** Keys and shapes the reference reads in one forward of each network (small inputs). */
function paramsRead(): Record<string, number[]> {
  const p = randomParams();
  unetForward(p, TINY_ARCH.unet, tensor([1, 4, 4, 4]), [1], tensor([1, 3, 32]));
  clipTextForward(p, TINY_ARCH.text, [512, 1, 513], 1);
  vaeEncode(p, TINY_ARCH.vae, tensor([1, 3, 4, 4]));
  vaeDecode(p, TINY_ARCH.vae, tensor([1, 4, 2, 2]));
  return Object.fromEntries([...p.tensors].map(([k, t]) => [k, t.shape]));
}

describe('reference networks vs PyTorch golden (tiny arch, float64)', () => {
  const p = randomParams();

  it('UNet eps prediction', () => {
    for (const name of ['unet', 'unet_odd']) {
      const c = golden.cases[name];
      const y = unetForward(p, TINY_ARCH.unet, hashInput(c.inputs.x), c.inputs.t as number[], hashInput(c.inputs.context));
      expect(relErr(y, decode(c.outputs.eps)), name).toBeLessThan(TOL_UNET);
    }
  });

  it('CLIP text encoder, clip skip 1 and 2', () => {
    const c = golden.cases.clip;
    const ids = (c.inputs.ids as number[][]).flat();
    for (const skip of [1, 2]) {
      const y = clipTextForward(p, TINY_ARCH.text, ids, 2, skip);
      expect(relErr(y, decode(c.outputs[`skip${skip}`])), `skip ${skip}`).toBeLessThan(TOL);
    }
  });

  it('VAE encode (even and odd sizes), decode', () => {
    for (const name of ['vae_encode', 'vae_encode_odd']) {
      const c = golden.cases[name];
      const { mean, logvar } = vaeEncode(p, TINY_ARCH.vae, hashInput(c.inputs.img));
      expect(relErr(mean, decode(c.outputs.mean)), name).toBeLessThan(TOL);
      expect(relErr(logvar, decode(c.outputs.logvar)), name).toBeLessThan(TOL);
    }
    const d = golden.cases.vae_decode;
    expect(relErr(vaeDecode(p, TINY_ARCH.vae, hashInput(d.inputs.z)), decode(d.outputs.img))).toBeLessThan(TOL);
  });

  it('VAE logvar clamp to [-30, 20]', () => {
    const c = golden.cases.vae_encode_clamped;
    const pc = randomParams();
    for (const [k, v] of Object.entries(c.overrides!)) pc.set(k, [v.length], v);
    const { mean, logvar } = vaeEncode(pc, TINY_ARCH.vae, hashInput(c.inputs.img));
    const want = decode(c.outputs.logvar);
    expect(relErr(mean, decode(c.outputs.mean))).toBeLessThan(TOL);
    expect(relErr(logvar, want)).toBeLessThan(TOL);
    expect(Math.max(...want.data)).toBe(20);
    expect(Math.min(...want.data)).toBe(-30);
  });

  it('reads exactly the parameters (keys and shapes) the PyTorch implementation reads', () => {
    const seen = paramsRead();
    expect(Object.keys(seen).sort()).toEqual(Object.keys(golden.param_shapes).sort());
    expect(seen).toEqual(golden.param_shapes);
  });

  it('reads exactly the parameter set of src/model/keys.ts (expectedTensors, buffers aside)', () => {
    const want = Object.fromEntries(expectedTensors(TINY_ARCH).filter((s) => !isBufferKey(s.key)).map((s) => [s.key, s.shape]));
    expect(paramsRead()).toEqual(want);
  });
});

describe('reference primitives', () => {
  it('erf matches known values', () => {
    const cases: [number, number][] = [
      [0, 0],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.5, 0.9995930479825550],
      [3, 0.9999779095030014],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, v] of cases) expect(Math.abs(erf(x) - v)).toBeLessThan(1e-15);
  });

  it('timestep embedding is cos-first with LDM frequencies', () => {
    const e = timestepEmbedding([0, 10], 8);
    expect([...e.data.subarray(0, 8)]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    const f1 = Math.exp((-Math.log(10000) * 1) / 4);
    expect(e.data[8 + 1]).toBeCloseTo(Math.cos(10 * f1), 6);
    expect(e.data[8 + 4 + 1]).toBeCloseTo(Math.sin(10 * f1), 6);
  });

  it('a missing or misshapen parameter is an error naming the key', () => {
    const p = randomParams();
    p.set('a.weight', [2], [1, 2]);
    expect(() => p.get('a.weight', [3])).toThrow(/a\.weight has shape \[2\].*\[3\]/);
    expect(tensor([2, 2]).data.length).toBe(4);
  });
});
