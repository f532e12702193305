/**
 * Architecture descriptions of SD1.x networks, in the original LDM vocabulary. Detection from a
 * checkpoint's shapes (src/model/detect.ts) produces these; the native core builds its modules from them;
 * `dbt create --arch` initialises them. `tiny` is fixed: every test and the embedded demo agree on it.
 */
export interface UNetConfig {
  in_channels: number; // 4
  out_channels: number; // 4
  model_channels: number; // 320
  channel_mult: number[]; // [1, 2, 4, 4]
  num_res_blocks: number; // 2
  /** Downsampling factors that get a SpatialTransformer: SD1 [4, 2, 1] = levels 0..2. */
  attention_resolutions: number[];
  num_heads: number; // 8; dim_head = channels / num_heads
  transformer_depth: number; // 1
  context_dim: number; // 768
  /** SD1.x uses 1x1 conv proj_in/proj_out (false); SD2.x linear (refused at detection). */
  use_linear_in_transformer: boolean;
  num_groups: number; // 32
}

export interface VaeConfig {
  in_channels: number; // 3
  out_ch: number; // 3
  ch: number; // 128
  ch_mult: number[]; // [1, 2, 4, 4]
  num_res_blocks: number; // 2
  z_channels: number; // 4
  embed_dim: number; // 4
  double_z: boolean; // true
  num_groups: number; // 32
  scale_factor: number; // 0.18215
}

export interface ClipTextConfig {
  vocab_size: number; // 49408
  hidden_size: number; // 768
  num_layers: number; // 12
  num_heads: number; // 12
  intermediate_size: number; // 3072
  max_position_embeddings: number; // 77
  layer_norm_eps: number; // 1e-5
  hidden_act: 'quick_gelu';
  /** Token ids of <|startoftext|> and <|endoftext|> (the latter also pads). */
  bos_token_id: number;
  eos_token_id: number;
}

export interface ModelArch {
  /** 'sd15' and 'tiny' are the named presets; detected checkpoints say 'sd1'. */
  name: 'sd1' | 'sd15' | 'tiny';
  unet: UNetConfig;
  vae: VaeConfig;
  text: ClipTextConfig;
}

export const SD15_ARCH: ModelArch = {
  name: 'sd15',
  unet: {
    in_channels: 4,
    out_channels: 4,
    model_channels: 320,
    channel_mult: [1, 2, 4, 4],
    num_res_blocks: 2,
    attention_resolutions: [4, 2, 1],
    num_heads: 8,
    transformer_depth: 1,
    context_dim: 768,
    use_linear_in_transformer: false,
    num_groups: 32,
  },
  vae: { in_channels: 3, out_ch: 3, ch: 128, ch_mult: [1, 2, 4, 4], num_res_blocks: 2, z_channels: 4, embed_dim: 4, double_z: true, num_groups: 32, scale_factor: 0.18215 },
  text: {
    vocab_size: 49408,
    hidden_size: 768,
    num_layers: 12,
    num_heads: 12,
    intermediate_size: 3072,
    max_position_embeddings: 77,
    layer_norm_eps: 1e-5,
    hidden_act: 'quick_gelu',
    bos_token_id: 49406,
    eos_token_id: 49407,
  },
};

/**
 * The tiny tokenizer shipped with the project is CLIP's byte-level BPE with no merges: 256 byte symbols,
 * the same 256 with `</w>`, then <|startoftext|> and <|endoftext|> — 514 entries.
 */
export const TINY_VOCAB_SIZE = 514;

export const TINY_ARCH: ModelArch = {
  name: 'tiny',
  unet: {
    in_channels: 4,
    out_channels: 4,
    model_channels: 32,
    channel_mult: [1, 2],
    num_res_blocks: 1,
    attention_resolutions: [1, 2],
    num_heads: 2,
    transformer_depth: 1,
    context_dim: 32,
    use_linear_in_transformer: false,
    num_groups: 32,
  },
  vae: { in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, z_channels: 4, embed_dim: 4, double_z: true, num_groups: 32, scale_factor: 0.18215 },
  text: {
    vocab_size: TINY_VOCAB_SIZE,
    hidden_size: 32,
    num_layers: 2,
    num_heads: 2,
    intermediate_size: 64,
    max_position_embeddings: 77,
    layer_norm_eps: 1e-5,
    hidden_act: 'quick_gelu',
    bos_token_id: 512,
    eos_token_id: 513,
  },
};

export const NAMED_ARCHS = { tiny: TINY_ARCH, sd15: SD15_ARCH } as const;
