/**
 * The model working directory `models/<name>/` (DESIGN.md): model.json, one safetensors file per component
 * under LDM keys, and tokenizer/ (vocab.json + merges.txt). Written into a temporary sibling folder and
 * renamed into place, so a crash never leaves a half-written model under the real name.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SAMPLERS } from '../config/schema.js';
import { DbtError, FileFormatError } from '../errors.js';
import { VERSION } from '../version.js';
import type { ModelArch } from './arch.js';
import { COMPONENTS, type Component } from './keys.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';
import type { ClipTokenizer } from './tokenizer.js';
import { writeTokenizerFiles } from './tokenizer-files.js';

export const MODEL_JSON = 'model.json';
export const MODEL_FORMAT = 'dbt-model';
export const MODEL_FORMAT_VERSION = 1;
export const COMPONENT_FILES: Record<Component, string> = { unet: 'unet.safetensors', vae: 'vae.safetensors', text_encoder: 'text_encoder.safetensors' };

/** The samplers a model can name as its default (the run spec's list). */
export const SCHEDULERS = SAMPLERS;
export type SchedulerName = (typeof SCHEDULERS)[number];

export type ModelSourceInfo =
  | { kind: 'random'; arch: string; seed: number }
  | {
      kind: 'file';
      path: string;
      format: string;
      /** sha256 and A1111 hashes of a single source file (absent for folders). */
      sha256?: string;
      a1111_hash?: string;
      a1111_legacy_hash?: string;
      used_ema: boolean;
    };

export interface ModelJson {
  format: typeof MODEL_FORMAT;
  version: number;
  name: string;
  arch: ModelArch;
  /** Storage dtype of the float tensors. */
  dtype: 'F32' | 'F16';
  files: Record<Component, string>;
  source: ModelSourceInfo;
  scheduler: SchedulerName;
  prediction_type: 'epsilon';
  /** Where the vocabulary came from and the files written for it; null when none was available. */
  tokenizer: { source: string; files: string[] } | null;
  created: string;
  dbt_version: string;
}

export function isModelDir(dir: string): boolean {
  return existsSync(join(dir, MODEL_JSON));
}

export async function readModelJson(dir: string): Promise<ModelJson> {
  const file = join(dir, MODEL_JSON);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(file, `cannot read model description (${(e as Error).message})`);
  }
  const m = parsed as Partial<ModelJson>;
  if (m?.format !== MODEL_FORMAT) throw new FileFormatError(file, `not a dbt model description (format is ${JSON.stringify(m?.format)}, expected "${MODEL_FORMAT}")`);
  if (typeof m.version !== 'number' || m.version > MODEL_FORMAT_VERSION) {
    throw new FileFormatError(file, `model format version ${m.version} is newer than this dbt understands (${MODEL_FORMAT_VERSION}); upgrade dbt`);
  }
  if (!m.arch?.unet || !m.arch.vae || !m.arch.text) throw new FileFormatError(file, 'model description has no complete "arch"');
  for (const c of COMPONENTS) if (typeof m.files?.[c] !== 'string') throw new FileFormatError(file, `model description names no file for component "${c}"`);
  return m as ModelJson;
}

export interface ModelDirContents {
  json: Omit<ModelJson, 'format' | 'version' | 'files' | 'tokenizer' | 'created' | 'dbt_version'>;
  tensors: Record<Component, TensorToWrite[]>;
  tokenizer: ClipTokenizer | null;
  /** Progress callback, called after each component file is written. */
  onComponent?: (component: Component, bytes: number) => void;
  /** Fields of model.json computed while the weights are written (the source's hashes); awaited before model.json is. */
  pending?: Promise<Partial<ModelDirContents['json']>>;
}

/** Writes a model directory at `dir` atomically; refuses to replace an existing one unless `force`. */
export async function writeModelDir(dir: string, contents: ModelDirContents, opts: { force?: boolean } = {}): Promise<ModelJson> {
  if (existsSync(dir) && !opts.force) throw new DbtError(`${dir} already exists; choose another name, remove it, or pass --force to replace it`, { exitCode: 2 });
  await mkdir(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    for (const c of COMPONENTS) {
      const { bytes } = await writeSafetensors(join(tmp, COMPONENT_FILES[c]), contents.tensors[c], { metadata: { 'dbt.component': c } });
      contents.onComponent?.(c, bytes);
    }
    let tokenizer: ModelJson['tokenizer'] = null;
    if (contents.tokenizer) {
      const files = await writeTokenizerFiles(join(tmp, 'tokenizer'), contents.tokenizer);
      tokenizer = { source: contents.tokenizer.source, files: files.map((f) => `tokenizer/${f}`) };
    }
    const late = contents.pending ? await contents.pending : {};
    const json: ModelJson = {
      format: MODEL_FORMAT,
      version: MODEL_FORMAT_VERSION,
      ...contents.json,
      ...late,
      files: { ...COMPONENT_FILES },
      tokenizer,
      created: new Date().toISOString(),
      dbt_version: VERSION,
    };
    await writeFile(join(tmp, MODEL_JSON), `${JSON.stringify(json, null, 2)}\n`);
    if (existsSync(dir)) {
      const old = `${tmp}-old`;
      await rename(dir, old);
      await rename(tmp, dir);
      await rm(old, { recursive: true, force: true });
    } else await rename(tmp, dir);
    return json;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
