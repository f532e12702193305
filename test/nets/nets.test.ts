/**
 * The native SD1.x networks against the independent float64 reference (test/reference) on the tiny arch:
 * random (hash-generated) weights and inputs, float32 in the core, relative error ≤ 1e-4. Also the
 * parameter key set against src/model/keys.ts and the library API (openModel) on model files.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cudaHalfDtype, cudaStatus, tensor } from '../../src/core/index.js';
import { TINY_ARCH } from '../../src/model/arch.js';
import { createModel } from '../../src/model/create.js';
import { expectedTensors, isBufferKey } from '../../src/model/keys.js';
import { openModel, type OpenModelOptions } from '../../src/index.js';
import { DbtError, UsageError } from '../../src/errors.js';
import { createNets } from '../../src/nets/index.js';
import { clipTextForward } from '../reference/clip.js';
import { tensor as refTensor } from '../reference/f64.js';
import { hashUniform, randomParams, type ParamStore } from '../reference/params.js';
import { unetForward } from '../reference/unet.js';
import { vaeDecode, vaeEncode } from '../reference/vae.js';
import { relError, toF32, writeHashCheckpoint } from './helpers.js';

const TOL = 1e-4;
const work = mkdtempSync(join(tmpdir(), 'dbt-nets-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Inputs rounded to f32, so both sides see the same numbers. */
function input(key: string, shape: number[], scale = 1) {
  const n = shape.reduce((a, b) => a * b, 1);
  return refTensor(shape, Array.from(hashUniform(key, n), (v) => Math.fround(v * scale)));
}

function tinyIds(rows: number): number[] {
  const ids: number[] = [];
  for (let r = 0; r < rows; r++) {
    const n = 5 + 9 * r;
    for (let s = 0; s < 77; s++) ids.push(s === 0 ? 512 : s <= n ? (r * 131 + s * 37) % 512 : 513);
  }
  return ids;
}

describe('native networks vs the float64 reference (tiny arch, f32)', () => {
  const ref = randomParams({ f32: true });
  const nets = createNets(TINY_ARCH);
  for (const net of Object.values(nets)) {
    for (const { key, shape } of net.paramSpecs()) {
      const t = tensor(Float32Array.from(ref.get(key, shape)), shape);
      net.setParam(key, t);
      t.dispose();
    }
  }
  afterAll(() => Object.values(nets).forEach((n) => n.dispose()));

  it('UNet eps prediction (two timesteps, 77-token context; and a 6x10 latent)', () => {
    for (const [shape, ts, L] of [[[2, 4, 8, 8], [999, 37], 77], [[1, 4, 6, 10], [500.5], 5]] as const) {
      const x = input(`x${shape}`, [...shape]);
      const ctx = input(`ctx${shape}`, [shape[0], L, 32]);
      const want = unetForward(ref, TINY_ARCH.unet, x, ts, ctx);
      const xs = tensor(Float32Array.from(x.data), x.shape);
      const tt = tensor(Float32Array.from(ts), [ts.length]);
      const cs = tensor(Float32Array.from(ctx.data), ctx.shape);
      const y = nets.unet.unetForward(xs, tt, cs);
      expect(y.shape).toEqual(want.shape);
      expect(relError(y.read() as Float32Array, want.data), `x [${shape}]`).toBeLessThan(TOL);
      [xs, tt, cs, y].forEach((t) => t.dispose());
    }
  });

  it('text encoder with clip skip 1 and 2', () => {
    const ids = tinyIds(2);
    const idt = tensor(Int32Array.from(ids), [2, 77]);
    for (const skip of [1, 2]) {
      const want = clipTextForward(ref, TINY_ARCH.text, ids, 2, skip);
      const y = nets.text.textForward(idt, skip);
      expect(y.shape).toEqual([2, 77, 32]);
      expect(relError(y.read() as Float32Array, want.data), `clip skip ${skip}`).toBeLessThan(TOL);
      y.dispose();
    }
    idt.dispose();
  });

  it('VAE encode (even and odd sizes) and decode', () => {
    for (const shape of [[1, 3, 16, 16], [2, 3, 15, 13]]) {
      const img = input(`img${shape}`, shape);
      const want = vaeEncode(ref, TINY_ARCH.vae, img);
      const it = tensor(Float32Array.from(img.data), shape);
      const { mean, logvar } = nets.vae.vaeEncode(it);
      expect(mean.shape).toEqual(want.mean.shape);
      expect(relError(mean.read() as Float32Array, want.mean.data), `mean [${shape}]`).toBeLessThan(TOL);
      expect(relError(logvar.read() as Float32Array, want.logvar.data), `logvar [${shape}]`).toBeLessThan(TOL);
      [it, mean, logvar].forEach((t) => t.dispose());
    }
    const z = input('z', [1, 4, 6, 8], 2);
    const want = vaeDecode(ref, TINY_ARCH.vae, z);
    const zt = tensor(Float32Array.from(z.data), z.shape);
    const img = nets.vae.vaeDecode(zt);
    expect(img.shape).toEqual([1, 3, 12, 16]);
    expect(relError(img.read() as Float32Array, want.data)).toBeLessThan(TOL);
    [zt, img].forEach((t) => t.dispose());
  });

  it('holds exactly the parameters of expectedTensors(tiny), by LDM key and shape', () => {
    const have = Object.fromEntries(Object.values(nets).flatMap((n) => n.paramSpecs().map((s) => [s.key, s.shape])));
    const want = Object.fromEntries(expectedTensors(TINY_ARCH).filter((s) => !isBufferKey(s.key)).map((s) => [s.key, s.shape]));
    expect(have).toEqual(want);
  });

  it('UNet backward gives parameter and context gradients; checkpointing leaves them unchanged', () => {
    const x = tensor(Float32Array.from(input('gx', [1, 4, 8, 8]).data), [1, 4, 8, 8]);
    const t = tensor(new Float32Array([123]), [1]);
    const c = tensor(Float32Array.from(input('gc', [1, 7, 32]).data), [1, 7, 32]);
    const dy = tensor(Float32Array.from(input('gdy', [1, 4, 8, 8]).data), [1, 4, 8, 8]);
    const key = 'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight';
    nets.unet.enableGrads(true);
    const runs: Float32Array[][] = [];
    for (const ckpt of [false, true]) {
      nets.unet.setCheckpointing(ckpt);
      nets.unet.zeroGrads();
      const dc = tensor(new Float32Array(7 * 32), [1, 7, 32]);
      nets.unet.unetForward(x, t, c, true).dispose();
      nets.unet.unetBackward(dy, dc);
      runs.push([nets.unet.grad(key)!.read() as Float32Array, dc.read() as Float32Array]);
      dc.dispose();
    }
    expect(runs[0][0].some((v) => v !== 0)).toBe(true);
    expect(runs[0][1].some((v) => v !== 0)).toBe(true);
    expect(runs[1]).toEqual(runs[0]);
    nets.unet.enableGrads(false);
    nets.unet.setCheckpointing(false);
    [x, t, c, dy].forEach((v) => v.dispose());
  });
});

describe('openModel', () => {
  it('loads a single-file f16 checkpoint (converted to f32) and matches the reference on its weights', async () => {
    const file = join(work, 'tiny-f16.safetensors');
    const stored: ParamStore = await writeHashCheckpoint(file, TINY_ARCH, 'F16');
    const m = await openModel(file, { device: 'cpu' });
    try {
      expect(m.config.unet).toEqual(TINY_ARCH.unet);
      expect(m.source.format).toBe('safetensors');
      const x = input('ox', [1, 4, 8, 8]);
      const ctx = input('oc', [1, 77, 32]);
      const y = await m.unet(toF32(x), new Float32Array([321]), toF32(ctx));
      expect(relError(y.data, unetForward(stored, TINY_ARCH.unet, x, [321], ctx).data)).toBeLessThan(TOL);
      const ids = m.tokenize(['a photo of sks person', 'hello']);
      expect(ids.length).toBe(2 * 77);
      const h = await m.encodeText(ids, { clipSkip: 2 });
      expect(h.shape).toEqual([2, 77, 32]);
      expect(relError(h.data, clipTextForward(stored, TINY_ARCH.text, ids, 2, 2).data)).toBeLessThan(TOL);
      const img = input('oi', [1, 3, 16, 16]);
      const { mean, logvar } = await m.vaeEncode(toF32(img));
      const want = vaeEncode(stored, TINY_ARCH.vae, img);
      expect(relError(mean.data, want.mean.data)).toBeLessThan(TOL);
      expect(relError(logvar.data, want.logvar.data)).toBeLessThan(TOL);
      const dec = await m.vaeDecode(mean);
      expect(dec.shape).toEqual([1, 3, 16, 16]);
    } finally {
      m.dispose();
    }
  });

  it('loads a run checkpoint directory holding a bf16 model.safetensors', async () => {
    const dir = join(work, 'runs', 'r', 'checkpoints', 'step-00000010');
    mkdirSync(dir, { recursive: true });
    const stored = await writeHashCheckpoint(join(dir, 'model.safetensors'), TINY_ARCH, 'BF16');
    const m = await openModel(dir);
    try {
      expect(m.source.format).toBe('checkpoint-dir');
      const z = input('bz', [1, 4, 4, 6]);
      const img = await m.vaeDecode(toF32(z));
      expect(relError(img.data, vaeDecode(stored, TINY_ARCH.vae, z).data)).toBeLessThan(TOL);
    } finally {
      m.dispose();
    }
  });

  it('opens a model directory made by dbt create, and reports bad arguments clearly', async () => {
    const dir = join(work, 'models', 'tiny');
    await createModel({ dir, arch: 'tiny', seed: 3 });
    const m = await openModel(dir);
    try {
      const ids = m.tokenize(['nanU Unan, 1girl']);
      expect(ids[0]).toBe(TINY_ARCH.text.bos_token_id);
      const h = await m.encodeText(ids);
      expect(h.shape).toEqual([1, 77, 32]);
      const y = await m.unet({ data: new Float32Array(4 * 8 * 8).fill(0.5), shape: [1, 4, 8, 8] }, new Float32Array([10]), h);
      expect(y.shape).toEqual([1, 4, 8, 8]);
      await expect(m.encodeText(ids, { clipSkip: 3 })).rejects.toThrow(/clipSkip must be an integer from 1 to 2/);
      await expect(m.unet({ data: new Float32Array(4 * 5 * 8), shape: [1, 4, 5, 8] }, new Float32Array([1]), h)).rejects.toThrow(/divisible by 2/);
      await expect(m.unet({ data: new Float32Array(3), shape: [1, 4, 8, 8] }, new Float32Array([1]), h)).rejects.toThrow(/does not describe 3 values/);
      const bad: [() => unknown, RegExp][] = [
        [() => m.tokenize('nanU Unan' as unknown as string[]), /tokenize: prompts must be an array of strings/],
        [() => m.unet({ data: new Float32Array(3 * 64), shape: [1, 3, 8, 8] }, new Float32Array([1]), h), /unet: x must be \[n, 4, h, w\] latents, got \[1, 3, 8, 8\]/],
        [() => m.unet({ data: new Float32Array(2 * 4 * 64), shape: [2, 4, 8, 8] }, new Float32Array([1, 2]), h), /context must be \[2, L, 32\]/],
        [() => m.unet({ data: new Float32Array(4 * 64), shape: [1, 4, 8, 8] }, new Float32Array([1]), { data: new Float32Array(77 * 768), shape: [1, 77, 768] }), /context must be \[1, L, 32\]/],
        [() => m.unet({ data: new Float32Array(2 * 4 * 64), shape: [2, 4, 8, 8] }, new Float32Array([1]), h), /t must be a Float32Array of 2 timesteps/],
        [() => m.vaeEncode({ data: new Float32Array(4 * 64), shape: [1, 4, 8, 8] }), /vaeEncode: img must be \[n, 3, H, W\]/],
        [() => m.vaeDecode({ data: new Float32Array(3 * 16), shape: [1, 3, 4, 4] }), /vaeDecode: z must be \[n, 4, h, w\]/],
      ];
      for (const [call, message] of bad) {
        let err: unknown;
        try {
          await call();
        } catch (e) {
          err = e;
        }
        expect(err, String(message)).toBeInstanceOf(UsageError);
        expect((err as Error).message).toMatch(message);
      }
    } finally {
      m.dispose();
    }
    await expect(m.encodeText(new Int32Array(77))).rejects.toThrow(/disposed/);
    await expect(openModel(join(work, 'nope.safetensors'))).rejects.toThrow(/does not exist/);
  });

  it('takes the device: auto is CUDA when usable, else the same CPU model; cuda without a GPU says why and what to do', async () => {
    const dir = join(work, 'models', 'tiny-dev');
    await createModel({ dir, arch: 'tiny', seed: 5 });
    const x = { data: Float32Array.from(hashUniform('dx', 4 * 8 * 8)), shape: [1, 4, 8, 8] };
    const ctx = { data: Float32Array.from(hashUniform('dc', 77 * 32)), shape: [1, 77, 32] };
    const cpu = await openModel(dir, { device: 'cpu' });
    const want = await cpu.unet(x, new Float32Array([500]), ctx);
    cpu.dispose();
    const st = cudaStatus();
    const auto = await openModel(dir, { device: 'auto' });
    try {
      const y = await auto.unet(x, new Float32Array([500]), ctx);
      if (st.available) {
        expect(auto.device).toBe(`cuda:${st.device}`);
        expect(auto.dtype).toBe(cudaHalfDtype(st.devices.find((d) => d.index === st.device)!.computeCapability));
        expect(relError(y.data, Array.from(want.data))).toBeLessThan(4e-2);
      } else {
        expect([auto.device, auto.dtype]).toEqual(['cpu', 'f32']);
        expect(y.data).toEqual(want.data);
      }
    } finally {
      auto.dispose();
    }
    if (!st.available) {
      for (const device of ['cuda', 'cuda:0'] as const) {
        const err = await openModel(dir, { device }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DbtError);
        expect((err as Error).message).toContain(`CUDA is unavailable: ${st.reason}`);
        expect((err as Error).message).toMatch(/use device 'cpu', or 'auto'/);
      }
      if (st.built) expect(st.reason).toMatch(/driver|device/);
    }
    const bad: [OpenModelOptions, RegExp][] = [
      [{ device: 'gpu' as 'cpu' }, /unknown device 'gpu' \(use 'auto', 'cpu', 'cuda' or 'cuda:N'\)/],
      [{ device: 'cpu:1' as 'cpu' }, /unknown device 'cpu:1'/],
      [{ device: 0 as unknown as 'cpu' }, /device must be a string/],
      [{ dtype: 'f64' as 'f32' }, /unknown dtype 'f64'/],
      [{ device: 'cpu', dtype: 'bf16' }, /on the CPU the networks compute in f32, not bf16/],
    ];
    for (const [opts, message] of bad) {
      const err = await openModel(dir, opts).catch((e: unknown) => e);
      expect(err, String(message)).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('computes in bf16 from compute capability 8.0, else f16', () => {
    expect(['7.5', '8.0', '8.6', '9.0', '12.0'].map(cudaHalfDtype)).toEqual(['f16', 'bf16', 'bf16', 'bf16', 'bf16']);
  });
});
