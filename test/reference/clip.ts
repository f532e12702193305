/**
 * Reference forward of the CLIP text transformer (HF CLIPTextModel as SD1 checkpoints hold it under
 * `cond_stage_model.transformer.text_model.`), float64. Pre-LayerNorm layers, causal self-attention,
 * quick_gelu MLP, final LayerNorm. No padding mask (SD1 passes none).
 *
 * clipSkip (the web UIs' "Clip skip"): 1 = last layer's output; k > 1 = the hidden state k−1 layers before
 * the end (HF hidden_states[−k]), i.e. run the first num_layers−k+1 layers, then apply final_layer_norm.
 */
import type { ClipTextConfig } from '../../src/model/arch.js';
import { type T, add, attention, layerNorm, linear, map, quickGelu, tensor } from './f64.js';
import type { ParamSource } from './params.js';

const PREFIX = 'cond_stage_model.transformer.text_model.';

function lin(p: ParamSource, key: string, x: T, cin: number, cout: number): T {
  return linear(x, p.get(`${key}.weight`, [cout, cin]), [cout, cin], p.get(`${key}.bias`, [cout]));
}

function ln(p: ParamSource, key: string, x: T, eps: number): T {
  const D = x.shape[x.shape.length - 1];
  return layerNorm(x, p.get(`${key}.weight`, [D]), p.get(`${key}.bias`, [D]), eps);
}

/** ids: [B, S] token ids (S ≤ max_position_embeddings) -> [B, S, hidden]. */
export function clipTextForward(p: ParamSource, cfg: ClipTextConfig, ids: ArrayLike<number>, batch: number, clipSkip = 1): T {
  const D = cfg.hidden_size;
  const S = ids.length / batch;
  if (!Number.isInteger(S) || S > cfg.max_position_embeddings) throw new Error(`clip: ${ids.length} ids for batch ${batch}`);
  if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > cfg.num_layers) throw new Error(`clip: clipSkip ${clipSkip}`);
  const tok = p.get(`${PREFIX}embeddings.token_embedding.weight`, [cfg.vocab_size, D]);
  const pos = p.get(`${PREFIX}embeddings.position_embedding.weight`, [cfg.max_position_embeddings, D]);
  let h = tensor([batch, S, D]);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < S; s++) {
      const id = ids[b * S + s];
      if (!(id >= 0 && id < cfg.vocab_size)) throw new Error(`clip: token id ${id} out of range`);
      for (let i = 0; i < D; i++) h.data[(b * S + s) * D + i] = tok[id * D + i] + pos[s * D + i];
    }
  }
  const eps = cfg.layer_norm_eps;
  const layers = cfg.num_layers - (clipSkip - 1);
  for (let l = 0; l < layers; l++) {
    const k = `${PREFIX}encoder.layers.${l}`;
    const x = ln(p, `${k}.layer_norm1`, h, eps);
    const q = lin(p, `${k}.self_attn.q_proj`, x, D, D);
    const kk = lin(p, `${k}.self_attn.k_proj`, x, D, D);
    const v = lin(p, `${k}.self_attn.v_proj`, x, D, D);
    const a = attention(q, kk, v, cfg.num_heads, (D / cfg.num_heads) ** -0.5, true);
    h = add(h, lin(p, `${k}.self_attn.out_proj`, a, D, D));
    const m = map(lin(p, `${k}.mlp.fc1`, ln(p, `${k}.layer_norm2`, h, eps), D, cfg.intermediate_size), quickGelu);
    h = add(h, lin(p, `${k}.mlp.fc2`, m, cfg.intermediate_size, D));
  }
  return ln(p, `${PREFIX}final_layer_norm`, h, eps);
}
