/**
 * `dbt create`: a model directory from a checkpoint (any format openWeights reads) or from random
 * initialisation of a named architecture. Tensors stream one at a time from source to destination.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DbtError, EXIT_USAGE, UsageError } from '../errors.js';
import { NAMED_ARCHS, type ModelArch } from './arch.js';
import { fromFloat32 } from './dtype.js';
import { transferTensor } from './transfer.js';
import { hashFileInWorker, type FileHashes } from './hashes.js';
import { initTensorBytes, initTensorF32 } from './init.js';
import { COMPONENTS, expectedTensors, numel, type Component } from './keys.js';
import { writeModelDir, type ModelJson, type ModelSourceInfo, type SchedulerName } from './modeldir.js';
import type { TensorToWrite } from './safetensors.js';
import type { ClipTokenizer } from './tokenizer.js';
import { findTokenizer } from './tokenizer-files.js';
import { openWeights } from './weights.js';

export interface CreateModelOptions {
  /** Destination directory (already resolved: `models/<name>` or a path). */
  dir: string;
  from?: string;
  arch?: keyof typeof NAMED_ARCHS;
  seed?: number;
  half?: boolean;
  scheduler?: SchedulerName;
  useEma?: boolean;
  tokenizer?: string;
  force?: boolean;
  /** Called as bytes of tensor data are produced (for progress). */
  onBytes?: (bytes: number, total: number) => void;
  /** Called when the hash of a source file starts (it runs on another thread while the weights are written). */
  onPhase?: (phase: 'hashing' | 'writing') => void;
}

export interface CreateModelResult {
  dir: string;
  model: ModelJson;
  bytes: number;
  warnings: string[];
  /** What was normalised on the way (old key names, diffusers names, position_ids). */
  notes: string[];
  hashes?: FileHashes;
}

function componentTensors(arch: ModelArch, produce: (key: string) => TensorToWrite): Record<Component, TensorToWrite[]> {
  const out = { unet: [], vae: [], text_encoder: [] } as Record<Component, TensorToWrite[]>;
  for (const spec of expectedTensors(arch)) out[spec.component].push(produce(spec.key));
  return out;
}

function totalBytes(tensors: Record<Component, TensorToWrite[]>): number {
  let n = 0;
  for (const c of COMPONENTS) for (const t of tensors[c]) n += t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F16' ? 2 : t.dtype === 'I64' ? 8 : 4);
  return n;
}

export async function createModel(opts: CreateModelOptions): Promise<CreateModelResult> {
  if (!!opts.from === !!opts.arch) throw new UsageError('give exactly one of --from <checkpoint> or --arch tiny|sd15');
  if (opts.arch && opts.useEma) throw new UsageError('--use-ema needs --from (a random model has no EMA weights)');
  if (opts.arch && !(opts.arch in NAMED_ARCHS)) throw new UsageError(`unknown --arch ${opts.arch} (choose ${Object.keys(NAMED_ARCHS).join(' or ')})`);
  const dir = resolve(opts.dir);
  // Before hashing or reading a multi-GB source: writeModelDir would refuse only at the end.
  if (existsSync(dir) && !opts.force) throw new DbtError(`${dir} already exists; choose another name, remove it, or pass --force to replace it`, { exitCode: EXIT_USAGE });
  const floatType = opts.half ? 'F16' : 'F32';
  const warnings: string[] = [];
  let produced = 0;
  let total = 0;
  const count = (n: number) => {
    produced += n;
    opts.onBytes?.(produced, total);
  };

  if (opts.arch) {
    const arch = NAMED_ARCHS[opts.arch];
    const seed = opts.seed ?? 0;
    const tensors = componentTensors(arch, (key) => {
      const spec = expectedTensors(arch).find((s) => s.key === key)!;
      const dtype = spec.dtype === 'I64' ? 'I64' : floatType;
      return {
        key,
        dtype,
        shape: spec.shape,
        data: (scratch) => {
          const bytes = dtype === 'F16' ? fromFloat32(initTensorF32(spec, seed), 'F16', scratch(2 * numel(spec.shape))) : initTensorBytes(spec, seed);
          count(bytes.byteLength);
          return bytes;
        },
      };
    });
    total = totalBytes(tensors);
    const lookup = await findTokenizer(arch, { explicit: opts.tokenizer });
    if (!lookup.tokenizer) warnings.push(`model created without a tokenizer: ${lookup.problem}`);
    const source: ModelSourceInfo = { kind: 'random', arch: opts.arch, seed };
    opts.onPhase?.('writing');
    const model = await write(dir, arch, source, tensors, lookup.tokenizer, opts, floatType);
    return { dir, model, bytes: total, warnings, notes: [] };
  }

  const from = resolve(opts.from!);
  const w = await openWeights(from, { useEma: opts.useEma, tokenizer: opts.tokenizer });
  let hasher: ReturnType<typeof hashFileInWorker> | undefined;
  try {
    // The source's hashes (for model.json) are computed on a worker thread while the weights are written.
    hasher = statSync(from).isFile() ? hashFileInWorker(from) : undefined;
    if (hasher) opts.onPhase?.('hashing');
    const hashing = hasher?.digest();
    warnings.push(...w.warnings);
    if (!w.tokenizer) warnings.push(`model created without a tokenizer: ${w.tokenizerProblem}`);
    if (w.ema.available && !opts.useEma) warnings.push('the source also has EMA weights (model_ema.*); pass --use-ema to take those instead');
    const tensors = componentTensors(w.arch, (key) => transferTensor(w, key, floatType, { onBytes: count }));
    total = totalBytes(tensors);
    const source: ModelSourceInfo = { kind: 'file', path: from, format: w.format, used_ema: !!opts.useEma };
    const withHashes = hashing?.then((h): Partial<ModelJson> => ({ source: { ...source, sha256: h.sha256, a1111_hash: h.a1111, a1111_legacy_hash: h.a1111Legacy } }));
    withHashes?.catch(() => undefined); // awaited by the writer; a write that fails first never asks
    opts.onPhase?.('writing');
    const model = await write(dir, w.arch, source, tensors, w.tokenizer, opts, floatType, withHashes);
    return { dir, model, bytes: total, warnings, notes: [...w.notes], hashes: hashing && (await hashing) };
  } catch (e) {
    hasher?.abort();
    throw e;
  } finally {
    await w.close();
  }
}

function write(
  dir: string,
  arch: ModelArch,
  source: ModelSourceInfo,
  tensors: Record<Component, TensorToWrite[]>,
  tokenizer: ClipTokenizer | null,
  opts: CreateModelOptions,
  dtype: 'F32' | 'F16',
  pending?: Promise<Partial<ModelJson>>,
): Promise<ModelJson> {
  const name = dir.split(/[\\/]/).filter(Boolean).pop() ?? 'model';
  return writeModelDir(
    dir,
    { json: { name, arch, dtype, source, scheduler: opts.scheduler ?? 'ddim', prediction_type: 'epsilon' }, tensors, tokenizer, pending },
    { force: opts.force },
  );
}
