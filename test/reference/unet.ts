/**
 * Reference forward of the SD1.x UNet (LDM openaimodel.UNetModel with use_spatial_transformer, legacy
 * head split, no scale-shift norm, conv resampling), in float64, parameters by LDM key.
 */
import type { UNetConfig } from '../../src/model/arch.js';
import {
  type T,
  add,
  addPerChannel,
  attention,
  concatChannels,
  conv2d,
  fromTokens,
  geluErf,
  groupNorm,
  layerNorm,
  linear,
  map,
  silu,
  tensor,
  toTokens,
  upsampleNearest2x,
} from './f64.js';
import type { ParamSource } from './params.js';

const PREFIX = 'model.diffusion_model.';

/**
 * Sinusoidal timestep embedding exactly as LDM computes it — in float32 whatever the model dtype
 * (freqs = exp(−ln(10000)·arange(half)/half) in f32, args = f32(t)·freqs rounded to f32), cos first.
 */
export function timestepEmbedding(t: ArrayLike<number>, dim: number): T {
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const c = f(-Math.log(10000));
  const freqs = Array.from({ length: half }, (_, i) => f(Math.exp(f(f(c * i) / half))));
  const y = tensor([t.length, dim]);
  for (let n = 0; n < t.length; n++) {
    for (let i = 0; i < half; i++) {
      const a = f(f(t[n]) * freqs[i]);
      y.data[n * dim + i] = f(Math.cos(a));
      y.data[n * dim + half + i] = f(Math.sin(a));
    }
  }
  return y;
}

function conv(p: ParamSource, key: string, x: T, cin: number, cout: number, k: number, stride = 1, pad = (k - 1) / 2): T {
  const shape = [cout, cin, k, k];
  return conv2d(x, p.get(`${key}.weight`, shape), shape, p.get(`${key}.bias`, [cout]), stride, [pad, pad, pad, pad]);
}

function lin(p: ParamSource, key: string, x: T, cin: number, cout: number, bias = true): T {
  return linear(x, p.get(`${key}.weight`, [cout, cin]), [cout, cin], bias ? p.get(`${key}.bias`, [cout]) : null);
}

function gn(p: ParamSource, key: string, x: T, groups: number, eps: number): T {
  const C = x.shape[1];
  return groupNorm(x, groups, p.get(`${key}.weight`, [C]), p.get(`${key}.bias`, [C]), eps);
}

function ln(p: ParamSource, key: string, x: T): T {
  const D = x.shape[x.shape.length - 1];
  return layerNorm(x, p.get(`${key}.weight`, [D]), p.get(`${key}.bias`, [D]), 1e-5);
}

export function resBlock(p: ParamSource, key: string, x: T, emb: T, cin: number, cout: number, groups: number): T {
  const tembDim = emb.shape[1];
  let h = conv(p, `${key}.in_layers.2`, map(gn(p, `${key}.in_layers.0`, x, groups, 1e-5), silu), cin, cout, 3);
  h = addPerChannel(h, lin(p, `${key}.emb_layers.1`, map(emb, silu), tembDim, cout));
  h = conv(p, `${key}.out_layers.3`, map(gn(p, `${key}.out_layers.0`, h, groups, 1e-5), silu), cout, cout, 3);
  const skip = cin === cout ? x : conv(p, `${key}.skip_connection`, x, cin, cout, 1);
  return add(skip, h);
}

function crossAttention(p: ParamSource, key: string, x: T, ctx: T, dim: number, ctxDim: number, heads: number): T {
  const inner = dim; // heads · dim_head, dim_head = channels / heads
  const q = lin(p, `${key}.to_q`, x, dim, inner, false);
  const k = lin(p, `${key}.to_k`, ctx, ctxDim, inner, false);
  const v = lin(p, `${key}.to_v`, ctx, ctxDim, inner, false);
  const a = attention(q, k, v, heads, (inner / heads) ** -0.5, false);
  return lin(p, `${key}.to_out.0`, a, inner, dim);
}

function feedForward(p: ParamSource, key: string, x: T, dim: number): T {
  const inner = dim * 4;
  const proj = lin(p, `${key}.net.0.proj`, x, dim, 2 * inner); // GEGLU: first half hidden, second half gate
  const rows = proj.data.length / (2 * inner);
  const g = tensor([...x.shape.slice(0, -1), inner]);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < inner; i++) g.data[r * inner + i] = proj.data[r * 2 * inner + i] * geluErf(proj.data[r * 2 * inner + inner + i]);
  }
  return lin(p, `${key}.net.2`, g, inner, dim);
}

export function spatialTransformer(p: ParamSource, key: string, x: T, ctx: T, cfg: UNetConfig): T {
  const [, C, H, W] = x.shape;
  const ctxDim = ctx.shape[2];
  let h = gn(p, `${key}.norm`, x, cfg.num_groups, 1e-6);
  h = conv(p, `${key}.proj_in`, h, C, C, 1);
  let tok = toTokens(h);
  for (let d = 0; d < cfg.transformer_depth; d++) {
    const b = `${key}.transformer_blocks.${d}`;
    const n1 = ln(p, `${b}.norm1`, tok);
    tok = add(tok, crossAttention(p, `${b}.attn1`, n1, n1, C, C, cfg.num_heads));
    tok = add(tok, crossAttention(p, `${b}.attn2`, ln(p, `${b}.norm2`, tok), ctx, C, ctxDim, cfg.num_heads));
    tok = add(tok, feedForward(p, `${b}.ff`, ln(p, `${b}.norm3`, tok), C));
  }
  h = conv(p, `${key}.proj_out`, fromTokens(tok, H, W), C, C, 1);
  return add(h, x);
}

type Layer =
  | { kind: 'conv_in'; cin: number; cout: number }
  | { kind: 'res'; cin: number; cout: number }
  | { kind: 'attn'; ch: number }
  | { kind: 'down'; ch: number }
  | { kind: 'up'; ch: number };

/** The block layout UNetModel.__init__ builds: input blocks, middle block, output blocks. */
export function unetLayout(cfg: UNetConfig): { input: Layer[][]; middle: Layer[]; output: Layer[][] } {
  const mc = cfg.model_channels;
  const input: Layer[][] = [[{ kind: 'conv_in', cin: cfg.in_channels, cout: mc }]];
  const chans = [mc];
  let ch = mc;
  let ds = 1;
  cfg.channel_mult.forEach((mult, level) => {
    for (let r = 0; r < cfg.num_res_blocks; r++) {
      const layers: Layer[] = [{ kind: 'res', cin: ch, cout: mult * mc }];
      ch = mult * mc;
      if (cfg.attention_resolutions.includes(ds)) layers.push({ kind: 'attn', ch });
      input.push(layers);
      chans.push(ch);
    }
    if (level !== cfg.channel_mult.length - 1) {
      input.push([{ kind: 'down', ch }]);
      chans.push(ch);
      ds *= 2;
    }
  });
  const middle: Layer[] = [{ kind: 'res', cin: ch, cout: ch }, { kind: 'attn', ch }, { kind: 'res', cin: ch, cout: ch }];
  const output: Layer[][] = [];
  for (let level = cfg.channel_mult.length - 1; level >= 0; level--) {
    const mult = cfg.channel_mult[level];
    for (let i = 0; i <= cfg.num_res_blocks; i++) {
      const ich = chans.pop()!;
      const layers: Layer[] = [{ kind: 'res', cin: ch + ich, cout: mc * mult }];
      ch = mc * mult;
      if (cfg.attention_resolutions.includes(ds)) layers.push({ kind: 'attn', ch });
      if (level > 0 && i === cfg.num_res_blocks) {
        layers.push({ kind: 'up', ch });
        ds /= 2;
      }
      output.push(layers);
    }
  }
  return { input, middle, output };
}

function runLayers(p: ParamSource, key: string, layers: Layer[], h: T, emb: T, ctx: T, cfg: UNetConfig): T {
  layers.forEach((l, j) => {
    const k = `${key}.${j}`;
    switch (l.kind) {
      case 'conv_in':
        h = conv(p, k, h, l.cin, l.cout, 3);
        break;
      case 'res':
        h = resBlock(p, k, h, emb, l.cin, l.cout, cfg.num_groups);
        break;
      case 'attn':
        h = spatialTransformer(p, k, h, ctx, cfg);
        break;
      case 'down':
        h = conv(p, `${k}.op`, h, l.ch, l.ch, 3, 2, 1);
        break;
      case 'up':
        h = conv(p, `${k}.conv`, upsampleNearest2x(h), l.ch, l.ch, 3);
        break;
    }
  });
  return h;
}

/** eps prediction for x [N, in_channels, H, W] at timesteps t [N] with context [N, L, context_dim]. */
export function unetForward(p: ParamSource, cfg: UNetConfig, x: T, t: ArrayLike<number>, context: T): T {
  const mc = cfg.model_channels;
  const temb = 4 * mc;
  const P = PREFIX;
  let emb = lin(p, `${P}time_embed.0`, timestepEmbedding(t, mc), mc, temb);
  emb = lin(p, `${P}time_embed.2`, map(emb, silu), temb, temb);
  const layout = unetLayout(cfg);
  const hs: T[] = [];
  let h = x;
  layout.input.forEach((layers, i) => {
    h = runLayers(p, `${P}input_blocks.${i}`, layers, h, emb, context, cfg);
    hs.push(h);
  });
  h = runLayers(p, `${P}middle_block`, layout.middle, h, emb, context, cfg);
  layout.output.forEach((layers, i) => {
    h = concatChannels(h, hs.pop()!); // [h, skip]: h first
    h = runLayers(p, `${P}output_blocks.${i}`, layers, h, emb, context, cfg);
  });
  h = map(gn(p, `${P}out.0`, h, cfg.num_groups, 1e-5), silu);
  return conv(p, `${P}out.2`, h, mc, cfg.out_channels, 3);
}
