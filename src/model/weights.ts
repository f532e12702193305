/**
 * `openWeights(path)`: one way in for every model the user can point at — a `dbt create` model directory,
 * a run checkpoint directory, a single .safetensors / .ckpt file, or a diffusers folder. It yields the
 * architecture and the tensors by LDM key (read lazily, as stored or as f32), plus the tokenizer if one is
 * found. `openStores` is the lower layer (no detection), used by `inspect` to describe files dbt refuses.
 */
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { DbtError, FileFormatError, UsageError } from '../errors.js';
import type { ModelArch } from './arch.js';
import { openCkptStore } from './ckpt.js';
import { checkAgainstArch, detectArch, emaCoverage } from './detect.js';
import { isDiffusersDir, openDiffusersDir } from './diffusers.js';
import { dtypeSize, toFloat32, type DType } from './dtype.js';
import { COMPONENTS, componentOf, EMA_PREFIX, emaKeyFor, expectedTensors, TEXT_PREFIX, type Component } from './keys.js';
import { isModelDir, readModelJson, type ModelJson } from './modeldir.js';
import { openSafetensorsStore, type StoredTensor, type TensorLocation, type TensorStore } from './store.js';
import type { ClipTokenizer } from './tokenizer.js';
import { findTokenizer } from './tokenizer-files.js';

export type SourceFormat = 'model-dir' | 'checkpoint-dir' | 'safetensors' | 'ckpt' | 'diffusers';

export interface StoresView {
  path: string;
  format: SourceFormat;
  stores: TensorStore[];
  /** Tensors under normalised LDM keys (plus whatever else the files hold, e.g. model_ema.*, betas). */
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
  /** Normalisations applied, for `inspect` and logs. */
  notes: string[];
  modelJson?: ModelJson;
  /** Folders that may hold this model's tokenizer files. */
  tokenizerDirs: string[];
  close(): Promise<void>;
}

/** Checkpoint directory written by the trainer: `model.safetensors` (+ `state.safetensors`, `state.json`). */
export const CHECKPOINT_MODEL_FILE = 'model.safetensors';
export const CHECKPOINT_STATE_FILE = 'state.safetensors';

async function openFileStore(path: string): Promise<TensorStore> {
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') return openSafetensorsStore(path);
  if (['.ckpt', '.pt', '.pth', '.bin'].includes(ext)) return openCkptStore(path);
  const fh = await open(path, 'r');
  const magic = Buffer.alloc(4);
  try {
    await fh.read(magic, 0, 4, 0);
  } finally {
    await fh.close();
  }
  return magic.readUInt32LE(0) === 0x04034b50 ? openCkptStore(path) : openSafetensorsStore(path);
}

/** Old text-encoder keys lack `text_model.` (transformers < 4.x layout). */
function normaliseTextKey(key: string): string {
  if (key.startsWith(TEXT_PREFIX) && !key.startsWith(`${TEXT_PREFIX}text_model.`)) return `${TEXT_PREFIX}text_model.${key.slice(TEXT_PREFIX.length)}`;
  return key;
}

function mergeNormalised(stores: TensorStore[], notes: string[]): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  let renamed = 0;
  for (const s of stores) {
    for (const [k, t] of s.tensors) {
      const nk = normaliseTextKey(k);
      if (nk !== k) renamed++;
      if (out.has(nk)) throw new FileFormatError(s.path, `tensor "${nk}" appears twice${nk !== k ? ` (as "${k}" and under text_model.)` : ''}`);
      out.set(nk, t);
    }
  }
  if (renamed) notes.push(`${renamed} old-style text encoder keys (without "text_model.") were normalised`);
  return out;
}

export async function openStores(path: string): Promise<StoresView> {
  if (!existsSync(path)) throw new UsageError(`${path} does not exist`);
  const notes: string[] = [];
  const stores: TensorStore[] = [];
  const closeAll = async () => {
    for (const s of stores) await s.close();
  };
  try {
    if (statSync(path).isDirectory()) {
      if (isModelDir(path)) {
        const modelJson = await readModelJson(path);
        for (const f of COMPONENTS.map((c) => modelJson.files[c])) stores.push(await openSafetensorsStore(join(path, f)));
        return { path, format: 'model-dir', stores, tensors: mergeNormalised(stores, notes), metadata: {}, notes, modelJson, tokenizerDirs: [join(path, 'tokenizer')], close: closeAll };
      }
      if (existsSync(join(path, CHECKPOINT_MODEL_FILE))) {
        stores.push(await openSafetensorsStore(join(path, CHECKPOINT_MODEL_FILE)));
        if (existsSync(join(path, CHECKPOINT_STATE_FILE))) stores.push(await openSafetensorsStore(join(path, CHECKPOINT_STATE_FILE)));
        const tensors = mergeNormalised([stores[0]], notes);
        // EMA weights in a run checkpoint live in state.safetensors as `ema.<LDM key>`; present them under LDM's EMA names.
        if (stores[1]) for (const [k, t] of stores[1].tensors) if (k.startsWith('ema.model.diffusion_model.')) tensors.set(emaKeyFor(k.slice(4)), t);
        return { path, format: 'checkpoint-dir', stores, tensors, metadata: stores[0].metadata, notes, tokenizerDirs: [join(path, 'tokenizer')], close: closeAll };
      }
      if (isDiffusersDir(path)) {
        const d = await openDiffusersDir(path);
        stores.push(...d.stores);
        notes.push('diffusers names converted to LDM keys');
        if (d.unmapped.length) notes.push(`${d.unmapped.length} diffusers tensors have no LDM counterpart and were ignored (first: ${d.unmapped[0]})`);
        return { path, format: 'diffusers', stores, tensors: d.tensors, metadata: {}, notes, tokenizerDirs: [join(path, 'tokenizer')], close: closeAll };
      }
      throw new UsageError(`${path} is a folder but not a dbt model (model.json), a run checkpoint (${CHECKPOINT_MODEL_FILE}) or a diffusers model (model_index.json)`);
    }
    const store = await openFileStore(path);
    stores.push(store);
    return { path, format: store.format, stores, tensors: mergeNormalised(stores, notes), metadata: store.metadata, notes, tokenizerDirs: [], close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

export interface WeightTensor {
  key: string;
  dtype: DType;
  shape: number[];
  component: Component;
}

export interface OpenWeightsOptions {
  /** Use the EMA copy of the UNet (`model_ema.*`) instead of the live weights; an error when there is none. */
  useEma?: boolean;
  /** Tokenizer file or folder; otherwise the model's own, the built-in tiny one, or the Hugging Face cache. */
  tokenizer?: string;
}

export interface WeightSource {
  readonly path: string;
  readonly format: SourceFormat;
  readonly arch: ModelArch;
  readonly metadata: Record<string, string>;
  /** Exactly the tensors of `expectedTensors(arch)`, by LDM key. */
  readonly tensors: ReadonlyMap<string, WeightTensor>;
  /** Stored bytes; read into `into` (when large enough) where the file format allows. */
  readRaw(key: string, into?: Uint8Array): Promise<Uint8Array>;
  /** Where the tensor's stored bytes lie in an open file, when they are contiguous there (writers copy them in the kernel). */
  location(key: string): TensorLocation | undefined;
  readF32(key: string): Promise<Float32Array>;
  /** Stored bytes in chunks of at most `chunkBytes`, read into one reused buffer (valid until the next chunk). */
  chunks(key: string, chunkBytes?: number): AsyncGenerator<Uint8Array>;
  /**
   * The tensors' stored bytes in `keys` order (default: all), reading ahead up to `aheadBytes` (default
   * 256 MB) so the disk stays busy while the caller converts or uploads the previous tensor. With `reuse`,
   * the bytes lie in one of two buffers the stream reuses: valid only until the next tensor is asked for
   * (the next one is read meanwhile). That saves the page faults of fresh memory, which cost as much as the
   * reading itself: use it whenever the bytes are copied or converted elsewhere (native tensors, hashes).
   */
  stream(keys?: readonly string[], opts?: { aheadBytes?: number; reuse?: boolean }): AsyncGenerator<{ key: string; tensor: WeightTensor; bytes: Uint8Array }>;
  readonly ema: { available: boolean; used: boolean };
  readonly tokenizer: ClipTokenizer | null;
  /** Why there is no tokenizer (with where to get one), when `tokenizer` is null. */
  readonly tokenizerProblem?: string;
  readonly modelJson?: ModelJson;
  readonly notes: readonly string[];
  /** Things the user should know about the source (a pickle that references code dbt did not run). */
  readonly warnings: readonly string[];
  /** Keys in the files that are not part of the model (EMA copies, schedule buffers, …). */
  readonly extraKeys: readonly string[];
  close(): Promise<void>;
}

const POSITION_IDS = `${TEXT_PREFIX}text_model.embeddings.position_ids`;

function positionIdsBytes(n: number): Uint8Array {
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(i);
  return new Uint8Array(ids.buffer);
}

export async function openWeights(path: string, opts: OpenWeightsOptions = {}): Promise<WeightSource> {
  const view = await openStores(path);
  try {
    const shapes = new Map([...view.tensors].map(([k, t]) => [k, t.shape]));
    let arch: ModelArch;
    if (view.modelJson) {
      arch = view.modelJson.arch;
      const { missing, mismatched } = checkAgainstArch(shapes, arch);
      if (missing.length || mismatched.length) {
        throw new FileFormatError(path, `model files do not match model.json's architecture (${missing.length} missing, ${mismatched.length} wrong shape)`, {
          details: [...missing.slice(0, 5).map((k) => `missing: ${k}`), ...mismatched.slice(0, 5)],
        });
      }
    } else arch = detectArch(path, shapes, view.metadata);

    const cover = emaCoverage(shapes, arch);
    const emaAvailable = cover.present === cover.total;
    if (opts.useEma && !emaAvailable) {
      throw new DbtError(
        cover.present
          ? `${path}: EMA weights cover only ${cover.present} of ${cover.total} UNet tensors; cannot use them`
          : `${path}: has no EMA weights (${EMA_PREFIX}*); drop --use-ema/--ema to use the regular weights`,
      );
    }

    const notes = [...view.notes];
    const tensors = new Map<string, WeightTensor>();
    const readers = new Map<string, (into?: Uint8Array) => Promise<Uint8Array>>();
    const rangeReaders = new Map<string, (offset: number, into: Uint8Array) => Promise<Uint8Array>>();
    const locations = new Map<string, TensorLocation>();
    for (const spec of expectedTensors(arch)) {
      if (spec.key === POSITION_IDS) {
        const stored = view.tensors.get(POSITION_IDS);
        const good = positionIdsBytes(arch.text.max_position_embeddings);
        let ok = false;
        if (stored && stored.dtype === 'I64') ok = Buffer.compare(Buffer.from(await stored.read()), Buffer.from(good)) === 0;
        if (!ok) notes.push(stored ? `position_ids were not 0..${arch.text.max_position_embeddings - 1} as int64 (a known defect of some merges); replaced` : 'position_ids were absent; added');
        tensors.set(spec.key, { key: spec.key, dtype: 'I64', shape: spec.shape, component: 'text_encoder' });
        readers.set(spec.key, async () => good.slice());
        if (ok && stored!.location) locations.set(spec.key, stored!.location);
        continue;
      }
      const src = opts.useEma && spec.component === 'unet' ? (view.tensors.get(emaKeyFor(spec.key)) as StoredTensor) : (view.tensors.get(spec.key) as StoredTensor);
      tensors.set(spec.key, { key: spec.key, dtype: src.dtype, shape: spec.shape, component: spec.component });
      readers.set(spec.key, (into) => src.read(into));
      if (src.readRange) rangeReaders.set(spec.key, (offset, into) => src.readRange!(offset, into));
      if (src.location) locations.set(spec.key, src.location);
    }
    const modelKeys = new Set(tensors.keys());
    const extraKeys = [...view.tensors.keys()].filter((k) => !modelKeys.has(k));

    const lookup = await findTokenizer(arch, { explicit: opts.tokenizer, modelDirs: view.tokenizerDirs });
    const readRaw = (key: string, into?: Uint8Array): Promise<Uint8Array> => {
      const r = readers.get(key);
      if (!r) throw new DbtError(`no tensor "${key}" in ${path}${componentOf(key) ? '' : ' (not an SD1.x model key)'}`);
      return r(into);
    };
    const sizeOf = (key: string): number => {
      const t = tensors.get(key);
      if (!t) throw new DbtError(`no tensor "${key}" in ${path}`);
      return t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.dtype);
    };
    async function* streamReusing(keys: readonly string[]) {
      const slots: (Buffer | undefined)[] = [undefined, undefined];
      const read = (i: number): Promise<Uint8Array> => {
        const size = sizeOf(keys[i]);
        let slot = slots[i % 2];
        if (!slot || slot.length < size) slot = slots[i % 2] = Buffer.allocUnsafeSlow(size);
        const bytes = readRaw(keys[i], slot.subarray(0, size));
        bytes.catch(() => undefined); // consumed (and rethrown) in order below
        return bytes;
      };
      let pending = keys.length ? read(0) : undefined;
      for (let i = 0; i < keys.length; i++) {
        const bytes = await pending!;
        pending = i + 1 < keys.length ? read(i + 1) : undefined;
        yield { key: keys[i], tensor: tensors.get(keys[i])!, bytes };
      }
    }
    async function* stream(keys: readonly string[] = [...tensors.keys()], o: { aheadBytes?: number; reuse?: boolean } = {}) {
      if (o.reuse) {
        yield* streamReusing(keys);
        return;
      }
      const ahead = o.aheadBytes ?? 256e6;
      const queue: { key: string; size: number; bytes: Promise<Uint8Array> }[] = [];
      let queued = 0;
      let next = 0;
      try {
        while (next < keys.length || queue.length) {
          while (next < keys.length && (queue.length === 0 || queued < ahead)) {
            const key = keys[next++];
            const size = sizeOf(key);
            const bytes = readRaw(key);
            bytes.catch(() => undefined); // consumed (and rethrown) in order below
            queue.push({ key, size, bytes });
            queued += size;
          }
          const head = queue.shift()!;
          queued -= head.size;
          yield { key: head.key, tensor: tensors.get(head.key)!, bytes: await head.bytes };
        }
      } finally {
        queue.length = 0;
      }
    }
    async function* chunks(key: string, chunkBytes = 4 << 20) {
      const t = tensors.get(key);
      if (!t) throw new DbtError(`no tensor "${key}" in ${path}`);
      const size = t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.dtype);
      const range = rangeReaders.get(key);
      if (!range || size <= chunkBytes) {
        yield await readRaw(key);
        return;
      }
      // Two buffers: chunk k+1 is read while the consumer handles chunk k (which it must finish before asking
      // for the next one).
      const bufs = [Buffer.allocUnsafeSlow(chunkBytes), Buffer.allocUnsafeSlow(chunkBytes)];
      const read = (k: number) => range(k * chunkBytes, bufs[k % 2].subarray(0, Math.min(chunkBytes, size - k * chunkBytes)));
      const count = Math.ceil(size / chunkBytes);
      let pending = read(0);
      for (let k = 0; k < count; k++) {
        const chunk = await pending;
        if (k + 1 < count) {
          pending = read(k + 1);
          pending.catch(() => undefined); // surfaces at the next await
        }
        yield chunk;
      }
    }
    return {
      path,
      format: view.format,
      arch,
      metadata: view.metadata,
      tensors,
      readRaw,
      location: (key) => locations.get(key),
      chunks,
      stream,
      readF32: async (key) => toFloat32(await readRaw(key), tensors.get(key)!.dtype),
      ema: { available: emaAvailable, used: !!opts.useEma },
      tokenizer: lookup.tokenizer,
      tokenizerProblem: lookup.problem,
      modelJson: view.modelJson,
      notes,
      warnings: view.stores.flatMap((st) => (st.pickle?.unknownGlobals.length ? [`${st.path}: the pickle references code dbt did not run (${st.pickle.unknownGlobals.join(', ')}); only its tensors were loaded. Checkpoints do not need such code: check where this file came from`] : [])),
      extraKeys,
      close: view.close,
    };
  } catch (e) {
    await view.close();
    throw e;
  }
}
