/**
 * The run spec's JSON Schema: the single source of truth for its keys, types, defaults and documentation.
 * src/config/types.generated.ts and docs/run-spec.md are generated from it (`npm run docs`; a test checks
 * they are current). Two annotations of our own, ignored by other JSON Schema tools:
 *   x-follows: the value defaults to another value of the resolved spec (the schema default is null);
 *   x-path:    the value is a file system path, made absolute when the spec is resolved.
 */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: JsonType | JsonType[];
  enum?: readonly (string | number | boolean | null)[];
  default?: unknown;
  examples?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  pattern?: string;
  'x-follows'?: string;
  'x-path'?: 'file' | 'dir' | 'file-or-dir' | 'model';
}
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'null' | 'array' | 'object';

export const PRESETS = ['person', 'object', 'style'] as const;
export const ARCHS = ['tiny', 'sd15'] as const;
export const SAMPLERS = ['ddim', 'pndm', 'euler', 'euler_a', 'dpmpp_2m', 'dpmpp_2m_karras'] as const;
export const LR_SCHEDULERS = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts', 'polynomial'] as const;
export const OPTIMIZERS = ['adamw', 'adamw8bit', 'lion', 'sgd'] as const;
export const MIXED_PRECISIONS = ['auto', 'no', 'fp16', 'bf16'] as const;
export const SAVE_PRECISIONS = ['fp16', 'bf16', 'fp32'] as const;
export const ATTENTIONS = ['auto', 'flash', 'chunked', 'naive'] as const;
export const CAPTION_SOURCES = ['none', 'txt', 'filename'] as const;
export const PREP_FITS = ['pad', 'crop', 'subject'] as const;
/** `device` values besides `cuda:N`. */
export const DEVICES = ['auto', 'cpu', 'cuda'] as const;
export const MAX_SEED = 4294967295;

// Small builders keep the schema readable; what they produce is plain JSON Schema.
type Extra = Omit<JsonSchema, 'type' | 'description' | 'default'>;
const str = (description: string, def?: string | null, extra: Extra = {}): JsonSchema => ({
  type: def === null ? ['string', 'null'] : 'string',
  description,
  ...(def === undefined ? {} : { default: def }),
  ...extra,
});
const num = (description: string, def: number | null, extra: Extra = {}): JsonSchema => ({
  type: def === null ? ['number', 'null'] : 'number',
  description,
  default: def,
  ...extra,
});
const int = (description: string, def: number | null, extra: Extra = {}): JsonSchema => ({
  type: def === null ? ['integer', 'null'] : 'integer',
  description,
  default: def,
  ...extra,
});
const bool = (description: string, def: boolean): JsonSchema => ({ type: 'boolean', description, default: def });
const oneOf = (values: readonly string[], description: string, def: string | null, extra: Extra = {}): JsonSchema => ({
  type: def === null ? ['string', 'null'] : 'string',
  enum: def === null ? [...values, null] : [...values],
  description,
  default: def,
  ...extra,
});
const obj = (title: string, description: string, properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  title,
  type: 'object',
  description,
  properties,
  ...(required.length ? { required } : {}),
  additionalProperties: false,
});
const seed = (description: string, def: number): JsonSchema => int(description, def, { minimum: 0, maximum: MAX_SEED });
const imageSize = (description: string): JsonSchema =>
  int(description, null, { minimum: 64, maximum: 4096, multipleOf: 64, 'x-follows': 'resolution' });
const promptList = (description: string): JsonSchema => ({
  type: ['array', 'null'],
  description,
  items: { type: 'string' },
  default: null,
  'x-follows': 'concepts[*].instance_prompt',
});

const modelSchema = obj(
  'ModelSpec',
  'The model to train: a model directory made by `dbt create`, and where `dbt create run.yaml` makes it from.',
  {
    name: str(
      'Model directory: a plain name means `models/<name>` under the current directory; anything with a slash is a path. ' +
        'Resolved to an absolute directory.',
      undefined,
      { minLength: 1, examples: ['anything-v4.5', './models/nanu-base'], 'x-path': 'model' },
    ),
    from: str('Source checkpoint (`.safetensors`, `.ckpt`) or diffusers folder that `dbt create run.yaml` converts into the model directory.', null, {
      'x-path': 'file-or-dir',
    }),
    arch: oneOf(ARCHS, 'Create the model with random weights of this architecture instead of converting `from` (`tiny` is for tests and the demo).', null),
    seed: seed('Seed for the random initialisation of `arch`.', 0),
    tokenizer: str('Tokenizer folder (`vocab.json` + `merges.txt`) or CLIP vocab file to use instead of the model\'s own.', null, { 'x-path': 'file-or-dir' }),
    scheduler: oneOf(SAMPLERS, 'Default sampler recorded in the model; previews and samples use it unless they name one.', 'ddim'),
    use_ema: bool('Take the EMA weights (`model_ema.*`) from the source checkpoint when it has them.', false),
    half: bool('Store the model directory\'s weights in float16 (half the disk; training still keeps float32 master weights).', false),
  },
  ['name'],
);

const conceptSchema = obj(
  'Concept',
  'One thing to teach: a folder of instance images with their prompt, and optionally class images for prior preservation.',
  {
    instance_prompt: str(
      'Prompt for the instance images, e.g. `nanU Unan` (rare words). `[filewords]` is replaced by each image\'s caption; ' +
        'without it, a caption (when `caption_source` gives one) is appended after a comma.',
      undefined,
      { minLength: 1 },
    ),
    instance_dir: str('Folder of prepared instance images (the output of `dbt prep`).', undefined, { minLength: 1, 'x-path': 'dir' }),
    raw_dir: str('Folder of raw images that `dbt prep run.yaml` prepares into `instance_dir`.', null, { 'x-path': 'dir' }),
    class_prompt: str('Prompt for class (regularisation) images, e.g. `Unan`. A common word like `girl` spoils that word.', null),
    class_dir: str('Folder of class images; missing ones are generated from the base model.', null, { 'x-path': 'dir' }),
    num_class_images: int(
      'Number of class images to use for prior preservation (0: no prior preservation for this concept). ' +
        'Missing ones are generated into `class_dir`.',
      0,
      { minimum: 0 },
    ),
    class_negative_prompt: str('Negative prompt used when generating class images.', ''),
    class_guidance_scale: num('Classifier-free guidance scale used when generating class images.', 7.5, { minimum: 1 }),
    class_infer_steps: int('Sampling steps used when generating class images.', 28, { minimum: 1 }),
    caption_source: oneOf(
      CAPTION_SOURCES,
      'Where per-image captions come from: `none` (the prompt alone), `txt` (a `<stem><caption_ext>` file beside the image), ' +
        '`filename` (the file name, underscores as spaces, a trailing number dropped).',
      'none',
    ),
    caption_ext: str('Extension of caption files for `caption_source: txt`.', '.txt', { pattern: '^\\.[A-Za-z0-9_.-]+$' }),
    shuffle_tags: bool('Shuffle the comma-separated tags of each caption every time it is used (seeded, repeatable).', false),
    keep_tokens: int('Number of leading caption tags that `shuffle_tags` keeps in place.', 0, { minimum: 0 }),
    caption_dropout: num('Probability of training an image with the prompt alone, without its caption.', 0, { minimum: 0, exclusiveMaximum: 1 }),
    repeats: int('How many times each instance image appears per epoch.', 1, { minimum: 1 }),
  },
  ['instance_prompt', 'instance_dir'],
);

const prepSchema = obj('PrepSpec', 'Options for `dbt prep run.yaml` (the same as the `dbt prep` flags).', {
  size: imageSize('Side of the square output images in pixels (a multiple of 64). Default: `resolution`.'),
  fit: oneOf(PREP_FITS, 'Framing: `pad` scales the whole image into the square (the figure is never cut), `crop` centre-crops, `subject` crops to the subject plus `margin` then pads.', 'pad'),
  bg: str('Background colour that transparent areas and padding are filled with.', '#ffffff', { minLength: 1 }),
  white_bg: bool('Remove the background of images without alpha with the segmentation model, then composite onto `bg`.', false),
  seg_model: str('Segmentation model (`isnetis.onnx`). Default: `DBT_SEG_MODEL`, then the documented default location.', null, { 'x-path': 'file' }),
  mask_threshold: num('Binarise the segmentation mask at this value (null: keep the soft mask).', null, { exclusiveMinimum: 0, exclusiveMaximum: 1 }),
  mask_feather: num('Feather (blur) the mask edge by this many pixels.', 0, { minimum: 0, maximum: 100 }),
  keep_alpha: bool('Write RGBA images with the mask as alpha instead of compositing onto `bg`.', false),
  margin: num('Margin around the subject for `fit: subject`, as a fraction of the subject\'s size.', 0.05, { minimum: 0, maximum: 1 }),
  caption: str('Caption written beside every image that has none.', null),
  caption_prefix: str('Text put before every written caption.', null),
  recursive: bool('Also read images in subfolders of `raw_dir`.', false),
  max_pixels: int('Refuse source images with more pixels than this (decompression-bomb limit).', 268402689, { minimum: 1 }),
  force: bool('Redo every image, even when its source and options are unchanged.', false),
  min_subject_fraction: num('Warn about images whose subject fills less than this fraction of the frame.', 0.1, { minimum: 0, maximum: 1 }),
});

const emaSchema = obj('EmaSpec', 'Exponential moving average of the UNet weights (costs one more copy of the weights in memory).', {
  enabled: bool('Keep an EMA of the weights and save it in checkpoints.', false),
  decay: num('EMA decay per step.', 0.9999, { exclusiveMinimum: 0, exclusiveMaximum: 1 }),
});

const textEncoderSchema = obj('TextEncoderSpec', 'Training the CLIP text encoder along with the UNet.', {
  enabled: bool('Train the text encoder too (better likeness, more memory).', false),
  lr: num('Learning rate of the text encoder. Default: `lr`.', null, { exclusiveMinimum: 0, 'x-follows': 'lr' }),
  stop_fraction: num('Stop training the text encoder after this fraction of the steps.', 1, { exclusiveMinimum: 0, maximum: 1 }),
});

const previewSchema = obj('PreviewSpec', 'Preview images generated during training.', {
  every: int('Generate previews every this many steps (0: never). Default: `save_every`.', null, { minimum: 0, 'x-follows': 'save_every' }),
  prompts: promptList('Preview prompts. Default: each concept\'s instance prompt.'),
  negative: str('Negative prompt for previews.', ''),
  seed: seed('Seed of the preview images (the same every time, so previews compare).', 1),
  steps: int('Sampling steps of previews.', 20, { minimum: 1 }),
  cfg: num('Classifier-free guidance scale of previews.', 7.5, { minimum: 1 }),
  sampler: oneOf(SAMPLERS, 'Sampler of previews. Default: `model.scheduler`.', null, { 'x-follows': 'model.scheduler' }),
  size: imageSize('Side of the square preview images. Default: `resolution`.'),
});

const sampleSchema = obj('SampleSpec', 'What `dbt sample run.yaml` generates from the run\'s checkpoints.', {
  prompts: promptList('Prompts. Default: each concept\'s instance prompt.'),
  negative: str('Negative prompt.', ''),
  seeds: {
    type: ['array', 'null'],
    description: 'Seeds, one image per seed and prompt. Default: `count` seeds counting up from `seed`.',
    items: { type: 'integer', minimum: 0, maximum: MAX_SEED },
    minItems: 1,
    default: null,
    'x-follows': 'sample.seed+count',
  },
  seed: seed('First seed when `seeds` is not given.', 1),
  count: int('Number of seeds when `seeds` is not given.', 4, { minimum: 1 }),
  sampler: oneOf(SAMPLERS, 'Sampler. Default: `model.scheduler`.', null, { 'x-follows': 'model.scheduler' }),
  steps: int('Sampling steps.', 28, { minimum: 1 }),
  cfg: num('Classifier-free guidance scale.', 7.5, { minimum: 1 }),
  width: imageSize('Image width in pixels (a multiple of 64). Default: `resolution`.'),
  height: imageSize('Image height in pixels (a multiple of 64). Default: `resolution`.'),
});

const outputSchema = obj('OutputSpec', 'Where the run is written: `<dir>/<name>/`.', {
  dir: str('Folder that holds runs.', 'runs', { minLength: 1, 'x-path': 'dir' }),
  name: str(
    'Run name, a template over spec values: `{lr}`, `{steps}`, `{model.name}`, `{concepts[0].class_prompt}`, and `{spec}` ' +
      '(the spec file name without extension). E.g. `nanu-lr{lr}-s{steps}` for sweeps.',
    '{spec}',
    { minLength: 1 },
  ),
});

export const runSpecSchema: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'RunSpec',
  description: 'A dbt run spec: what to train, on which images, how, and where to write it. One spec drives prep, create, train and sample.',
  type: 'object',
  additionalProperties: false,
  required: ['model', 'concepts'],
  properties: {
    preset: oneOf(PRESETS, 'Start from a preset (presets/<name>.yaml): values in this file and `--set` override it.', null),
    model: modelSchema,
    concepts: { type: 'array', description: 'The concepts to train (at least one).', items: conceptSchema, minItems: 1 },
    prep: prepSchema,

    steps: int('Total optimizer steps (give `steps` or `epochs`).', null, { minimum: 1 }),
    epochs: int('Passes over the instance images (give `steps` or `epochs`).', null, { minimum: 1 }),
    batch_size: int('Instance images per step (prior preservation adds as many class images).', 1, { minimum: 1 }),
    gradient_accumulation: int('Micro-batches accumulated per optimizer step.', 1, { minimum: 1 }),
    lr: num('Learning rate of the UNet.', 2e-6, { exclusiveMinimum: 0, maximum: 1 }),
    scale_lr: bool('Multiply the learning rates by `batch_size × gradient_accumulation`.', false),
    lr_scheduler: oneOf(LR_SCHEDULERS, 'Learning-rate schedule after warmup (`constant` ignores `warmup_steps`).', 'constant'),
    lr_power: num('Power of the `polynomial` schedule (1: linear decay).', 1, { exclusiveMinimum: 0 }),
    lr_cycles: int('Number of restarts of `cosine_with_restarts`.', 1, { minimum: 1 }),
    warmup_steps: int('Steps of linear warmup from 0 to `lr`.', 0, { minimum: 0 }),
    resolution: int('Training image side in pixels (a multiple of 64). Instance images are resized to it.', 512, { minimum: 64, maximum: 4096, multipleOf: 64 }),
    center_crop: bool('Centre-crop images that are not square instead of resizing them whole.', false),
    hflip: bool('Randomly mirror images. Mixes left and right: keep off for asymmetric designs.', false),
    prior_loss_weight: num('Weight of the class images\' loss in prior preservation.', 1, { minimum: 0 }),
    optimizer: oneOf(OPTIMIZERS, 'Optimizer (`adamw8bit` keeps blockwise 8-bit moments: less memory).', 'adamw'),
    betas: {
      type: 'array',
      description: 'Adam/Lion betas [β1, β2].',
      items: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
      minItems: 2,
      maxItems: 2,
      default: [0.9, 0.999],
    },
    weight_decay: num('Decoupled weight decay.', 0.01, { minimum: 0 }),
    eps: num('Adam epsilon.', 1e-8, { exclusiveMinimum: 0 }),
    max_grad_norm: { type: ['number', 'null'], description: 'Clip the gradient norm to this value (null: no clipping).', default: 1, exclusiveMinimum: 0 },
    mixed_precision: oneOf(MIXED_PRECISIONS, 'Compute precision on tensor cores (f32 accumulation, f32 master weights): `auto` is bf16 on CUDA GPUs that support it (compute capability 8.0+), else fp16 with dynamic loss scaling; on the CPU always f32 (`no`).', 'auto'),
    gradient_checkpointing: bool('Recompute block activations in backward: much less memory, about 30% slower.', false),
    attention: oneOf(ATTENTIONS, 'Attention kernel: `flash` (tiled, CUDA), `chunked` (CPU), `naive` (reference), `auto` picks.', 'auto'),
    ema: emaSchema,
    train_text_encoder: textEncoderSchema,
    clip_skip: int('Use the output of the n-th last CLIP layer (1: the last; 2 is common for anime models).', 1, { minimum: 1, maximum: 12 }),
    noise_offset: num('Offset noise strength (0.1 is typical; 0: off).', 0, { minimum: 0 }),
    min_snr_gamma: num('Min-SNR-γ loss weighting (5 is typical; null: off).', null, { exclusiveMinimum: 0 }),
    cache_latents: bool('Encode the images with the VAE once and cache the latents on disk.', true),
    save_every: int('Save a checkpoint every this many steps (0: only at the end).', 500, { minimum: 0 }),
    keep_checkpoints: int('Keep only this many newest checkpoints (0: keep all). The newest complete one is never removed.', 0, { minimum: 0 }),
    save_precision: oneOf(SAVE_PRECISIONS, 'Precision of the web-UI checkpoint file `model.safetensors`.', 'fp16'),
    preview: previewSchema,
    sample: sampleSchema,
    seed: seed('Seed of everything random in training: noise, timesteps, order, flips.', 1),
    device: str('Where to train: `auto` (CUDA when usable, else the CPU), `cpu`, `cuda` or `cuda:N`; `dbt devices` shows what this machine has and what `auto` picks.', 'auto', { pattern: '^(auto|cpu|cuda(:[0-9]+)?)$' }),
    low_memory: bool('Trade speed for memory wherever possible (bf16 weights updated with stochastic rounding instead of f32 master weights, smaller chunks).', false),
    output: outputSchema,
  },
};
