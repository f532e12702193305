/**
 * `openModel`: the SD1.x networks of a model as a library object. Accepts whatever openWeights reads —
 * a `dbt create` model directory, a run checkpoint directory, a single .safetensors / .ckpt file (or a
 * diffusers folder) — loads the three networks on the chosen device (CPU: f32; CUDA: bf16 or f16, or f32 when
 * asked; weights converted as they load) and runs them. Tensors in and out are f32 host arrays whatever the
 * device. Only `tokenize` needs a tokenizer.
 */
import { DbtError, UsageError } from '../errors.js';
import { cudaHalfDtype, cudaStatus, ops, resolveDevice, tensor as coreTensor, type DeviceName, type Tensor as CoreTensor } from '../core/index.js';
import type { ModelArch } from '../model/arch.js';
import { toFloat32 } from '../model/dtype.js';
import { CONTEXT_LENGTH, type ClipTokenizer } from '../model/tokenizer.js';
import { openWeights, type WeightSource } from '../model/weights.js';
import { NativeNet, type NetDType, type NetKind } from './native.js';

/** A host tensor: row-major data, NCHW for images. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

export interface OpenModelOptions {
  /**
   * Where the networks run (default 'cpu'): 'auto' = CUDA when available, else the CPU; 'cuda' / 'cuda:N'
   * require a usable GPU and throw with the reason otherwise.
   */
  device?: 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;
  /**
   * Compute dtype. 'auto' (default): f32 on the CPU; on CUDA bf16 (compute capability 8.0+) or f16. The CPU
   * computes in f32 only.
   */
  dtype?: 'auto' | 'f32' | 'f16' | 'bf16';
  /** Use the EMA copy of the UNet weights (`model_ema.*`); an error when the file has none. */
  useEma?: boolean;
  /** Tokenizer file or folder (openai .txt.gz, or a folder with vocab.json + merges.txt). */
  tokenizer?: string;
}

export interface Model {
  /** The detected architecture. */
  readonly config: ModelArch;
  /** Where the weights came from. */
  readonly source: { path: string; format: WeightSource['format'] };
  /** Where the networks run: 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** The dtype the networks hold their weights and compute in. */
  readonly dtype: 'f32' | 'f16' | 'bf16';
  /** CLIP token ids, [n, 77]: start token, prompt, end token, padded with the end token. */
  tokenize(prompts: string[]): Int32Array;
  /** Text-encoder hidden states [n, S, context_dim] for ids [n, S] (S = 77 from tokenize). clipSkip: 1 = last layer. */
  encodeText(ids: Int32Array, opts?: { clipSkip?: number }): Promise<Tensor>;
  /** Predicted noise for latents x [n, 4, h, w] at timesteps t [n] with text context [n, L, context_dim]. */
  unet(x: Tensor, t: Float32Array, context: Tensor): Promise<Tensor>;
  /** Posterior moments of images in [-1, 1] [n, 3, H, W]: unscaled mean and logvar (clamped to [-30, 20]). */
  vaeEncode(img: Tensor): Promise<{ mean: Tensor; logvar: Tensor }>;
  /** Image in [-1, 1] (not clamped) from an unscaled latent. */
  vaeDecode(z: Tensor): Promise<Tensor>;
  /** Frees the weights. The model cannot be used afterwards. */
  dispose(): void;
}

const STORE_DTYPES: Record<string, 'f32' | 'f16' | 'bf16' | 'f64'> = { F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64' };

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Loads every parameter of `net` from `src` by LDM key (converted to the network's dtype in the core, on the
 * host, then copied to its device). The bytes come through two reused read buffers (read ahead while the
 * previous tensor is copied in).
 */
export async function loadNetWeights(net: NativeNet, src: WeightSource): Promise<void> {
  const specs = net.paramSpecs();
  for (const { key } of specs) if (!src.tensors.has(key)) throw new DbtError(`${src.path}: no tensor ${key}`);
  const shapes = new Map(specs.map((s) => [s.key, s.shape]));
  for await (const { key, tensor: info, bytes: raw } of src.stream(specs.map((s) => s.key), { reuse: true })) {
    const shape = shapes.get(key)!;
    const dt = STORE_DTYPES[info.dtype];
    let t: CoreTensor;
    if (dt === undefined) {
      t = coreTensor(toFloat32(raw, info.dtype), shape);
    } else {
      const bytes = raw.byteOffset % 8 === 0 ? raw : raw.slice();
      const n = numel(shape);
      const arr =
        dt === 'f32' ? new Float32Array(bytes.buffer, bytes.byteOffset, n)
        : dt === 'f64' ? new Float64Array(bytes.buffer, bytes.byteOffset, n)
        : new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      t = coreTensor(arr, shape, { dtype: dt });
    }
    try {
      net.setParam(key, t);
    } finally {
      t.dispose();
    }
  }
}

function checkTensor(what: string, t: Tensor, rank: number): void {
  if (!(t.data instanceof Float32Array)) throw new UsageError(`${what}: data must be a Float32Array`);
  if (t.shape.length !== rank || numel(t.shape) !== t.data.length)
    throw new UsageError(`${what}: shape [${t.shape.join(', ')}] does not describe ${t.data.length} values as a rank-${rank} tensor`);
}

/** f32 host copy of a network output (cast on its device first when it is 16-bit); disposes t. */
function toHost(t: CoreTensor): Tensor {
  try {
    if (t.dtype === 'f32') return { data: t.read() as Float32Array, shape: t.shape };
    const f = ops.cast(t, 'f32');
    try {
      return { data: f.read() as Float32Array, shape: f.shape };
    } finally {
      f.dispose();
    }
  } finally {
    t.dispose();
  }
}

class SdModel implements Model {
  private nets: Partial<Record<NetKind, NativeNet>>;
  private disposed = false;

  constructor(
    readonly config: ModelArch,
    readonly source: { path: string; format: WeightSource['format'] },
    readonly device: string,
    readonly dtype: 'f32' | 'f16' | 'bf16',
    private readonly deviceName: DeviceName,
    nets: Record<NetKind, NativeNet>,
    private readonly tokenizer: ClipTokenizer | null,
    private readonly tokenizerProblem: string | undefined,
  ) {
    this.nets = nets;
  }

  /** data on the networks' device in their dtype (uploaded, then cast there). */
  private input(data: Float32Array, shape: number[]): CoreTensor {
    const t = coreTensor(data, shape, { device: this.deviceName });
    if (this.dtype === 'f32') return t;
    try {
      return ops.cast(t, this.dtype);
    } finally {
      t.dispose();
    }
  }

  private net(kind: NetKind): NativeNet {
    const n = this.nets[kind];
    if (this.disposed || !n) throw new UsageError('this model was disposed; open it again to use it');
    return n;
  }

  tokenize(prompts: string[]): Int32Array {
    if (!Array.isArray(prompts) || prompts.some((p) => typeof p !== 'string'))
      throw new UsageError('tokenize: prompts must be an array of strings, e.g. tokenize(["a photo of sks person"])');
    if (!this.tokenizer) throw new DbtError(this.tokenizerProblem ?? 'no CLIP tokenizer was found for this model');
    return this.tokenizer.tokenizeBatch(prompts, CONTEXT_LENGTH);
  }

  async encodeText(ids: Int32Array, opts: { clipSkip?: number } = {}): Promise<Tensor> {
    const net = this.net('text');
    if (!(ids instanceof Int32Array) || ids.length === 0 || ids.length % CONTEXT_LENGTH !== 0)
      throw new UsageError(`encodeText: ids must be an Int32Array of n × ${CONTEXT_LENGTH} token ids (from tokenize), got ${ids?.length} values`);
    const clipSkip = opts.clipSkip ?? 1;
    if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > this.config.text.num_layers)
      throw new UsageError(`clipSkip must be an integer from 1 to ${this.config.text.num_layers}, got ${clipSkip}`);
    const t = coreTensor(ids, [ids.length / CONTEXT_LENGTH, CONTEXT_LENGTH]);
    try {
      return toHost(net.textForward(t, clipSkip, false));
    } finally {
      t.dispose();
    }
  }

  async unet(x: Tensor, t: Float32Array, context: Tensor): Promise<Tensor> {
    const net = this.net('unet');
    checkTensor('unet: x', x, 4);
    checkTensor('unet: context', context, 3);
    const n = x.shape[0];
    if (!(t instanceof Float32Array) || t.length !== n) throw new UsageError(`unet: t must be a Float32Array of ${n} timestep${n === 1 ? '' : 's'} (one per sample)`);
    const { in_channels, context_dim } = this.config.unet;
    if (x.shape[1] !== in_channels) throw new UsageError(`unet: x must be [n, ${in_channels}, h, w] latents, got [${x.shape.join(', ')}]`);
    if (context.shape[0] !== n || context.shape[2] !== context_dim)
      throw new UsageError(`unet: context must be [${n}, L, ${context_dim}] (encodeText output for the same batch), got [${context.shape.join(', ')}]`);
    const xs = this.input(x.data, x.shape);
    const ts = coreTensor(t, [t.length]); // f32 timesteps; the UNet copies them to its device
    const cs = this.input(context.data, context.shape);
    try {
      return toHost(net.unetForward(xs, ts, cs, false));
    } finally {
      xs.dispose();
      ts.dispose();
      cs.dispose();
    }
  }

  async vaeEncode(img: Tensor): Promise<{ mean: Tensor; logvar: Tensor }> {
    const net = this.net('vae');
    checkTensor('vaeEncode: img', img, 4);
    const ch = this.config.vae.in_channels;
    if (img.shape[1] !== ch) throw new UsageError(`vaeEncode: img must be [n, ${ch}, H, W] (RGB in [-1, 1]), got [${img.shape.join(', ')}]`);
    const x = this.input(img.data, img.shape);
    try {
      const { mean, logvar } = net.vaeEncode(x);
      return { mean: toHost(mean), logvar: toHost(logvar) };
    } finally {
      x.dispose();
    }
  }

  async vaeDecode(z: Tensor): Promise<Tensor> {
    const net = this.net('vae');
    checkTensor('vaeDecode: z', z, 4);
    const zc = this.config.vae.embed_dim;
    if (z.shape[1] !== zc) throw new UsageError(`vaeDecode: z must be [n, ${zc}, h, w] (an unscaled latent), got [${z.shape.join(', ')}]`);
    const x = this.input(z.data, z.shape);
    try {
      return toHost(net.vaeDecode(x));
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    for (const n of Object.values(this.nets)) n?.dispose();
    this.nets = {};
    this.disposed = true;
  }
}

/** The three networks of `arch` on `device`, weights zero until loaded. */
export function createNets(arch: ModelArch, dtype: NetDType = 'f32', device: DeviceName = 'cpu'): Record<NetKind, NativeNet> {
  const unet = new NativeNet('unet', arch.unet, dtype, device);
  try {
    const text = new NativeNet('text', arch.text, dtype, device);
    try {
      return { unet, text, vae: new NativeNet('vae', arch.vae, dtype, device) };
    } catch (e) {
      text.dispose();
      throw e;
    }
  } catch (e) {
    unet.dispose();
    throw e;
  }
}

const DTYPES = ['auto', 'f32', 'f16', 'bf16'] as const;

/** The device and compute dtype openModel uses for these options; throws with the reason and the remedy. */
export function chooseDevice(opts: Pick<OpenModelOptions, 'device' | 'dtype'>): { device: DeviceName; name: string; dtype: 'f32' | 'f16' | 'bf16' } {
  const request: unknown = opts.device ?? 'cpu';
  const want: unknown = opts.dtype ?? 'auto';
  if (typeof request !== 'string')
    throw new UsageError(`openModel: device must be a string ('auto', 'cpu', 'cuda' or 'cuda:N'), got ${typeof request}`);
  if (!DTYPES.includes(want as (typeof DTYPES)[number]))
    throw new UsageError(`openModel: unknown dtype '${String(want)}' (use 'auto', 'f32', 'f16' or 'bf16')`);
  let r;
  try {
    r = resolveDevice(request);
  } catch (e) {
    if (e instanceof UsageError)
      throw new UsageError(`openModel: unknown device '${request}' (use 'auto', 'cpu', 'cuda' or 'cuda:N')`, { cause: e });
    if (e instanceof DbtError)
      throw new DbtError(`openModel: ${e.message}; use device 'cpu', or 'auto' (the CPU when no GPU is usable)`, {
        details: e.details.map((d) => d.replace(/--device (\w+)/g, "device '$1'")),
        cause: e,
      });
    throw e;
  }
  if (r.device === 'cpu') {
    if (want !== 'auto' && want !== 'f32')
      throw new UsageError(`openModel: on the CPU the networks compute in f32, not ${String(want)} (use dtype 'auto' or 'f32')`);
    return { device: 'cpu', name: 'cpu', dtype: 'f32' };
  }
  const cc = cudaStatus().devices.find((d) => d.index === r.index)?.computeCapability ?? '0.0';
  if (want === 'bf16' && cudaHalfDtype(cc) !== 'bf16')
    throw new UsageError(`openModel: ${r.description} has compute capability ${cc}; bf16 needs 8.0 or newer (use dtype 'f16' or 'auto')`);
  const dtype = want === 'auto' ? cudaHalfDtype(cc) : (want as 'f32' | 'f16' | 'bf16');
  return { device: 'cuda', name: `cuda:${r.index}`, dtype };
}

export async function openModel(path: string, opts: OpenModelOptions = {}): Promise<Model> {
  const dev = chooseDevice(opts);
  const src = await openWeights(path, { useEma: opts.useEma, tokenizer: opts.tokenizer });
  try {
    const nets = createNets(src.arch, dev.dtype, dev.device);
    try {
      for (const n of Object.values(nets)) await loadNetWeights(n, src);
    } catch (e) {
      for (const n of Object.values(nets)) n.dispose();
      throw e;
    }
    const source = { path: src.path, format: src.format };
    return new SdModel(src.arch, source, dev.name, dev.dtype, dev.device, nets, src.tokenizer, src.tokenizerProblem);
  } finally {
    await src.close();
  }
}
