import { describe, expect, it } from 'vitest';
import { SD15_ARCH, TINY_ARCH } from '../../src/model/arch.js';
import { emaKeyFor, expectedTensors, isBufferKey, numel, parameterCounts } from '../../src/model/keys.js';

describe('expectedTensors', () => {
  it('gives the SD1.5 key set: 1130 parameter tensors plus position_ids, with the published counts', () => {
    const specs = expectedTensors(SD15_ARCH);
    expect(specs.filter((s) => !isBufferKey(s.key)).length).toBe(1130);
    expect(specs.filter((s) => isBufferKey(s.key)).map((s) => s.key)).toEqual(['cond_stage_model.transformer.text_model.embeddings.position_ids']);
    expect(new Set(specs.map((s) => s.key)).size).toBe(specs.length);
    expect(parameterCounts(SD15_ARCH)).toEqual({ unet: 859_520_964, vae: 83_653_863, text_encoder: 123_060_480 });
  });

  it('has the shapes REFERENCE.md §2 lists for SD1.5', () => {
    const shapes = new Map(expectedTensors(SD15_ARCH).map((s) => [s.key, s.shape]));
    const table: [string, number[]][] = [
      ['model.diffusion_model.input_blocks.0.0.weight', [320, 4, 3, 3]],
      ['model.diffusion_model.time_embed.0.weight', [1280, 320]],
      ['model.diffusion_model.input_blocks.1.1.proj_in.weight', [320, 320, 1, 1]],
      ['model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight', [320, 768]],
      ['model.diffusion_model.out.2.weight', [4, 320, 3, 3]],
      ['model.diffusion_model.output_blocks.11.0.skip_connection.weight', [320, 640, 1, 1]],
      ['model.diffusion_model.output_blocks.2.1.conv.weight', [1280, 1280, 3, 3]],
      ['model.diffusion_model.output_blocks.5.2.conv.weight', [1280, 1280, 3, 3]],
      ['first_stage_model.encoder.mid.attn_1.q.weight', [512, 512, 1, 1]],
      ['first_stage_model.quant_conv.weight', [8, 8, 1, 1]],
      ['first_stage_model.post_quant_conv.weight', [4, 4, 1, 1]],
      ['first_stage_model.decoder.up.0.block.0.nin_shortcut.weight', [128, 256, 1, 1]],
      ['cond_stage_model.transformer.text_model.embeddings.token_embedding.weight', [49408, 768]],
      ['cond_stage_model.transformer.text_model.embeddings.position_embedding.weight', [77, 768]],
      ['cond_stage_model.transformer.text_model.embeddings.position_ids', [1, 77]],
    ];
    for (const [key, shape] of table) expect(shapes.get(key), key).toEqual(shape);
  });

  it('marks the LDM zero_module tensors and the int64 buffer', () => {
    const byKey = new Map(expectedTensors(TINY_ARCH).map((s) => [s.key, s]));
    expect(byKey.get('model.diffusion_model.out.2.weight')!.init.kind).toBe('zeros');
    expect(byKey.get('model.diffusion_model.input_blocks.1.0.out_layers.3.weight')!.init.kind).toBe('zeros');
    expect(byKey.get('model.diffusion_model.input_blocks.1.1.proj_out.bias')!.init.kind).toBe('zeros');
    expect(byKey.get('model.diffusion_model.input_blocks.1.0.in_layers.2.weight')!.init).toEqual({ kind: 'kaiming_uniform', fanIn: 32 * 9 });
    expect(byKey.get('cond_stage_model.transformer.text_model.embeddings.position_ids')!.dtype).toBe('I64');
  });

  it('builds the tiny arch consistently (every tensor non-empty, skip connections where channels change)', () => {
    const specs = expectedTensors(TINY_ARCH);
    for (const s of specs) expect(numel(s.shape), s.key).toBeGreaterThan(0);
    const keys = specs.map((s) => s.key);
    expect(keys).toContain('model.diffusion_model.input_blocks.3.0.skip_connection.weight');
    expect(keys).toContain('model.diffusion_model.output_blocks.1.2.conv.weight');
    expect(keys).toContain('cond_stage_model.transformer.text_model.embeddings.token_embedding.weight');
    expect(specs.find((s) => s.key.endsWith('token_embedding.weight'))!.shape).toEqual([514, 32]);
  });

  it('names EMA copies the way the LDM trainer does', () => {
    expect(emaKeyFor('model.diffusion_model.input_blocks.0.0.weight')).toBe('model_ema.diffusion_modelinput_blocks00weight');
  });
});
