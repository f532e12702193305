/**
 * `prepImages`: a folder of raw images → square, clean, captioned training images plus prep.json.
 * Sources are only ever read. Every output is written to a temporary name and renamed; an interrupted run
 * keeps what it finished (in the manifest) and leaves no partial files.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DbtError, InterruptedError, UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { composeCaption, readOwnCaption } from './captions.js';
import { boxInOutput, classifyFraming, computeFrame, maskBox, scaleBox, type Rect } from './geometry.js';
import { alphaMask, diagnoseDecodeFailure, encodePng, ImageError, phashOf, probeImage, renderFrame, segmentationInput, thresholdMask, type Mask } from './image.js';
import {
  MANIFEST_VERSION,
  readManifest,
  writeManifest,
  type Manifest,
  type ManifestEntry,
  type OutputOptions,
  type PrepWarning,
  type SubjectInfo,
} from './manifest.js';
import { colourHex, validatePrepOptions, type Fit, type PrepOptions } from './options.js';
import { findNearDuplicates, groupNearDuplicates, type NearDuplicate } from './phash.js';
import { resolveSegModel, Segmenter, sha256File } from './segment.js';
import { assignOutputNames, collectSources, hasImageExtension } from './sources.js';

/** Bump when the same options would now give different pixels: every entry is then redone once. */
export const PIPELINE_VERSION = 1;

export type PrepStatus = 'processed' | 'skipped' | 'failed' | 'ignored';

export interface PrepEvent {
  source: string;
  status: PrepStatus;
  output?: string;
  reason?: string;
  warnings: PrepWarning[];
  done: number;
  total: number;
}

export interface PrepHooks {
  /** Abort (Ctrl-C): in-flight images finish or are discarded, nothing partial is left, InterruptedError. */
  signal?: AbortSignal;
  /** Environment for DBT_SEG_MODEL and the default model location (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Paths in the report are relative to this folder (default: process.cwd()). */
  cwd?: string;
  onStart?(info: { total: number; out: string }): void;
  onImage?(event: PrepEvent): void;
}

export interface PrepImageResult {
  source: string;
  output: string;
  caption: string | null;
  status: 'processed' | 'skipped';
  width: number;
  height: number;
  fit: Fit;
  subject: SubjectInfo | null;
  warnings: PrepWarning[];
}

export interface PrepReport {
  ok: boolean;
  out: string;
  manifest: string;
  counts: { sources: number; processed: number; skipped: number; failed: number; ignored: number };
  images: PrepImageResult[];
  failures: { source: string; reason: string }[];
  ignored: { source: string; reason: string }[];
  /** Every warning: per image, near-duplicates, stale outputs. */
  warnings: PrepWarning[];
  nearDuplicates: NearDuplicate[];
  /** Subject framing mix over the images where a mask (transparency or segmentation) was available. */
  framing: { fullBody: number; bustUp: number; withoutMask: number } | null;
  seconds: number;
  /** Processed (not skipped) images per second of wall time. */
  imagesPerSecond: number;
}

const TMP_PREFIX = '.dbt-tmp-';
/** Write errors that concern the output folder, not one image. */
const OUTPUT_FULL = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function toPosix(p: string): string {
  return p.split(sep).join('/');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temporary files left by a run that crashed (its process is gone). */
async function removeOrphanTemporaries(out: string): Promise<void> {
  for (const name of await readdir(out)) {
    const m = /^\.dbt-tmp-(\d+)-/.exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await unlink(join(out, name)).catch(() => undefined);
  }
}

async function fileSha256(path: string): Promise<string | null> {
  try {
    return sha256(await readFile(path));
  } catch {
    return null;
  }
}

type Outcome =
  | { status: 'processed' | 'skipped'; entry: ManifestEntry; result: PrepImageResult }
  | { status: 'failed' | 'ignored'; reason: string }
  | { status: 'aborted' };

export async function prepImages(options: PrepOptions, hooks: PrepHooks = {}): Promise<PrepReport> {
  const started = performance.now();
  validatePrepOptions(options);
  const cwd = hooks.cwd ?? process.cwd();
  const out = resolve(cwd, options.out);
  // Paths under the working folder are shown relative to it, others absolute.
  const display = (abs: string) => {
    const rel = relative(cwd, abs);
    return toPosix(rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs);
  };
  const sources = await collectSources(
    options.inputs.map((i) => resolve(cwd, i)),
    out,
    options.recursive,
  );
  if ((await stat(out).catch(() => null))?.isDirectory() === false) throw new UsageError(`--out ${options.out} is a file; give a folder for the prepared images`);
  await mkdir(out, { recursive: true });
  await removeOrphanTemporaries(out);

  const runWarnings: PrepWarning[] = [];
  const { manifest: previous, problem } = await readManifest(out);
  if (problem) runWarnings.push({ code: 'manifest-unreadable', message: `${join(out, 'prep.json')}: ${problem}; every source is processed again` });
  const manifestKey = (abs: string) => toPosix(relative(out, abs));
  const currentKeys = new Set(sources.map(manifestKey));
  const previousBySource = new Map((previous?.images ?? []).map((e) => [e.source, e]));
  const stale = (previous?.images ?? []).filter((e) => !currentKeys.has(e.source));
  const names = assignOutputNames(
    sources,
    new Map(sources.flatMap((s) => (previousBySource.has(manifestKey(s)) ? [[s, previousBySource.get(manifestKey(s))!.output] as [string, string]] : []))),
    stale.map((e) => e.output),
  );

  let segmenter: Segmenter | null = null;
  let segModelSha256: string | null = null;
  if (options.whiteBg) {
    const path = resolveSegModel(options.segModel, hooks.env ?? process.env);
    segModelSha256 = await sha256File(path);
    const threads = Math.max(1, Math.floor(availableParallelism() / options.concurrency));
    segmenter = await Segmenter.open(path, threads);
  }
  const outputOptions: OutputOptions = {
    pipeline: PIPELINE_VERSION,
    size: options.size,
    fit: options.fit,
    bg: colourHex(options.bg),
    whiteBg: options.whiteBg,
    segModelSha256,
    maskThreshold: options.maskThreshold ?? null,
    maskFeather: options.maskFeather,
    keepAlpha: options.keepAlpha,
    margin: options.fit === 'subject' ? options.margin : 0,
  };

  // Our own abort: the caller's signal, or a fatal error (e.g. a broken model) that must stop every worker.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  hooks.signal?.addEventListener('abort', onAbort);
  if (hooks.signal?.aborted) stop.abort();
  const temporaries = new Set<string>();
  let tmpCounter = 0;

  async function writeAtomically(path: string, data: Buffer | string): Promise<string> {
    const tmp = join(out, `${TMP_PREFIX}${process.pid}-${tmpCounter++}-${relative(out, path)}`);
    temporaries.add(tmp);
    await writeFile(tmp, data);
    return tmp;
  }

  async function discard(tmps: string[]): Promise<void> {
    for (const t of tmps) {
      await unlink(t).catch(() => undefined);
      temporaries.delete(t);
    }
  }

  async function processOne(file: string): Promise<Outcome> {
    if (stop.signal.aborted) return { status: 'aborted' };
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ImageError(`cannot read the file (${e.code ?? e.message})`);
    }
    try {
      return await processBuffer(file, buf);
    } catch (err) {
      if (err instanceof ImageError && err.unexplained) throw await diagnoseDecodeFailure(buf, options.maxPixels);
      throw err;
    }
  }

  async function processBuffer(file: string, buf: Buffer): Promise<Outcome> {
    const source = display(file);
    const key = manifestKey(file);
    const output = names.get(file)!;
    const captionName = output.replace(/\.png$/, '.txt');
    const sourceSha256 = sha256(buf);
    const own = await readOwnCaption(file);
    const captionText = composeCaption(own?.text ?? null, options);
    const entryKey = sha256(JSON.stringify({ outputOptions, captionText })).slice(0, 32);
    const prev = previousBySource.get(key);

    if (!options.force && prev && prev.sourceSha256 === sourceSha256 && prev.key === entryKey && prev.output === output) {
      const outputOk = (await fileSha256(join(out, output))) === prev.outputSha256;
      const captionOk = prev.caption === null || (await fileSha256(join(out, prev.caption))) === prev.captionSha256;
      if (outputOk && captionOk) {
        return { status: 'skipped', entry: prev, result: resultOf(prev, source, 'skipped') };
      }
    }

    const info = await probeImage(buf, options.maxPixels);
    const warnings: PrepWarning[] = [];
    const warn = (code: PrepWarning['code'], message: string) => warnings.push({ code, message, source });
    if (info.pages > 1) warn('animated', `${info.format} with ${info.pages} frames: the first frame was used`);

    let mask: Mask | null = null;
    let maskFrom: SubjectInfo['from'] | null = null;
    if (info.hasAlpha) {
      mask = await alphaMask(buf, options.maxPixels);
      if (mask) maskFrom = 'alpha';
    }
    if (!mask && segmenter) {
      const input = await segmentationInput(buf, options.maxPixels);
      mask = { data: await segmenter.mask(input.data, input.width, input.height), width: input.width, height: input.height };
      if (options.maskThreshold !== undefined) mask = thresholdMask(mask, options.maskThreshold);
      maskFrom = 'segmentation';
    }
    const found = mask ? maskBox(mask.data, mask.width, mask.height) : null;
    const subjectBox: Rect | null = mask && found ? scaleBox(found, mask.width, mask.height, info.width, info.height) : null;

    let fit = options.fit;
    if (fit === 'subject' && !subjectBox) {
      if (mask) warn('no-subject', 'no subject found in the mask; framed with pad instead');
      else warn('subject-needs-mask', 'subject framing needs transparency or --white-bg; framed with pad instead');
      fit = 'pad';
    }
    const frame = computeFrame(fit, info.width, info.height, options.size, subjectBox, options.margin);
    if (Math.max(info.width, info.height) < options.size) {
      warn('small-source', `source is only ${info.width}×${info.height}, smaller than the ${options.size}×${options.size} output`);
    }
    if (frame.scale > 2) warn('upscaled', `upscaled ${frame.scale.toFixed(1)}× (from ${frame.crop.width}×${frame.crop.height}); the output will look soft`);

    const pixels = await renderFrame({
      buf,
      info,
      frame,
      bg: options.bg,
      keepAlpha: options.keepAlpha,
      alpha: maskFrom === 'segmentation' ? 'mask' : maskFrom === 'alpha' ? 'image' : 'none',
      mask: mask ?? undefined,
      feather: options.maskFeather,
      maxPixels: options.maxPixels,
    });
    const [png, phash] = await Promise.all([encodePng(pixels), phashOf(pixels, options.bg)]);

    let subject: SubjectInfo | null = null;
    if (subjectBox && maskFrom) {
      const box = boxInOutput(subjectBox, frame);
      subject = { from: maskFrom, box, fraction: (box.width * box.height) / (options.size * options.size), framing: classifyFraming(subjectBox, info.height) };
    }

    if (stop.signal.aborted) return { status: 'aborted' };
    const tmps: string[] = [];
    try {
      tmps.push(await writeAtomically(join(out, output), png));
      if (captionText !== null) tmps.push(await writeAtomically(join(out, captionName), `${captionText}\n`));
      if (stop.signal.aborted) {
        await discard(tmps);
        return { status: 'aborted' };
      }
      await rename(tmps[0], join(out, output));
      temporaries.delete(tmps[0]);
      if (captionText !== null) {
        await rename(tmps[1], join(out, captionName));
        temporaries.delete(tmps[1]);
      } else if (prev?.caption) {
        await unlink(join(out, prev.caption)).catch(() => undefined); // ours, from an earlier run
      }
    } catch (err) {
      await discard(tmps);
      throw err;
    }

    const entry: ManifestEntry = {
      source: key,
      sourceSha256,
      sourceImage: info,
      output,
      outputSha256: sha256(png),
      caption: captionText !== null ? captionName : null,
      captionSha256: captionText !== null ? sha256(`${captionText}\n`) : null,
      key: entryKey,
      options: outputOptions,
      frame: { fit: frame.fit, crop: frame.crop, target: frame.target, place: frame.place, scale: frame.scale },
      subject,
      phash,
      warnings,
    };
    return { status: 'processed', entry, result: resultOf(entry, source, 'processed') };
  }

  function resultOf(e: ManifestEntry, source: string, status: 'processed' | 'skipped'): PrepImageResult {
    const warnings = e.warnings.map((w) => ({ ...w, source }));
    if (e.subject && e.subject.fraction < options.minSubjectFraction) {
      warnings.push({
        code: 'small-subject',
        message: `the subject's box covers only ${Math.round(e.subject.fraction * 100)}% of the frame (--min-subject-fraction ${options.minSubjectFraction})`,
        source,
      });
    }
    return {
      source,
      output: display(join(out, e.output)),
      caption: e.caption ? display(join(out, e.caption)) : null,
      status,
      width: e.sourceImage.width,
      height: e.sourceImage.height,
      fit: e.frame.fit,
      subject: e.subject,
      warnings,
    };
  }

  const outcomes: Outcome[] = new Array(sources.length);
  let next = 0;
  let done = 0;
  let fatal: unknown = null;
  hooks.onStart?.({ total: sources.length, out });
  const worker = async () => {
    while (!stop.signal.aborted && next < sources.length) {
      const i = next++;
      const file = sources[i];
      let outcome: Outcome;
      try {
        outcome = await processOne(file);
      } catch (err) {
        if (err instanceof ImageError) {
          if (!err.notAnImage) outcome = { status: 'failed', reason: err.message };
          else if (!hasImageExtension(file)) outcome = { status: 'ignored', reason: 'not an image' };
          else outcome = { status: 'failed', reason: `not an image: its content is no image format dbt reads, despite the ${extname(file)} name` };
        } else if (err instanceof DbtError) {
          fatal ??= err; // the model or the output folder, not this image: stop everything
          stop.abort();
          outcome = { status: 'aborted' };
        } else if (OUTPUT_FULL.has((err as NodeJS.ErrnoException).code ?? '')) {
          // Every further image would fail the same way: stop, keep what is finished.
          const code = (err as NodeJS.ErrnoException).code;
          fatal ??= new DbtError(`cannot write to ${display(out)}: ${code === 'EROFS' ? 'the file system is read-only' : 'the disk is full'} (${code}); the images finished so far are recorded in its prep.json, the same command continues once there is room`);
          stop.abort();
          outcome = { status: 'aborted' };
        } else {
          const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
          outcome = { status: 'failed', reason: `unexpected error: ${msg}` };
        }
      }
      outcomes[i] = outcome;
      if (outcome.status !== 'aborted') {
        done++;
        hooks.onImage?.({
          source: display(file),
          status: outcome.status,
          output: 'entry' in outcome ? display(join(out, outcome.entry.output)) : undefined,
          reason: 'reason' in outcome ? outcome.reason : undefined,
          warnings: 'result' in outcome ? outcome.result.warnings : [],
          done,
          total: sources.length,
        });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, Math.max(1, sources.length)) }, worker));
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    await discard([...temporaries]);
    await segmenter?.close();
  }

  // The manifest: entries of sources not in this run are kept (their files are still there), failed and
  // ignored sources lose theirs, finished ones are replaced. Unfinished (aborted) sources keep the old entry.
  const entries = new Map<string, ManifestEntry>(stale.map((e) => [e.source, e]));
  sources.forEach((file, i) => {
    const o = outcomes[i];
    const key = manifestKey(file);
    if (!o || o.status === 'aborted') {
      const prev = previousBySource.get(key);
      if (prev) entries.set(key, prev);
    } else if (o.status === 'processed' || o.status === 'skipped') {
      entries.set(key, o.entry);
    }
  });
  const manifest: Manifest = { format: 'dbt-prep', version: MANIFEST_VERSION, tool: `dbt ${VERSION}`, images: [...entries.values()] };
  const manifestPath = await writeManifest(out, manifest);
  if (fatal) throw fatal;
  if (stop.signal.aborted) {
    throw new InterruptedError(
      `interrupted: ${done} of ${sources.length} sources were finished and recorded in ${display(manifestPath)}; run the same command again to do the rest`,
    );
  }

  const images: PrepImageResult[] = [];
  const failures: PrepReport['failures'] = [];
  const ignored: PrepReport['ignored'] = [];
  sources.forEach((file, i) => {
    const o = outcomes[i];
    if (o.status === 'processed' || o.status === 'skipped') images.push(o.result);
    else if (o.status === 'failed') failures.push({ source: display(file), reason: o.reason });
    else if (o.status === 'ignored') ignored.push({ source: display(file), reason: o.reason });
  });
  const warnings: PrepWarning[] = images.flatMap((r) => r.warnings);
  for (const ig of ignored) warnings.push({ code: 'not-an-image', message: 'not an image; skipped', source: ig.source });
  const phashes = sources.flatMap((file, i) => {
    const o = outcomes[i];
    return o.status === 'processed' || o.status === 'skipped' ? [{ id: display(file), phash: o.entry.phash }] : [];
  });
  const nearDuplicates = findNearDuplicates(phashes);
  for (const group of groupNearDuplicates(nearDuplicates)) {
    const [first, ...others] = group.members;
    const listed = others.length > 8 ? `${others.slice(0, 8).join(', ')} and ${others.length - 8} more` : others.join(', ');
    warnings.push({ code: 'near-duplicate', message: `looks almost the same as ${listed} (pHash distance ≤ ${group.maxDistance} of 64)`, source: first });
  }
  if (stale.length) {
    warnings.push({
      code: 'stale',
      message: `${stale.length} output(s) in ${display(out)} come from sources not in this run and were kept: ${stale
        .slice(0, 5)
        .map((e) => e.output)
        .join(', ')}${stale.length > 5 ? ', …' : ''}`,
    });
  }
  warnings.push(...runWarnings);
  const withSubject = images.filter((r) => r.subject);
  const framing = withSubject.length
    ? {
        fullBody: withSubject.filter((r) => r.subject!.framing === 'full-body').length,
        bustUp: withSubject.filter((r) => r.subject!.framing === 'bust-up').length,
        withoutMask: images.length - withSubject.length,
      }
    : null;
  const seconds = (performance.now() - started) / 1000;
  const processed = images.filter((r) => r.status === 'processed').length;
  return {
    ok: failures.length === 0,
    out: display(out),
    manifest: display(manifestPath),
    counts: { sources: sources.length, processed, skipped: images.length - processed, failed: failures.length, ignored: ignored.length },
    images,
    failures,
    ignored,
    warnings,
    nearDuplicates,
    framing,
    seconds,
    imagesPerSecond: processed / seconds,
  };
}
