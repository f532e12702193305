import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { SD15_ARCH, TINY_ARCH } from '../../src/model/arch.js';
import { createModel } from '../../src/model/create.js';
import { diffusersNames, diffusersToLdm, layoutOfArch, layoutOfDiffusersKeys, ldmToDiffusers } from '../../src/model/diffusers.js';
import { exportModel } from '../../src/model/export.js';
import { expectedTensors } from '../../src/model/keys.js';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors.js';
import { openWeights } from '../../src/model/weights.js';
import { tempDir } from './helpers.js';

describe('LDM ↔ diffusers names', () => {
  it.each([
    ['model.diffusion_model.time_embed.0.weight', 'time_embedding.linear_1.weight'],
    ['model.diffusion_model.input_blocks.0.0.bias', 'conv_in.bias'],
    ['model.diffusion_model.input_blocks.1.0.in_layers.0.weight', 'down_blocks.0.resnets.0.norm1.weight'],
    ['model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight', 'down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight'],
    ['model.diffusion_model.input_blocks.3.0.op.weight', 'down_blocks.0.downsamplers.0.conv.weight'],
    ['model.diffusion_model.input_blocks.4.0.skip_connection.weight', 'down_blocks.1.resnets.0.conv_shortcut.weight'],
    ['model.diffusion_model.input_blocks.11.0.emb_layers.1.weight', 'down_blocks.3.resnets.1.time_emb_proj.weight'],
    ['model.diffusion_model.middle_block.1.proj_out.weight', 'mid_block.attentions.0.proj_out.weight'],
    ['model.diffusion_model.middle_block.2.out_layers.3.weight', 'mid_block.resnets.1.conv2.weight'],
    ['model.diffusion_model.output_blocks.2.1.conv.weight', 'up_blocks.0.upsamplers.0.conv.weight'],
    ['model.diffusion_model.output_blocks.3.1.proj_in.weight', 'up_blocks.1.attentions.0.proj_in.weight'],
    ['model.diffusion_model.output_blocks.5.2.conv.bias', 'up_blocks.1.upsamplers.0.conv.bias'],
    ['model.diffusion_model.output_blocks.11.0.skip_connection.weight', 'up_blocks.3.resnets.2.conv_shortcut.weight'],
    ['model.diffusion_model.out.0.weight', 'conv_norm_out.weight'],
    ['first_stage_model.encoder.down.1.block.0.nin_shortcut.weight', 'encoder.down_blocks.1.resnets.0.conv_shortcut.weight'],
    ['first_stage_model.encoder.down.2.downsample.conv.weight', 'encoder.down_blocks.2.downsamplers.0.conv.weight'],
    ['first_stage_model.decoder.up.3.block.0.conv1.weight', 'decoder.up_blocks.0.resnets.0.conv1.weight'],
    ['first_stage_model.decoder.up.1.upsample.conv.weight', 'decoder.up_blocks.2.upsamplers.0.conv.weight'],
    ['first_stage_model.decoder.mid.block_2.norm1.bias', 'decoder.mid_block.resnets.1.norm1.bias'],
    ['first_stage_model.encoder.mid.attn_1.norm.weight', 'encoder.mid_block.attentions.0.group_norm.weight'],
    ['first_stage_model.encoder.mid.attn_1.proj_out.bias', 'encoder.mid_block.attentions.0.to_out.0.bias'],
    ['first_stage_model.encoder.norm_out.weight', 'encoder.conv_norm_out.weight'],
    ['first_stage_model.post_quant_conv.weight', 'post_quant_conv.weight'],
    ['cond_stage_model.transformer.text_model.encoder.layers.3.mlp.fc1.weight', 'text_model.encoder.layers.3.mlp.fc1.weight'],
  ])('SD1.5 %s ↔ %s', (ldm, diff) => {
    const layout = layoutOfArch(SD15_ARCH);
    expect(ldmToDiffusers(ldm, layout)?.key).toBe(diff);
    const component = ldm.startsWith('model.') ? 'unet' : ldm.startsWith('first') ? 'vae' : 'text_encoder';
    expect(diffusersToLdm(component, diff, layout)?.key).toBe(ldm);
  });

  it.each([
    ['sd15', SD15_ARCH],
    ['tiny', TINY_ARCH],
  ] as const)('%s: every key maps to a distinct diffusers name and back; the layout is recoverable from diffusers names', (_n, arch) => {
    const names = diffusersNames(arch);
    const byComponent = (c: string) => names.filter((n) => n.to.component === c).map((n) => n.to.key);
    expect(new Set(names.map((n) => `${n.to.component}/${n.to.key}`)).size).toBe(names.length);
    const layout = layoutOfDiffusersKeys(byComponent('unet'), byComponent('vae'));
    expect(layout).toEqual(layoutOfArch(arch));
    for (const { ldm, to } of names) expect(diffusersToLdm(to.component, to.key, layout)?.key).toBe(ldm);
    expect(names.filter((n) => n.to.conv1x1).map((n) => n.ldm.split('.').slice(-3).join('.'))).toEqual(
      ['q', 'k', 'v', 'proj_out', 'q', 'k', 'v', 'proj_out'].map((n) => `attn_1.${n}.weight`),
    );
  });
});

describe('diffusers folders', () => {
  const dir = tempDir();

  it('export --format diffusers then create from the folder gives the same tensors (VAE attention reshaped both ways)', async () => {
    await createModel({ dir: join(dir, 'm'), arch: 'tiny', seed: 11 });
    const r = await exportModel({ source: join(dir, 'm'), out: join(dir, 'diff'), format: 'diffusers' });
    expect(r.format).toBe('diffusers');
    for (const f of ['model_index.json', 'unet/config.json', 'vae/config.json', 'text_encoder/config.json', 'scheduler/scheduler_config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt']) {
      expect(existsSync(join(dir, 'diff', f)), f).toBe(true);
    }
    const unetConfig = JSON.parse(readFileSync(join(dir, 'diff/unet/config.json'), 'utf8'));
    expect(unetConfig).toMatchObject({ block_out_channels: [32, 64], layers_per_block: 1, cross_attention_dim: 32, down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'] });
    const vae = await SafetensorsFile.open(join(dir, 'diff/vae/diffusion_pytorch_model.safetensors'));
    try {
      expect(vae.entry('encoder.mid_block.attentions.0.to_q.weight').shape).toEqual([64, 64]);
      expect(vae.entry('decoder.up_blocks.0.upsamplers.0.conv.weight').shape).toEqual([64, 64, 3, 3]);
    } finally {
      await vae.close();
    }
    const a = await openWeights(join(dir, 'm'));
    const b = await openWeights(join(dir, 'diff'));
    try {
      expect(b.format).toBe('diffusers');
      expect(b.arch).toEqual(a.arch);
      expect(b.tokenizer?.vocabSize).toBe(514);
      for (const key of a.tensors.keys()) expect(Buffer.from(await b.readRaw(key)).equals(Buffer.from(await a.readRaw(key))), key).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('accepts old diffusers VAE attention names and text encoders without position_ids', async () => {
    const vaePath = join(dir, 'diff/vae/diffusion_pytorch_model.safetensors');
    const old = await SafetensorsFile.open(vaePath);
    const tensors = [];
    try {
      for (const k of old.keys()) {
        const key = k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.');
        const e = old.entry(k);
        tensors.push({ key, dtype: e.dtype, shape: e.shape, data: await old.readRaw(k) });
      }
    } finally {
      await old.close();
    }
    await writeSafetensors(vaePath, tensors);
    const tePath = join(dir, 'diff/text_encoder/model.safetensors');
    const te = await SafetensorsFile.open(tePath);
    const teTensors = [];
    try {
      for (const k of te.keys()) if (!k.endsWith('position_ids')) teTensors.push({ key: k, dtype: te.entry(k).dtype, shape: te.entry(k).shape, data: await te.readRaw(k) });
    } finally {
      await te.close();
    }
    await writeSafetensors(tePath, teTensors);
    const w = await openWeights(join(dir, 'diff'));
    try {
      expect(w.tensors.size).toBe(expectedTensors(TINY_ARCH).length);
      expect(w.notes.join('\n')).toMatch(/position_ids were absent; added/);
      expect(w.tensors.get('first_stage_model.decoder.mid.attn_1.v.weight')!.shape).toEqual([64, 64, 1, 1]);
    } finally {
      await w.close();
    }
  });

  it('names the missing component file', async () => {
    renameSync(join(dir, 'diff/unet/diffusion_pytorch_model.safetensors'), join(dir, 'diff/unet/other.safetensors'));
    await expect(openWeights(join(dir, 'diff'))).rejects.toThrow(/unet: no unet weights found \(looked for diffusion_pytorch_model.safetensors.*found config.json, other.safetensors\)/);
  });
});
