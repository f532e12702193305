/**
 * Architecture detection from tensor shapes alone (plus metadata for the prediction type). Input keys
 * are LDM keys (already normalised: diffusers names converted, old CLIP keys given `text_model.`).
 * Anything that is not an SD1.x text-to-image model is refused with a message saying what was found.
 */
import { FileFormatError } from '../errors.js';
import { TINY_ARCH, type ClipTextConfig, type ModelArch, type UNetConfig, type VaeConfig } from './arch.js';
import { expectedTensors, TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX, EMA_PREFIX, emaKeyFor } from './keys.js';

export type Shapes = ReadonlyMap<string, readonly number[]>;

/** What kind of file this is, from its keys, before any SD1 detail is checked. */
export function classifyKeys(shapes: Shapes): { family: string; supported: boolean; reason?: string } {
  const keys = [...shapes.keys()];
  const has = (p: string) => keys.some((k) => k.startsWith(p));
  if (has('conditioner.embedders.')) return { family: 'SDXL', supported: false, reason: 'it has an SDXL conditioner (conditioner.embedders.*)' };
  if (shapes.has(`${UNET_PREFIX}label_emb.0.0.weight`)) return { family: 'SDXL or SD2 unCLIP', supported: false, reason: 'its UNet has a label embedding (label_emb)' };
  if (has('cond_stage_model.model.')) return { family: 'SD2.x', supported: false, reason: 'its text encoder is OpenCLIP ViT-H (cond_stage_model.model.*)' };
  if (has('lora_unet_') || has('lora_te_') || keys.some((k) => k.includes('.lora_down.') || k.includes('.lora_A.'))) {
    return { family: 'LoRA', supported: false, reason: 'it holds LoRA weights, not a full model' };
  }
  if (!has(UNET_PREFIX)) {
    if (has('encoder.down.') || has('decoder.up.') || has('encoder.down_blocks.')) return { family: 'standalone VAE', supported: false, reason: 'it holds only VAE weights' };
    if (has('down_blocks.') || has('text_model.')) return { family: 'diffusers component', supported: false, reason: 'it holds one diffusers component; give the whole diffusers folder instead' };
    return { family: 'unknown', supported: false, reason: `no UNet weights (${UNET_PREFIX}*) found` };
  }
  return { family: 'SD1.x', supported: true };
}

function isVPrediction(shapes: Shapes, metadata: Record<string, string>): string | undefined {
  const pt = metadata['modelspec.prediction_type'];
  if (pt && /^v/i.test(pt)) return `metadata modelspec.prediction_type is "${pt}"`;
  if ((metadata.ss_v_parameterization ?? '').toLowerCase() === 'true') return 'metadata ss_v_parameterization is true';
  if (shapes.has('v_pred')) return 'it has a v_pred marker tensor';
  return undefined;
}

function countIndexed(shapes: Shapes, prefix: string, suffix: string): number {
  let n = 0;
  while (shapes.has(`${prefix}${n}${suffix}`)) n++;
  return n;
}

class Finder {
  constructor(
    private readonly file: string,
    private readonly shapes: Shapes,
  ) {}
  shape(key: string, rank?: number): readonly number[] {
    const s = this.shapes.get(key);
    if (!s) throw new FileFormatError(this.file, `not a complete SD1.x checkpoint: tensor "${key}" is missing`);
    if (rank !== undefined && s.length !== rank) throw new FileFormatError(this.file, `tensor "${key}" has shape ${JSON.stringify(s)}; expected ${rank} dimensions`);
    return s;
  }
}

function detectUNet(file: string, shapes: Shapes): UNetConfig {
  const f = new Finder(file, shapes);
  const p = UNET_PREFIX;
  const [mc, inCh] = f.shape(`${p}input_blocks.0.0.weight`, 4);
  if (inCh === 9) throw new FileFormatError(file, 'this is an inpainting model (UNet input has 9 channels); dbt trains text-to-image SD1.x models (4 channels)');
  if (inCh === 8) throw new FileFormatError(file, 'this is an instruct-pix2pix style model (UNet input has 8 channels); dbt trains text-to-image SD1.x models (4 channels)');
  if (inCh !== 4) throw new FileFormatError(file, `UNet input has ${inCh} channels; SD1.x text-to-image models have 4`);
  const outCh = f.shape(`${p}out.2.weight`, 4)[0];

  // Walk input blocks: each level has num_res_blocks ResBlocks, then (except the last level) a Downsample.
  const channelMult: number[] = [];
  const attnLevels: boolean[] = [];
  let numRes = -1;
  let idx = 1;
  for (;;) {
    let r = 0;
    let attn = false;
    let ch = 0;
    while (shapes.has(`${p}input_blocks.${idx}.0.in_layers.2.weight`)) {
      ch = f.shape(`${p}input_blocks.${idx}.0.in_layers.2.weight`)[0];
      if (shapes.has(`${p}input_blocks.${idx}.1.proj_in.weight`)) attn = true;
      r++;
      idx++;
    }
    if (r === 0) break;
    if (numRes < 0) numRes = r;
    else if (r !== numRes) throw new FileFormatError(file, `UNet level ${channelMult.length} has ${r} ResBlocks but level 0 has ${numRes}: not an SD1.x layout`);
    if (ch % mc !== 0) throw new FileFormatError(file, `UNet level ${channelMult.length} has ${ch} channels, not a multiple of model_channels ${mc}`);
    channelMult.push(ch / mc);
    attnLevels.push(attn);
    if (!shapes.has(`${p}input_blocks.${idx}.0.op.weight`)) break;
    idx++;
  }
  if (numRes < 1) throw new FileFormatError(file, 'no UNet ResBlocks found under model.diffusion_model.input_blocks');

  const mid = `${p}middle_block.1`;
  const projIn = f.shape(`${mid}.proj_in.weight`);
  if (projIn.length === 2) throw new FileFormatError(file, 'this is an SD2.x-style UNet (linear proj_in in the transformers); dbt supports SD1.x (1×1 conv proj_in)');
  const contextDim = f.shape(`${mid}.transformer_blocks.0.attn2.to_k.weight`, 2)[1];
  if (contextDim === 1024) throw new FileFormatError(file, 'this is an SD2.x model (cross-attention context 1024, OpenCLIP); dbt supports SD1.x (context 768)');
  if (contextDim === 2048 || contextDim === 1280) throw new FileFormatError(file, `this is an SDXL-family model (cross-attention context ${contextDim}); dbt supports SD1.x`);
  const depth = countIndexed(shapes, `${mid}.transformer_blocks.`, '.norm1.weight');
  return {
    in_channels: inCh,
    out_channels: outCh,
    model_channels: mc,
    channel_mult: channelMult,
    num_res_blocks: numRes,
    attention_resolutions: attnLevels.flatMap((a, level) => (a ? [2 ** level] : [])).reverse(), // SD1 configs list them as [4, 2, 1]
    num_heads: 8, // not recorded in shapes; every SD1.x model uses 8
    transformer_depth: depth,
    context_dim: contextDim,
    use_linear_in_transformer: false,
    num_groups: 32,
  };
}

function detectVae(file: string, shapes: Shapes): VaeConfig {
  const f = new Finder(file, shapes);
  const p = VAE_PREFIX;
  const [ch, inCh] = f.shape(`${p}encoder.conv_in.weight`, 4);
  const levels = countIndexed(shapes, `${p}encoder.down.`, '.block.0.conv1.weight');
  if (levels === 0) throw new FileFormatError(file, 'no VAE encoder blocks found under first_stage_model.encoder.down');
  const chMult = Array.from({ length: levels }, (_, i) => f.shape(`${p}encoder.down.${i}.block.0.conv1.weight`)[0] / ch);
  const numRes = countIndexed(shapes, `${p}encoder.down.0.block.`, '.conv1.weight');
  const zChannels = f.shape(`${p}decoder.conv_in.weight`, 4)[1];
  const encOut = f.shape(`${p}encoder.conv_out.weight`, 4)[0];
  const embedDim = f.shape(`${p}post_quant_conv.weight`, 4)[1];
  return {
    in_channels: inCh,
    out_ch: f.shape(`${p}decoder.conv_out.weight`, 4)[0],
    ch,
    ch_mult: chMult,
    num_res_blocks: numRes,
    z_channels: zChannels,
    embed_dim: embedDim,
    double_z: encOut === 2 * zChannels,
    num_groups: 32,
    scale_factor: 0.18215,
  };
}

function detectText(file: string, shapes: Shapes): ClipTextConfig {
  const f = new Finder(file, shapes);
  const p = `${TEXT_PREFIX}text_model.`;
  const [vocab, hidden] = f.shape(`${p}embeddings.token_embedding.weight`, 2);
  const positions = f.shape(`${p}embeddings.position_embedding.weight`, 2)[0];
  const layers = countIndexed(shapes, `${p}encoder.layers.`, '.layer_norm1.weight');
  if (layers === 0) throw new FileFormatError(file, 'no CLIP text encoder layers found under cond_stage_model.transformer.text_model.encoder.layers');
  if (hidden !== 768 && hidden === 1024) throw new FileFormatError(file, 'text encoder width 1024 (OpenCLIP ViT-H): this is an SD2.x model');
  return {
    vocab_size: vocab,
    hidden_size: hidden,
    num_layers: layers,
    num_heads: hidden % 64 === 0 ? hidden / 64 : 1, // CLIP uses 64-wide heads (ViT-L/14: 12 heads of 64)
    intermediate_size: f.shape(`${p}encoder.layers.0.mlp.fc1.weight`, 2)[0],
    max_position_embeddings: positions,
    layer_norm_eps: 1e-5,
    hidden_act: 'quick_gelu',
    bos_token_id: vocab - 2,
    eos_token_id: vocab - 1,
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** True when `arch` has tiny's shapes (heads aside, which shapes do not record). */
function isTinyShaped(arch: ModelArch): boolean {
  const strip = (a: ModelArch) =>
    JSON.stringify({ ...a, name: '', unet: { ...a.unet, num_heads: 0, attention_resolutions: [...a.unet.attention_resolutions].sort() }, text: { ...a.text, num_heads: 0 } });
  return strip(arch) === strip(TINY_ARCH);
}

/** Compares a file's tensors against the full expected set of `arch`; returns problems (empty = exact match). */
export function checkAgainstArch(shapes: Shapes, arch: ModelArch): { missing: string[]; mismatched: string[] } {
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const t of expectedTensors(arch)) {
    const s = shapes.get(t.key);
    if (!s) {
      if (!t.key.endsWith('.position_ids')) missing.push(t.key);
    } else if (!sameShape(s, t.shape)) mismatched.push(`${t.key}: ${JSON.stringify(s)}, expected ${JSON.stringify(t.shape)}`);
  }
  return { missing, mismatched };
}

/**
 * The SD1.x architecture of a checkpoint from its (LDM-keyed) tensor shapes. Throws a FileFormatError
 * naming what was found for anything dbt cannot train.
 */
export function detectArch(file: string, shapes: Shapes, metadata: Record<string, string> = {}): ModelArch {
  const kind = classifyKeys(shapes);
  if (!kind.supported) throw new FileFormatError(file, `not an SD1.x checkpoint: ${kind.family} (${kind.reason}); dbt supports Stable Diffusion 1.x models`);
  const v = isVPrediction(shapes, metadata);
  if (v) throw new FileFormatError(file, `this is a v-prediction model (${v}); dbt trains epsilon-prediction SD1.x models`);
  const missingComponents = [
    [VAE_PREFIX, 'VAE'],
    [TEXT_PREFIX, 'text encoder'],
  ].filter(([prefix]) => ![...shapes.keys()].some((k) => k.startsWith(prefix)));
  if (missingComponents.length) {
    throw new FileFormatError(file, `checkpoint has no ${missingComponents.map(([, n]) => n).join(' and no ')} weights (${missingComponents.map(([p]) => `${p}*`).join(', ')}); dbt needs a full SD1.x checkpoint`);
  }
  let arch: ModelArch = { name: 'sd1', unet: detectUNet(file, shapes), vae: detectVae(file, shapes), text: detectText(file, shapes) };
  if (isTinyShaped(arch)) arch = TINY_ARCH;
  const { missing, mismatched } = checkAgainstArch(shapes, arch);
  if (missing.length || mismatched.length) {
    const details = [...missing.slice(0, 8).map((k) => `missing: ${k}`), ...mismatched.slice(0, 8).map((m) => `wrong shape: ${m}`)];
    const more = missing.length + mismatched.length - details.length;
    if (more > 0) details.push(`… and ${more} more`);
    throw new FileFormatError(file, `tensors do not match the detected SD1.x architecture (${missing.length} missing, ${mismatched.length} with the wrong shape)`, { details });
  }
  return arch;
}

/** How many UNet parameters have an EMA copy under `model_ema.*` (0 when the file has no EMA). */
export function emaCoverage(shapes: Shapes, arch: ModelArch): { present: number; total: number } {
  let present = 0;
  let total = 0;
  for (const t of expectedTensors(arch)) {
    if (t.component !== 'unet') continue;
    total++;
    if (shapes.has(emaKeyFor(t.key))) present++;
  }
  return { present, total };
}

export function hasEmaKeys(keys: Iterable<string>): boolean {
  for (const k of keys) if (k.startsWith(EMA_PREFIX) && k !== 'model_ema.decay' && k !== 'model_ema.num_updates') return true;
  return false;
}
