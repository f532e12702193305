/**
 * The one place that knows diffusers names: LDM key ↔ diffusers key for the UNet, VAE and CLIP text model
 * (semantics of diffusers' convert_diffusers_to_original_stable_diffusion.py, generalised to any SD1-style
 * block layout), reading a diffusers folder as LDM-keyed tensors, and writing one.
 * Pitfalls: VAE mid-attention q/k/v/proj_out are 1×1 convs in LDM and linears in diffusers; VAE decoder
 * up-blocks are numbered in reverse; older diffusers name the VAE attention query/key/value/proj_attn.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileFormatError } from '../errors.js';
import type { ModelArch } from './arch.js';
import { openCkptStore } from './ckpt.js';
import { expectedTensors, TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX, unetAttentionLevels, type Component } from './keys.js';
import { openSafetensorsStore, type StoredTensor, type TensorStore } from './store.js';

export interface BlockLayout {
  unetLevels: number;
  unetResBlocks: number;
  unetAttention: boolean[];
  vaeLevels: number;
}

export function layoutOfArch(arch: ModelArch): BlockLayout {
  return {
    unetLevels: arch.unet.channel_mult.length,
    unetResBlocks: arch.unet.num_res_blocks,
    unetAttention: unetAttentionLevels(arch.unet),
    vaeLevels: arch.vae.ch_mult.length,
  };
}

function countWhile(has: (i: number) => boolean): number {
  let n = 0;
  while (has(n)) n++;
  return n;
}

/** The block layout of a diffusers UNet/VAE from their key names. */
export function layoutOfDiffusersKeys(unetKeys: string[], vaeKeys: string[]): BlockLayout {
  const u = new Set(unetKeys.map((k) => k.split('.').slice(0, 4).join('.')));
  const v = new Set(vaeKeys.map((k) => k.split('.').slice(0, 3).join('.')));
  const unetLevels = countWhile((i) => u.has(`down_blocks.${i}.resnets.0`));
  return {
    unetLevels,
    unetResBlocks: countWhile((j) => u.has(`down_blocks.0.resnets.${j}`)),
    unetAttention: Array.from({ length: unetLevels }, (_, i) => u.has(`down_blocks.${i}.attentions.0`)),
    vaeLevels: countWhile((i) => v.has(`encoder.down_blocks.${i}`)),
  };
}

/** [LDM prefix, diffusers prefix] pairs within the UNet (keys without `model.diffusion_model.`). */
function unetPairs(l: BlockLayout): [string, string][] {
  const pairs: [string, string][] = [
    ['time_embed.0.', 'time_embedding.linear_1.'],
    ['time_embed.2.', 'time_embedding.linear_2.'],
    ['input_blocks.0.0.', 'conv_in.'],
    ['out.0.', 'conv_norm_out.'],
    ['out.2.', 'conv_out.'],
    ['middle_block.0.', 'mid_block.resnets.0.'],
    ['middle_block.1.', 'mid_block.attentions.0.'],
    ['middle_block.2.', 'mid_block.resnets.1.'],
  ];
  const per = l.unetResBlocks + 1;
  for (let level = 0; level < l.unetLevels; level++) {
    for (let j = 0; j < l.unetResBlocks; j++) {
      pairs.push([`input_blocks.${level * per + j + 1}.0.`, `down_blocks.${level}.resnets.${j}.`]);
      if (l.unetAttention[level]) pairs.push([`input_blocks.${level * per + j + 1}.1.`, `down_blocks.${level}.attentions.${j}.`]);
    }
    if (level < l.unetLevels - 1) pairs.push([`input_blocks.${(level + 1) * per}.0.op.`, `down_blocks.${level}.downsamplers.0.conv.`]);
    const up = l.unetLevels - 1 - level; // diffusers up_blocks count from the lowest resolution
    const attn = l.unetAttention[level];
    for (let j = 0; j < per; j++) {
      pairs.push([`output_blocks.${up * per + j}.0.`, `up_blocks.${up}.resnets.${j}.`]);
      if (attn) pairs.push([`output_blocks.${up * per + j}.1.`, `up_blocks.${up}.attentions.${j}.`]);
    }
    if (level > 0) pairs.push([`output_blocks.${up * per + per - 1}.${attn ? 2 : 1}.`, `up_blocks.${up}.upsamplers.0.`]);
  }
  return pairs;
}

const UNET_RESNET_RENAMES: [string, string][] = [
  ['in_layers.0.', 'norm1.'],
  ['in_layers.2.', 'conv1.'],
  ['out_layers.0.', 'norm2.'],
  ['out_layers.3.', 'conv2.'],
  ['emb_layers.1.', 'time_emb_proj.'],
  ['skip_connection.', 'conv_shortcut.'],
];

/** [LDM prefix, diffusers prefix] pairs within the VAE (keys without `first_stage_model.`). */
function vaePairs(l: BlockLayout): [string, string][] {
  const pairs: [string, string][] = [];
  for (const part of ['encoder', 'decoder']) {
    pairs.push([`${part}.mid.block_1.`, `${part}.mid_block.resnets.0.`]);
    pairs.push([`${part}.mid.block_2.`, `${part}.mid_block.resnets.1.`]);
    pairs.push([`${part}.mid.attn_1.norm.`, `${part}.mid_block.attentions.0.group_norm.`]);
    pairs.push([`${part}.mid.attn_1.q.`, `${part}.mid_block.attentions.0.to_q.`]);
    pairs.push([`${part}.mid.attn_1.k.`, `${part}.mid_block.attentions.0.to_k.`]);
    pairs.push([`${part}.mid.attn_1.v.`, `${part}.mid_block.attentions.0.to_v.`]);
    pairs.push([`${part}.mid.attn_1.proj_out.`, `${part}.mid_block.attentions.0.to_out.0.`]);
    pairs.push([`${part}.norm_out.`, `${part}.conv_norm_out.`]);
  }
  for (let i = 0; i < l.vaeLevels; i++) {
    pairs.push([`encoder.down.${i}.block.`, `encoder.down_blocks.${i}.resnets.`]);
    pairs.push([`encoder.down.${i}.downsample.`, `encoder.down_blocks.${i}.downsamplers.0.`]);
    const up = l.vaeLevels - 1 - i;
    pairs.push([`decoder.up.${i}.block.`, `decoder.up_blocks.${up}.resnets.`]);
    pairs.push([`decoder.up.${i}.upsample.`, `decoder.up_blocks.${up}.upsamplers.0.`]);
  }
  return pairs;
}

/** Older diffusers VAE attention names, accepted on import. */
const OLD_VAE_ATTENTION: [string, string][] = [
  ['.attentions.0.query.', '.attentions.0.to_q.'],
  ['.attentions.0.key.', '.attentions.0.to_k.'],
  ['.attentions.0.value.', '.attentions.0.to_v.'],
  ['.attentions.0.proj_attn.', '.attentions.0.to_out.0.'],
];

function replacePrefix(key: string, pairs: [string, string][], from: 0 | 1): string | undefined {
  let best: [string, string] | undefined;
  for (const p of pairs) if (key.startsWith(p[from]) && (!best || p[from].length > best[from].length)) best = p;
  return best ? best[1 - from] + key.slice(best[from].length) : undefined;
}

function renameResnetInner(rest: string, from: 0 | 1): string {
  for (const p of UNET_RESNET_RENAMES) if (rest.startsWith(p[from])) return p[1 - from] + rest.slice(p[from].length);
  return rest;
}

export interface DiffusersName {
  component: Component;
  key: string;
  /** VAE mid-attention weight: [C, C, 1, 1] in LDM, [C, C] in diffusers. */
  conv1x1: boolean;
}

/** The diffusers name of an LDM key, or undefined for keys diffusers does not store. */
export function ldmToDiffusers(ldmKey: string, layout: BlockLayout): DiffusersName | undefined {
  if (ldmKey.startsWith(UNET_PREFIX)) {
    const k = ldmKey.slice(UNET_PREFIX.length);
    const mapped = replacePrefix(k, unetPairs(layout), 0);
    if (mapped === undefined) return undefined;
    const m = /^((?:down_blocks|up_blocks)\.\d+\.resnets\.\d+\.|mid_block\.resnets\.\d+\.)(.*)$/.exec(mapped);
    return { component: 'unet', key: m ? m[1] + renameResnetInner(m[2], 0) : mapped, conv1x1: false };
  }
  if (ldmKey.startsWith(VAE_PREFIX)) {
    const k = ldmKey.slice(VAE_PREFIX.length);
    const key = replacePrefix(k, vaePairs(layout), 0) ?? k;
    const renamed = key.replace(/\.nin_shortcut\./, '.conv_shortcut.');
    return { component: 'vae', key: renamed, conv1x1: /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(k) };
  }
  if (ldmKey.startsWith(TEXT_PREFIX)) return { component: 'text_encoder', key: ldmKey.slice(TEXT_PREFIX.length), conv1x1: false };
  return undefined;
}

/** The LDM key of a diffusers key of `component`, or undefined when it is not part of an SD1 model. */
export function diffusersToLdm(component: Component, key: string, layout: BlockLayout): { key: string; conv1x1: boolean } | undefined {
  if (component === 'unet') {
    const m = /^((?:down_blocks|up_blocks)\.\d+\.resnets\.\d+\.|mid_block\.resnets\.\d+\.)(.*)$/.exec(key);
    const k = m ? m[1] + renameResnetInner(m[2], 1) : key;
    const mapped = replacePrefix(k, unetPairs(layout), 1);
    return mapped === undefined ? undefined : { key: UNET_PREFIX + mapped, conv1x1: false };
  }
  if (component === 'vae') {
    let k = key;
    for (const [oldName, newName] of OLD_VAE_ATTENTION) k = k.replace(oldName, newName);
    k = k.replace(/\.conv_shortcut\./, '.nin_shortcut.');
    const mapped = replacePrefix(k, vaePairs(layout), 1) ?? k;
    return { key: VAE_PREFIX + mapped, conv1x1: /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(mapped) };
  }
  return { key: TEXT_PREFIX + key, conv1x1: false };
}

// ---------------------------------------------------------------- diffusers folders

const WEIGHT_FILES: Record<Component, string[]> = {
  unet: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.bin', 'diffusion_pytorch_model.fp16.bin'],
  vae: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.bin', 'diffusion_pytorch_model.fp16.bin'],
  text_encoder: ['model.safetensors', 'model.fp16.safetensors', 'pytorch_model.bin', 'pytorch_model.fp16.bin'],
};

export function isDiffusersDir(dir: string): boolean {
  return existsSync(join(dir, 'model_index.json')) || (existsSync(join(dir, 'unet')) && existsSync(join(dir, 'vae')) && existsSync(join(dir, 'text_encoder')));
}

function componentFile(dir: string, c: Component): string {
  const sub = join(dir, c);
  for (const f of WEIGHT_FILES[c]) if (existsSync(join(sub, f))) return join(sub, f);
  const listing = existsSync(sub) ? readdirSync(sub).join(', ') || '(empty)' : '(folder missing)';
  throw new FileFormatError(sub, `no ${c} weights found (looked for ${WEIGHT_FILES[c].join(', ')}; found ${listing})`);
}

export interface DiffusersContents {
  stores: TensorStore[];
  /** LDM key → tensor (reshaped where LDM wants a 1×1 conv). */
  tensors: Map<string, StoredTensor>;
  /** Diffusers keys that have no LDM counterpart. */
  unmapped: string[];
}

/** Opens a diffusers folder's unet/, vae/ and text_encoder/ weights as LDM-keyed tensors. */
export async function openDiffusersDir(dir: string): Promise<DiffusersContents> {
  const stores: TensorStore[] = [];
  try {
    const byComponent = {} as Record<Component, TensorStore>;
    for (const c of ['unet', 'vae', 'text_encoder'] as Component[]) {
      const file = componentFile(dir, c);
      const store = file.endsWith('.safetensors') ? await openSafetensorsStore(file) : await openCkptStore(file);
      stores.push(store);
      byComponent[c] = store;
    }
    const layout = layoutOfDiffusersKeys([...byComponent.unet.tensors.keys()], [...byComponent.vae.tensors.keys()]);
    const tensors = new Map<string, StoredTensor>();
    const unmapped: string[] = [];
    for (const c of ['unet', 'vae', 'text_encoder'] as Component[]) {
      for (const [key, t] of byComponent[c].tensors) {
        const m = diffusersToLdm(c, key, layout);
        if (!m) {
          unmapped.push(`${c}/${key}`);
          continue;
        }
        tensors.set(m.key, m.conv1x1 && t.shape.length === 2 ? { ...t, shape: [...t.shape, 1, 1] } : t);
      }
    }
    return { stores, tensors, unmapped };
  } catch (e) {
    for (const s of stores) await s.close();
    throw e;
  }
}

/** diffusers config.json contents for an SD1 arch (what `from_pretrained` needs). */
export function diffusersConfigs(arch: ModelArch): Record<string, Record<string, unknown>> {
  const u = arch.unet;
  const attn = unetAttentionLevels(u);
  const levels = u.channel_mult.length;
  return {
    model_index: {
      _class_name: 'StableDiffusionPipeline',
      _diffusers_version: '0.27.0',
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler: ['diffusers', 'PNDMScheduler'],
      text_encoder: ['transformers', 'CLIPTextModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
    },
    unet: {
      _class_name: 'UNet2DConditionModel',
      _diffusers_version: '0.27.0',
      act_fn: 'silu',
      attention_head_dim: u.num_heads,
      block_out_channels: u.channel_mult.map((m) => m * u.model_channels),
      center_input_sample: false,
      cross_attention_dim: u.context_dim,
      down_block_types: attn.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
      downsample_padding: 1,
      flip_sin_to_cos: true,
      freq_shift: 0,
      in_channels: u.in_channels,
      layers_per_block: u.num_res_blocks,
      mid_block_scale_factor: 1,
      norm_eps: 1e-5,
      norm_num_groups: u.num_groups,
      out_channels: u.out_channels,
      sample_size: 64,
      transformer_layers_per_block: u.transformer_depth,
      up_block_types: Array.from({ length: levels }, (_, i) => (attn[levels - 1 - i] ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    },
    vae: {
      _class_name: 'AutoencoderKL',
      _diffusers_version: '0.27.0',
      act_fn: 'silu',
      block_out_channels: arch.vae.ch_mult.map((m) => m * arch.vae.ch),
      down_block_types: arch.vae.ch_mult.map(() => 'DownEncoderBlock2D'),
      in_channels: arch.vae.in_channels,
      latent_channels: arch.vae.z_channels,
      layers_per_block: arch.vae.num_res_blocks,
      norm_num_groups: arch.vae.num_groups,
      out_channels: arch.vae.out_ch,
      sample_size: 512,
      scaling_factor: arch.vae.scale_factor,
      up_block_types: arch.vae.ch_mult.map(() => 'UpDecoderBlock2D'),
    },
    text_encoder: {
      architectures: ['CLIPTextModel'],
      model_type: 'clip_text_model',
      hidden_act: arch.text.hidden_act,
      hidden_size: arch.text.hidden_size,
      intermediate_size: arch.text.intermediate_size,
      layer_norm_eps: arch.text.layer_norm_eps,
      max_position_embeddings: arch.text.max_position_embeddings,
      num_attention_heads: arch.text.num_heads,
      num_hidden_layers: arch.text.num_layers,
      vocab_size: arch.text.vocab_size,
      bos_token_id: arch.text.bos_token_id,
      eos_token_id: arch.text.eos_token_id,
      pad_token_id: 1,
      projection_dim: arch.text.hidden_size,
      torch_dtype: 'float32',
    },
    scheduler: {
      _class_name: 'PNDMScheduler',
      _diffusers_version: '0.27.0',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      num_train_timesteps: 1000,
      prediction_type: 'epsilon',
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      timestep_spacing: 'leading',
      trained_betas: null,
    },
    tokenizer: {
      add_prefix_space: false,
      bos_token: '<|startoftext|>',
      clean_up_tokenization_spaces: true,
      do_lower_case: true,
      eos_token: '<|endoftext|>',
      errors: 'replace',
      model_max_length: 77,
      pad_token: '<|endoftext|>',
      tokenizer_class: 'CLIPTokenizer',
      unk_token: '<|endoftext|>',
    },
  };
}

/** Config files of a diffusers folder (weights are written by the caller). */
export async function writeDiffusersConfigs(dir: string, arch: ModelArch): Promise<void> {
  const c = diffusersConfigs(arch);
  const put = async (rel: string, v: unknown) => {
    await mkdir(join(dir, rel, '..'), { recursive: true });
    await writeFile(join(dir, rel), `${JSON.stringify(v, null, 2)}\n`);
  };
  await put('model_index.json', c.model_index);
  await put('unet/config.json', c.unet);
  await put('vae/config.json', c.vae);
  await put('text_encoder/config.json', c.text_encoder);
  await put('scheduler/scheduler_config.json', c.scheduler);
  await put('tokenizer/tokenizer_config.json', c.tokenizer);
}

/** Diffusers file name of each component's weights as dbt writes them. */
export const DIFFUSERS_WEIGHT_FILE: Record<Component, string> = {
  unet: 'unet/diffusion_pytorch_model.safetensors',
  vae: 'vae/diffusion_pytorch_model.safetensors',
  text_encoder: 'text_encoder/model.safetensors',
};

/** Every LDM tensor of `arch` with its diffusers name (position_ids included, as transformers stores it). */
export function diffusersNames(arch: ModelArch): { ldm: string; to: DiffusersName }[] {
  const layout = layoutOfArch(arch);
  return expectedTensors(arch).map((t) => {
    const to = ldmToDiffusers(t.key, layout);
    if (!to) throw new Error(`internal: no diffusers name for ${t.key}`);
    return { ldm: t.key, to };
  });
}
