/**
 * Reference forward of the SD1.x VAE (LDM AutoencoderKL: model.Encoder/Decoder, no attention except
 * mid.attn_1, GroupNorm eps 1e-6 everywhere), float64, parameters by LDM key under `first_stage_model.`.
 */
import type { VaeConfig } from '../../src/model/arch.js';
import { type T, add, attention, conv2d, fromTokens, groupNorm, map, silu, sliceChannels, toTokens, upsampleNearest2x } from './f64.js';
import type { ParamSource } from './params.js';

const PREFIX = 'first_stage_model.';
const EPS = 1e-6;

function conv(p: ParamSource, key: string, x: T, cin: number, cout: number, k: number, stride = 1, pad: [number, number, number, number] = [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2]): T {
  const shape = [cout, cin, k, k];
  return conv2d(x, p.get(`${key}.weight`, shape), shape, p.get(`${key}.bias`, [cout]), stride, pad);
}

function gn(p: ParamSource, key: string, x: T, groups: number): T {
  const C = x.shape[1];
  return groupNorm(x, groups, p.get(`${key}.weight`, [C]), p.get(`${key}.bias`, [C]), EPS);
}

function resnetBlock(p: ParamSource, key: string, x: T, cin: number, cout: number, groups: number): T {
  let h = conv(p, `${key}.conv1`, map(gn(p, `${key}.norm1`, x, groups), silu), cin, cout, 3);
  h = conv(p, `${key}.conv2`, map(gn(p, `${key}.norm2`, h, groups), silu), cout, cout, 3);
  const skip = cin === cout ? x : conv(p, `${key}.nin_shortcut`, x, cin, cout, 1);
  return add(skip, h);
}

/** Single-head self-attention over spatial positions with 1×1-conv q, k, v, proj_out; scale C^-0.5. */
function attnBlock(p: ParamSource, key: string, x: T, groups: number): T {
  const [, C, H, W] = x.shape;
  const h = gn(p, `${key}.norm`, x, groups);
  const q = toTokens(conv(p, `${key}.q`, h, C, C, 1));
  const k = toTokens(conv(p, `${key}.k`, h, C, C, 1));
  const v = toTokens(conv(p, `${key}.v`, h, C, C, 1));
  const a = fromTokens(attention(q, k, v, 1, C ** -0.5, false), H, W);
  return add(x, conv(p, `${key}.proj_out`, a, C, C, 1));
}

function mid(p: ParamSource, key: string, h: T, ch: number, groups: number): T {
  h = resnetBlock(p, `${key}.block_1`, h, ch, ch, groups);
  h = attnBlock(p, `${key}.attn_1`, h, groups);
  return resnetBlock(p, `${key}.block_2`, h, ch, ch, groups);
}

/** img [N, 3, H, W] in [-1, 1] -> posterior moments (mean, logvar clamped to [-30, 20]), each [N, embed_dim, h, w]. */
export function vaeEncode(p: ParamSource, cfg: VaeConfig, img: T): { mean: T; logvar: T } {
  const E = `${PREFIX}encoder`;
  const G = cfg.num_groups;
  let h = conv(p, `${E}.conv_in`, img, cfg.in_channels, cfg.ch, 3);
  let cin = cfg.ch;
  cfg.ch_mult.forEach((mult, level) => {
    const cout = cfg.ch * mult;
    for (let b = 0; b < cfg.num_res_blocks; b++) {
      h = resnetBlock(p, `${E}.down.${level}.block.${b}`, h, cin, cout, G);
      cin = cout;
    }
    if (level !== cfg.ch_mult.length - 1) h = conv(p, `${E}.down.${level}.downsample.conv`, h, cin, cin, 3, 2, [0, 1, 0, 1]);
  });
  h = mid(p, `${E}.mid`, h, cin, G);
  const zc = cfg.double_z ? 2 * cfg.z_channels : cfg.z_channels;
  h = conv(p, `${E}.conv_out`, map(gn(p, `${E}.norm_out`, h, G), silu), cin, zc, 3);
  const moments = conv(p, `${PREFIX}quant_conv`, h, zc, 2 * cfg.embed_dim, 1);
  const mean = sliceChannels(moments, 0, cfg.embed_dim);
  const logvar = map(sliceChannels(moments, cfg.embed_dim, 2 * cfg.embed_dim), (v) => Math.min(20, Math.max(-30, v)));
  return { mean, logvar };
}

/** Unscaled latent z [N, embed_dim, h, w] -> image [N, out_ch, 2^(levels-1)·h, …]. */
export function vaeDecode(p: ParamSource, cfg: VaeConfig, z: T): T {
  const D = `${PREFIX}decoder`;
  const G = cfg.num_groups;
  const levels = cfg.ch_mult.length;
  let h = conv(p, `${PREFIX}post_quant_conv`, z, cfg.embed_dim, cfg.z_channels, 1);
  let cin = cfg.ch * cfg.ch_mult[levels - 1];
  h = conv(p, `${D}.conv_in`, h, cfg.z_channels, cin, 3);
  h = mid(p, `${D}.mid`, h, cin, G);
  for (let level = levels - 1; level >= 0; level--) {
    const cout = cfg.ch * cfg.ch_mult[level];
    for (let b = 0; b <= cfg.num_res_blocks; b++) {
      h = resnetBlock(p, `${D}.up.${level}.block.${b}`, h, cin, cout, G);
      cin = cout;
    }
    if (level !== 0) h = conv(p, `${D}.up.${level}.upsample.conv`, upsampleNearest2x(h), cin, cin, 3);
  }
  return conv(p, `${D}.conv_out`, map(gn(p, `${D}.norm_out`, h, G), silu), cin, cfg.out_ch, 3);
}
