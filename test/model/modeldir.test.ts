import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TINY_ARCH } from '../../src/model/arch.js';
import { createModel } from '../../src/model/create.js';
import { floatToHalfBits, toFloat32 } from '../../src/model/dtype.js';
import { initTensorF32 } from '../../src/model/init.js';
import { expectedTensors } from '../../src/model/keys.js';
import { readModelJson } from '../../src/model/modeldir.js';
import { openWeights } from '../../src/model/weights.js';
import { tempDir } from './helpers.js';

const dir = tempDir();

describe('model directories', () => {
  it('a random tiny model holds every expected tensor, initialised by rule, with the tiny tokenizer', async () => {
    const r = await createModel({ dir: join(dir, 'a'), arch: 'tiny', seed: 7 });
    expect(r.warnings).toEqual([]);
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(['model.json', 'text_encoder.safetensors', 'tokenizer', 'unet.safetensors', 'vae.safetensors']);
    const json = await readModelJson(join(dir, 'a'));
    expect(json).toMatchObject({ format: 'dbt-model', name: 'a', dtype: 'F32', source: { kind: 'random', arch: 'tiny', seed: 7 }, scheduler: 'ddim' });
    const w = await openWeights(join(dir, 'a'));
    try {
      expect(w.arch).toEqual(TINY_ARCH);
      expect([...w.tensors.keys()]).toEqual(expectedTensors(TINY_ARCH).map((t) => t.key));
      expect(w.tokenizer?.vocabSize).toBe(514);
      const specs = expectedTensors(TINY_ARCH);
      const conv = specs.find((s) => s.key === 'model.diffusion_model.input_blocks.1.0.in_layers.2.weight')!;
      const got = await w.readF32(conv.key);
      expect(got).toEqual(initTensorF32(conv, 7));
      const bound = 1 / Math.sqrt(32 * 9);
      expect(Math.max(...got.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...got.map(Math.abs))).toBeGreaterThan(bound * 0.95);
      expect((await w.readF32('model.diffusion_model.out.2.weight')).every((v) => v === 0)).toBe(true);
      expect((await w.readF32('first_stage_model.encoder.norm_out.weight')).every((v) => v === 1)).toBe(true);
      const emb = await w.readF32('cond_stage_model.transformer.text_model.embeddings.token_embedding.weight');
      const std = Math.sqrt(emb.reduce((a, v) => a + v * v, 0) / emb.length);
      expect(std).toBeGreaterThan(0.018);
      expect(std).toBeLessThan(0.022);
    } finally {
      await w.close();
    }
  });

  it('the same seed gives the same bytes; another seed does not', async () => {
    await createModel({ dir: join(dir, 'b'), arch: 'tiny', seed: 7 });
    await createModel({ dir: join(dir, 'c'), arch: 'tiny', seed: 8 });
    const f = (d: string) => readFileSync(join(dir, d, 'unet.safetensors'));
    expect(f('b').equals(f('a'))).toBe(true);
    expect(f('c').equals(f('a'))).toBe(false);
  });

  it('re-creating from a model dir is byte-identical; --half stores f16 rounding of the f32 values', async () => {
    await createModel({ dir: join(dir, 'copy'), from: join(dir, 'a') });
    for (const f of ['unet.safetensors', 'vae.safetensors', 'text_encoder.safetensors']) {
      expect(readFileSync(join(dir, 'copy', f)).equals(readFileSync(join(dir, 'a', f))), f).toBe(true);
    }
    await createModel({ dir: join(dir, 'half'), from: join(dir, 'a'), half: true });
    const full = await openWeights(join(dir, 'a'));
    const half = await openWeights(join(dir, 'half'));
    try {
      expect(half.tensors.get('model.diffusion_model.time_embed.0.weight')!.dtype).toBe('F16');
      expect(half.tensors.get('cond_stage_model.transformer.text_model.embeddings.position_ids')!.dtype).toBe('I64');
      for (const key of ['model.diffusion_model.time_embed.0.weight', 'first_stage_model.quant_conv.weight']) {
        const f32 = await full.readF32(key);
        const bits = new Uint16Array(new Uint8Array(await half.readRaw(key)).buffer);
        expect([...bits]).toEqual([...f32].map(floatToHalfBits));
        expect(toFloat32(await half.readRaw(key), 'F16')).toEqual(await half.readF32(key));
      }
    } finally {
      await full.close();
      await half.close();
    }
  });

  it('refuses to overwrite an existing model unless forced, and never leaves temp folders', async () => {
    await expect(createModel({ dir: join(dir, 'a'), arch: 'tiny' })).rejects.toThrow(/already exists.*--force/);
    await createModel({ dir: join(dir, 'a'), arch: 'tiny', seed: 9, force: true });
    expect((await readModelJson(join(dir, 'a'))).source).toEqual({ kind: 'random', arch: 'tiny', seed: 9 });
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('model.json from a newer dbt or damaged is refused clearly', async () => {
    await createModel({ dir: join(dir, 'v'), arch: 'tiny' });
    const p = join(dir, 'v', 'model.json');
    const json = JSON.parse(readFileSync(p, 'utf8'));
    writeFileSync(p, JSON.stringify({ ...json, version: 99 }));
    await expect(openWeights(join(dir, 'v'))).rejects.toThrow(/version 99 is newer/);
    writeFileSync(p, '{');
    await expect(openWeights(join(dir, 'v'))).rejects.toThrow(/model.json: cannot read model description/);
    expect(existsSync(join(dir, 'v', 'unet.safetensors'))).toBe(true);
  });
});
