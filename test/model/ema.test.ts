import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createModel } from '../../src/model/create.js';
import { exportModel } from '../../src/model/export.js';
import { inspectModel } from '../../src/model/inspect.js';
import { emaKeyFor } from '../../src/model/keys.js';
import { readModelJson } from '../../src/model/modeldir.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors.js';
import { openWeights } from '../../src/model/weights.js';
import { tempDir } from './helpers.js';

const dir = tempDir();
const KEY = 'model.diffusion_model.time_embed.0.weight';

/** The tiny model's tensors, plus (optionally) EMA copies of the UNet scaled by 0.5 under `emaName(key)`. */
async function tensorsWithEma(emaName?: (k: string) => string): Promise<TensorToWrite[]> {
  await createModel({ dir: join(dir, 'base'), arch: 'tiny', seed: 2, force: true });
  const w = await openWeights(join(dir, 'base'));
  const out: TensorToWrite[] = [];
  try {
    for (const [key, t] of w.tensors) {
      out.push({ key, dtype: t.dtype, shape: t.shape, data: await w.readRaw(key) });
      if (emaName && t.component === 'unet') out.push({ key: emaName(key), dtype: 'F32', shape: t.shape, data: new Uint8Array((await w.readF32(key)).map((v) => v * 0.5).buffer) });
    }
  } finally {
    await w.close();
  }
  return out;
}

describe('EMA weights', () => {
  it('model_ema.* in a checkpoint: found, reported, used by --use-ema and export --ema', async () => {
    const tensors = await tensorsWithEma(emaKeyFor);
    tensors.push({ key: 'model_ema.decay', dtype: 'F32', shape: [], data: new Uint8Array(new Float32Array([0.9999]).buffer) });
    const file = join(dir, 'with-ema.safetensors');
    await writeSafetensors(file, tensors);

    const rep = await inspectModel({ path: file, hash: false });
    expect(rep.ema).toEqual({ present: true, complete: true });
    expect(rep.components.ema.tensors).toBe(287);

    const plain = await openWeights(file);
    const ema = await openWeights(file, { useEma: true });
    try {
      expect(plain.ema).toEqual({ available: true, used: false });
      expect(ema.ema).toEqual({ available: true, used: true });
      expect(await ema.readF32(KEY)).toEqual((await plain.readF32(KEY)).map((v) => v * 0.5));
      const vaeKey = 'first_stage_model.quant_conv.weight';
      expect(await ema.readF32(vaeKey)).toEqual(await plain.readF32(vaeKey));
    } finally {
      await plain.close();
      await ema.close();
    }

    const created = await createModel({ dir: join(dir, 'from-ema'), from: file, useEma: true });
    expect((await readModelJson(created.dir)).source).toMatchObject({ kind: 'file', used_ema: true });
    const noEma = await createModel({ dir: join(dir, 'no-ema'), from: file });
    expect(noEma.warnings.join('\n')).toMatch(/also has EMA weights .* --use-ema/);

    const out = join(dir, 'ema-export.safetensors');
    const r = await exportModel({ source: file, out, ema: true });
    expect(r.metadata['dbt.ema']).toBe('true');
    const f = await SafetensorsFile.open(out);
    try {
      expect(f.keys().some((k) => k.startsWith('model_ema.'))).toBe(false);
      const w = await openWeights(join(dir, 'no-ema'));
      expect(await f.readF32(KEY)).toEqual((await w.readF32(KEY)).map((v) => v * 0.5));
      await w.close();
    } finally {
      await f.close();
    }
  });

  it('asking for EMA where there is none is a clear error', async () => {
    await expect(openWeights(join(dir, 'base'), { useEma: true })).rejects.toThrow(/has no EMA weights \(model_ema\.\*\); drop --use-ema/);
    const partial = (await tensorsWithEma(emaKeyFor)).filter((t) => !t.key.startsWith('model_ema.diffusion_modelout2'));
    await writeSafetensors(join(dir, 'partial.safetensors'), partial);
    await expect(openWeights(join(dir, 'partial.safetensors'), { useEma: true })).rejects.toThrow(/EMA weights cover only 284 of 286 UNet tensors/);
  });

  it('run checkpoint directories: model.safetensors, EMA as ema.<key> in state.safetensors, training summary in the export metadata', async () => {
    const run = join(dir, 'runs', 'nanu');
    const ckpt = join(run, 'checkpoints', 'step-00000100');
    mkdirSync(ckpt, { recursive: true });
    const all = await tensorsWithEma((k) => `ema.${k}`);
    await writeSafetensors(join(ckpt, 'model.safetensors'), all.filter((t) => !t.key.startsWith('ema.')));
    await writeSafetensors(join(ckpt, 'state.safetensors'), all.filter((t) => t.key.startsWith('ema.')));
    writeFileSync(join(ckpt, 'state.json'), JSON.stringify({ step: 100, epoch: 2 }));
    writeFileSync(join(run, 'run.yaml'), 'lr: 2.0e-6\nsteps: 4000\nseed: 7\noptimizer: adamw8bit\nresolution: 512\n');
    const w = await openWeights(ckpt, { useEma: true });
    try {
      expect(w.format).toBe('checkpoint-dir');
      const base = await openWeights(join(dir, 'base'));
      expect(await w.readF32(KEY)).toEqual((await base.readF32(KEY)).map((v) => v * 0.5));
      await base.close();
    } finally {
      await w.close();
    }
    const r = await exportModel({ source: ckpt, out: join(dir, 'nanu-100.safetensors'), dtype: 'F16' });
    expect(r.metadata).toMatchObject({ ss_steps: '100', ss_epoch: '2', ss_learning_rate: '0.000002', ss_max_train_steps: '4000', ss_seed: '7', ss_optimizer: 'adamw8bit', ss_resolution: '(512, 512)' });
    expect(r.dtype).toBe('F16');
  });
});
