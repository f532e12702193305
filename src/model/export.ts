/**
 * `dbt export`: one single-file SD1.x checkpoint (exactly the LDM key set, with SAI ModelSpec and training
 * metadata the web UIs show) or a diffusers folder, from anything openWeights reads.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { diffusersNames, DIFFUSERS_WEIGHT_FILE, writeDiffusersConfigs } from './diffusers.js';
import { dtypeSize, isFloatDType, type DType, type FloatStoreDType } from './dtype.js';
import { targetDType, transferTensor } from './transfer.js';
import type { FileHashes } from './hashes.js';
import { COMPONENTS, numel, type Component } from './keys.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';
import { writeTokenizerFiles } from './tokenizer-files.js';
import { openWeights, type WeightSource } from './weights.js';

export type ExportFormat = 'safetensors' | 'diffusers';

export interface ExportModelOptions {
  source: string;
  out: string;
  format?: ExportFormat;
  /** Float precision of the output; default: the source's own float dtype. */
  dtype?: FloatStoreDType;
  /** Export the EMA copy of the UNet. */
  ema?: boolean;
  title?: string;
  tokenizer?: string;
  force?: boolean;
  /** Compute the file's sha256 and A1111 hashes (default false; single-file exports only). */
  hash?: boolean;
  onBytes?: (bytes: number, total: number) => void;
}

export interface ExportModelResult {
  out: string;
  format: ExportFormat;
  dtype: FloatStoreDType;
  tensors: number;
  bytes: number;
  metadata: Record<string, string>;
  hashes?: FileHashes;
  warnings: string[];
  notes: string[];
}

function sourceFloatDType(w: WeightSource): FloatStoreDType {
  const counts = new Map<DType, number>();
  for (const t of w.tensors.values()) if (isFloatDType(t.dtype)) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  return top === 'F16' || top === 'BF16' ? top : 'F32';
}

/** Training summary from a run checkpoint directory (state.json, ../../run.yaml), as kohya-style ss_* keys. */
function trainingMetadata(w: WeightSource): Record<string, string> {
  if (w.format !== 'checkpoint-dir') return {};
  const meta: Record<string, string> = {};
  const readJson = (p: string) => (existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>) : undefined);
  try {
    const state = readJson(join(w.path, 'state.json'));
    if (typeof state?.step === 'number') meta.ss_steps = String(state.step);
    if (typeof state?.epoch === 'number') meta.ss_epoch = String(state.epoch);
    if (typeof state?.num_train_images === 'number') meta.ss_num_train_images = String(state.num_train_images);
    const runYaml = join(w.path, '..', '..', 'run.yaml');
    if (existsSync(runYaml)) {
      const spec = parseYaml(readFileSync(runYaml, 'utf8')) as Record<string, unknown>;
      if (spec && typeof spec === 'object') {
        if (spec.lr !== undefined) meta.ss_learning_rate = String(spec.lr);
        if (spec.steps !== undefined) meta.ss_max_train_steps = String(spec.steps);
        if (spec.seed !== undefined) meta.ss_seed = String(spec.seed);
        if (typeof spec.lr_scheduler === 'string') meta.ss_lr_scheduler = spec.lr_scheduler;
        if (typeof spec.optimizer === 'string') meta.ss_optimizer = spec.optimizer;
        if (typeof spec.resolution === 'number') meta.ss_resolution = `(${spec.resolution}, ${spec.resolution})`;
      }
    }
  } catch {
    // A damaged side file only costs the summary, never the export.
  }
  return meta;
}

export function exportMetadata(w: WeightSource, opts: { title: string; ema: boolean }): Record<string, string> {
  const res = w.arch.name === 'tiny' ? 64 : 512; // SD1.x trains at 512²; tiny is the 64² demo model
  const meta: Record<string, string> = {
    'modelspec.sai_model_spec': '1.0.0',
    'modelspec.architecture': 'stable-diffusion-v1',
    'modelspec.implementation': 'https://github.com/Stability-AI/generative-models',
    'modelspec.title': opts.title,
    'modelspec.date': new Date().toISOString().slice(0, 10),
    'modelspec.resolution': `${res}x${res}`,
    'modelspec.prediction_type': 'epsilon',
    'dbt.version': VERSION,
    'dbt.arch': JSON.stringify(w.arch),
    ...(opts.ema ? { 'dbt.ema': 'true' } : {}),
  };
  const src = w.modelJson?.source;
  if (src?.kind === 'file') {
    meta['dbt.source'] = basename(src.path);
    if (src.sha256) meta['dbt.source_sha256'] = src.sha256;
    if (src.a1111_hash) meta.ss_sd_model_hash = src.a1111_hash;
    meta.ss_sd_model_name = basename(src.path);
  } else if (src?.kind === 'random') meta['dbt.source'] = `random ${src.arch} seed ${src.seed}`;
  else if (w.metadata['dbt.source']) meta['dbt.source'] = w.metadata['dbt.source'];
  return { ...meta, ...trainingMetadata(w) };
}

export async function exportModel(opts: ExportModelOptions): Promise<ExportModelResult> {
  const format = opts.format ?? 'safetensors';
  const out = resolve(opts.out);
  if (format === 'safetensors' && extname(out).toLowerCase() !== '.safetensors') throw new UsageError(`--out ${opts.out}: a single-file export must end in .safetensors (or use --format diffusers)`);
  if (existsSync(out) && !opts.force) throw new UsageError(`${out} already exists; choose another --out or pass --force to replace it`);
  if (existsSync(out) && format === 'diffusers' && !statSync(out).isDirectory()) throw new UsageError(`${out} exists and is not a folder`);
  const w = await openWeights(resolve(opts.source), { useEma: opts.ema, tokenizer: opts.tokenizer });
  try {
    const dtype = opts.dtype ?? sourceFloatDType(w);
    const warnings: string[] = [];
    const notes = [...w.notes];
    const title = opts.title ?? (w.modelJson?.name || basename(out).replace(/\.safetensors$/i, ''));
    const metadata = exportMetadata(w, { title, ema: !!opts.ema });
    let produced = 0;
    const total = [...w.tensors.values()].reduce((n, t) => n + numel(t.shape) * dtypeSize(targetDType(t.dtype, dtype)), 0);
    const onBytes = (n: number) => {
      produced += n;
      opts.onBytes?.(produced, total);
    };
    const tensorFor = (key: string, shape?: number[], as?: string): TensorToWrite => transferTensor(w, key, dtype, { shape, as, onBytes });

    if (format === 'safetensors') {
      await mkdir(dirname(out), { recursive: true });
      const { bytes, hashes } = await writeSafetensors(out, [...w.tensors.keys()].map((k) => tensorFor(k)), { metadata, hash: opts.hash === true });
      return { out, format, dtype, tensors: w.tensors.size, bytes, metadata, hashes, warnings, notes };
    }

    // diffusers folder: written beside the target, renamed into place.
    const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      await writeDiffusersConfigs(tmp, w.arch);
      const perComponent: Record<Component, TensorToWrite[]> = { unet: [], vae: [], text_encoder: [] };
      for (const { ldm, to } of diffusersNames(w.arch)) {
        const shape = to.conv1x1 ? w.tensors.get(ldm)!.shape.slice(0, 2) : undefined;
        perComponent[to.component].push(tensorFor(ldm, shape, to.key));
      }
      let bytes = 0;
      for (const c of COMPONENTS) bytes += (await writeSafetensors(join(tmp, DIFFUSERS_WEIGHT_FILE[c]), perComponent[c], { metadata: { format: 'pt' } })).bytes;
      if (w.tokenizer) await writeTokenizerFiles(join(tmp, 'tokenizer'), w.tokenizer);
      else warnings.push(`the diffusers folder has no tokenizer files: ${w.tokenizerProblem}`);
      if (existsSync(out)) await rm(out, { recursive: true, force: true });
      await rename(tmp, out);
      return { out, format, dtype, tensors: w.tensors.size, bytes, metadata, warnings, notes };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  } finally {
    await w.close();
  }
}
