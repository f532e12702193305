/**
 * `dbt inspect`: what a model file or folder is — format, detected architecture (or why dbt refuses it),
 * per-component parameter counts and dtypes, A1111 hashes, metadata, EMA, pickle globals, NaN/Inf scan.
 * It describes files dbt cannot train (SDXL, LoRA, …) instead of failing on them.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DbtError } from '../errors.js';
import type { ModelArch } from './arch.js';
import { classifyKeys, detectArch, emaCoverage, hasEmaKeys } from './detect.js';
import { isFloatDType, toFloat32 } from './dtype.js';
import { hashFile, type FileHashes } from './hashes.js';
import { componentOf, EMA_PREFIX, isBufferKey, numel, type Component } from './keys.js';
import type { ModelJson } from './modeldir.js';
import { findTokenizer } from './tokenizer-files.js';
import { openStores, type SourceFormat } from './weights.js';

export interface ComponentSummary {
  tensors: number;
  params: number;
  dtypes: Record<string, number>;
}

export interface InspectReport {
  path: string;
  format: SourceFormat;
  files: { path: string; bytes: number }[];
  architecture: { family: string; supported: boolean; arch?: ModelArch; problem?: string };
  components: Record<Component | 'ema' | 'other', ComponentSummary>;
  /** A few keys of `other`, to show what they are. */
  other_examples: string[];
  ema: { present: boolean; complete: boolean };
  hashes?: { sha256: string; a1111: string; a1111_legacy: string };
  metadata: Record<string, string>;
  model?: ModelJson;
  pickle?: { globals: string[]; unknown_globals: string[]; top_level_keys: string[] };
  tokenizer: { found: boolean; source?: string; problem?: string };
  notes: string[];
  scan?: { tensors: number; nan: string[]; inf: string[] };
}

export interface InspectOptions {
  path: string;
  /** Read every tensor and report NaN / Inf values. */
  scan?: boolean;
  /** Hash a single file (sha256 + A1111 hashes); default true. */
  hash?: boolean;
  tokenizer?: string;
  onScan?: (done: number, total: number) => void;
}

const emptySummary = (): ComponentSummary => ({ tensors: 0, params: 0, dtypes: {} });

export async function inspectModel(opts: InspectOptions): Promise<InspectReport> {
  const path = resolve(opts.path);
  const view = await openStores(path);
  try {
    const shapes = new Map([...view.tensors].map(([k, t]) => [k, t.shape]));
    const kind = classifyKeys(shapes);
    let arch: ModelArch | undefined;
    let problem: string | undefined;
    if (view.modelJson) arch = view.modelJson.arch;
    else if (kind.supported) {
      try {
        arch = detectArch(path, shapes, view.metadata);
      } catch (e) {
        if (!(e instanceof DbtError)) throw e;
        problem = [e.message.replace(`${path}: `, ''), ...e.details].join('\n  ');
      }
    } else problem = `${kind.family}: ${kind.reason}`;

    const components: InspectReport['components'] = { unet: emptySummary(), vae: emptySummary(), text_encoder: emptySummary(), ema: emptySummary(), other: emptySummary() };
    const otherExamples: string[] = [];
    for (const [key, t] of view.tensors) {
      const c = componentOf(key) ?? (key.startsWith(EMA_PREFIX) ? 'ema' : 'other');
      const s = components[c];
      s.tensors++;
      if (!isBufferKey(key)) s.params += numel(t.shape);
      s.dtypes[t.dtype] = (s.dtypes[t.dtype] ?? 0) + 1;
      if (c === 'other' && otherExamples.length < 8) otherExamples.push(key);
    }
    const cover = arch ? emaCoverage(shapes, arch) : undefined;

    let hashes: FileHashes | undefined;
    if (opts.hash !== false && statSync(path).isFile()) hashes = await hashFile(path);

    let tokenizer: InspectReport['tokenizer'] = { found: false, problem: 'no SD1.x architecture detected' };
    if (arch) {
      try {
        const t = await findTokenizer(arch, { explicit: opts.tokenizer, modelDirs: view.tokenizerDirs });
        tokenizer = t.tokenizer ? { found: true, source: t.tokenizer.source } : { found: false, problem: t.problem };
      } catch (e) {
        tokenizer = { found: false, problem: (e as Error).message };
      }
    }

    let scan: InspectReport['scan'];
    if (opts.scan) {
      scan = { tensors: 0, nan: [], inf: [] };
      const all = [...view.tensors].filter(([, t]) => isFloatDType(t.dtype));
      for (const [key, t] of all) {
        const v = toFloat32(await t.read(), t.dtype);
        let nan = false;
        let inf = false;
        for (let i = 0; i < v.length && !(nan && inf); i++) {
          const x = v[i];
          if (x !== x) nan = true;
          else if (x === Infinity || x === -Infinity) inf = true;
        }
        if (nan) scan.nan.push(key);
        if (inf) scan.inf.push(key);
        scan.tensors++;
        opts.onScan?.(scan.tensors, all.length);
      }
    }

    const pk = view.stores.find((s) => s.pickle)?.pickle;
    return {
      path,
      format: view.format,
      files: view.stores.map((s) => ({ path: s.path, bytes: statSync(s.path).size })),
      architecture: { family: kind.family, supported: kind.supported && !!arch, arch, problem },
      components,
      other_examples: otherExamples,
      ema: { present: hasEmaKeys(view.tensors.keys()), complete: !!cover && cover.present === cover.total },
      hashes: hashes && { sha256: hashes.sha256, a1111: hashes.a1111, a1111_legacy: hashes.a1111Legacy },
      metadata: view.metadata,
      model: view.modelJson,
      pickle: pk && { globals: pk.globals, unknown_globals: pk.unknownGlobals, top_level_keys: pk.topLevelKeys },
      tokenizer,
      notes: view.notes,
      scan,
    };
  } finally {
    await view.close();
  }
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function params(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n.toLocaleString('en-US');
}

/** The report as people read it. */
export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [];
  lines.push(`${r.path}`);
  lines.push(`  format        ${r.format}, ${r.files.length === 1 ? mb(r.files[0].bytes) : `${r.files.length} files, ${mb(r.files.reduce((a, f) => a + f.bytes, 0))}`}`);
  if (r.architecture.arch) {
    const a = r.architecture.arch;
    lines.push(
      `  architecture  ${a.name === 'tiny' ? 'tiny (test model)' : 'Stable Diffusion 1.x'}: UNet ${a.unet.model_channels}×[${a.unet.channel_mult}], ${a.unet.num_res_blocks} res blocks, context ${a.unet.context_dim}; ` +
        `VAE ${a.vae.ch}×[${a.vae.ch_mult}]; CLIP ${a.text.num_layers}×${a.text.hidden_size}, vocab ${a.text.vocab_size}`,
    );
  } else lines.push(`  architecture  ${r.architecture.family} — not usable by dbt: ${r.architecture.problem}`);
  for (const c of ['unet', 'vae', 'text_encoder', 'ema', 'other'] as const) {
    const s = r.components[c];
    if (!s.tensors) continue;
    const dt = Object.entries(s.dtypes)
      .map(([d, n]) => `${d}×${n}`)
      .join(' ');
    lines.push(`  ${c.padEnd(13)} ${String(s.tensors).padStart(5)} tensors, ${params(s.params)} params (${dt})`);
  }
  if (r.other_examples.length) lines.push(`                e.g. ${r.other_examples.slice(0, 4).join(', ')}`);
  lines.push(`  EMA           ${r.ema.present ? (r.ema.complete ? 'present (complete): --use-ema / --ema can use it' : 'present but incomplete') : 'none'}`);
  if (r.hashes) lines.push(`  hashes        A1111 ${r.hashes.a1111}  legacy ${r.hashes.a1111_legacy}  sha256 ${r.hashes.sha256}`);
  lines.push(`  tokenizer     ${r.tokenizer.found ? r.tokenizer.source : `not found (${(r.tokenizer.problem ?? '').split('\n')[0]})`}`);
  if (r.model) lines.push(`  dbt model     ${r.model.name}, ${r.model.dtype}, scheduler ${r.model.scheduler}, from ${r.model.source.kind === 'file' ? r.model.source.path : `random ${r.model.source.arch} seed ${r.model.source.seed}`}`);
  const meta = Object.entries(r.metadata);
  if (meta.length) {
    lines.push('  metadata');
    for (const [k, v] of meta) lines.push(`    ${k}: ${v.length > 100 ? `${v.slice(0, 100)}…` : v}`);
  }
  if (r.pickle) {
    lines.push(`  pickle        top-level keys: ${r.pickle.top_level_keys.join(', ') || '(none)'}`);
    if (r.pickle.unknown_globals.length) lines.push(`  SUSPICIOUS    the pickle references code dbt did not run: ${r.pickle.unknown_globals.join(', ')}`);
  }
  for (const n of r.notes) lines.push(`  note          ${n}`);
  if (r.scan) {
    if (!r.scan.nan.length && !r.scan.inf.length) lines.push(`  scan          ${r.scan.tensors} float tensors: no NaN or Inf`);
    if (r.scan.nan.length) lines.push(`  NaN           in ${r.scan.nan.length} tensors: ${r.scan.nan.slice(0, 5).join(', ')}${r.scan.nan.length > 5 ? ', …' : ''}`);
    if (r.scan.inf.length) lines.push(`  Inf           in ${r.scan.inf.length} tensors: ${r.scan.inf.slice(0, 5).join(', ')}${r.scan.inf.length > 5 ? ', …' : ''}`);
  }
  return lines.join('\n');
}
