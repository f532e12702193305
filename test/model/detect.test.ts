import { describe, expect, it } from 'vitest';
import { SD15_ARCH, TINY_ARCH, type ModelArch } from '../../src/model/arch.js';
import { classifyKeys, detectArch } from '../../src/model/detect.js';
import { expectedTensors } from '../../src/model/keys.js';

const shapesOf = (arch: ModelArch) => new Map<string, number[]>(expectedTensors(arch).map((t) => [t.key, [...t.shape]]));
const U = 'model.diffusion_model.';

describe('architecture detection from shapes', () => {
  it('recognises SD1.5 (as sd1) and tiny', () => {
    expect(detectArch('f', shapesOf(SD15_ARCH))).toEqual({ ...SD15_ARCH, name: 'sd1' });
    expect(detectArch('f', shapesOf(TINY_ARCH))).toBe(TINY_ARCH);
  });

  it('detects a non-standard SD1-style layout exactly (mults, res blocks, attention levels, depth, widths)', () => {
    const odd: ModelArch = {
      name: 'sd1',
      unet: { ...SD15_ARCH.unet, model_channels: 64, channel_mult: [1, 2, 3], num_res_blocks: 3, attention_resolutions: [2], transformer_depth: 2, context_dim: 96 },
      vae: { ...SD15_ARCH.vae, ch: 32, ch_mult: [1, 2, 2], num_res_blocks: 1, z_channels: 8, embed_dim: 8 },
      text: { ...SD15_ARCH.text, vocab_size: 1000, hidden_size: 128, num_layers: 3, num_heads: 2, intermediate_size: 256, max_position_embeddings: 40, bos_token_id: 998, eos_token_id: 999 },
    };
    expect(detectArch('f', shapesOf(odd))).toEqual(odd);
  });

  it.each<[string, (m: Map<string, number[]>) => void, RegExp]>([
    ['inpainting', (m) => m.set(`${U}input_blocks.0.0.weight`, [320, 9, 3, 3]), /inpainting model \(UNet input has 9 channels\)/],
    ['instruct-pix2pix', (m) => m.set(`${U}input_blocks.0.0.weight`, [320, 8, 3, 3]), /instruct-pix2pix/],
    ['SD2 linear proj_in', (m) => m.set(`${U}middle_block.1.proj_in.weight`, [1280, 1280]), /SD2.x-style UNet \(linear proj_in/],
    ['SD2 context', (m) => m.set(`${U}middle_block.1.transformer_blocks.0.attn2.to_k.weight`, [1280, 1024]), /SD2.x model \(cross-attention context 1024/],
    ['SDXL conditioner', (m) => m.set('conditioner.embedders.0.transformer.text_model.final_layer_norm.weight', [768]), /SDXL/],
    ['OpenCLIP text encoder', (m) => m.set('cond_stage_model.model.ln_final.weight', [1024]), /SD2.x \(its text encoder is OpenCLIP/],
    ['missing VAE', (m) => [...m.keys()].filter((k) => k.startsWith('first_stage_model.')).forEach((k) => m.delete(k)), /no VAE weights \(first_stage_model\.\*\)/],
    ['missing tensor', (m) => m.delete(`${U}output_blocks.4.1.proj_out.weight`), /1 missing, 0 with the wrong shape/],
    ['wrong shape', (m) => m.set(`${U}output_blocks.4.1.norm.bias`, [7]), /0 missing, 1 with the wrong shape/],
  ])('refuses %s with what it found', (_name, mutate, message) => {
    const m = shapesOf(SD15_ARCH);
    mutate(m);
    expect(() => detectArch('model.safetensors', m)).toThrow(message);
  });

  it('refuses v-prediction models by metadata or marker', () => {
    expect(() => detectArch('f', shapesOf(TINY_ARCH), { 'modelspec.prediction_type': 'v' })).toThrow(/v-prediction model \(metadata modelspec.prediction_type is "v"\)/);
    expect(() => detectArch('f', shapesOf(TINY_ARCH), { ss_v_parameterization: 'True' })).toThrow(/v-prediction/);
    const m = shapesOf(TINY_ARCH);
    m.set('v_pred', []);
    expect(() => detectArch('f', m)).toThrow(/v_pred marker/);
  });

  it('names files that are not full models', () => {
    expect(classifyKeys(new Map([['lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', [4, 320]]]))).toMatchObject({ family: 'LoRA', supported: false });
    expect(classifyKeys(new Map([['encoder.down.0.block.0.conv1.weight', [128, 128, 3, 3]]]))).toMatchObject({ family: 'standalone VAE' });
    expect(classifyKeys(new Map([['down_blocks.0.resnets.0.conv1.weight', [320, 320, 3, 3]]]))).toMatchObject({ family: 'diffusers component' });
  });
});
