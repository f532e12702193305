import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Frame, Framing, Rect } from './geometry.js';

export const MANIFEST_NAME = 'prep.json';
export const MANIFEST_VERSION = 1;

/** The options that change an output; part of every entry so an edited option redoes the image. */
export interface OutputOptions {
  /** Bumped when the pipeline's output changes for the same options. */
  pipeline: number;
  size: number;
  fit: string;
  bg: string;
  whiteBg: boolean;
  /** sha256 of the segmentation model, when --white-bg is on. */
  segModelSha256: string | null;
  maskThreshold: number | null;
  maskFeather: number;
  keepAlpha: boolean;
  margin: number;
}

export type PrepWarningCode =
  | 'small-source'
  | 'upscaled'
  | 'animated'
  | 'no-subject'
  | 'subject-needs-mask'
  | 'small-subject'
  | 'near-duplicate'
  | 'not-an-image'
  | 'stale'
  | 'manifest-unreadable';

export interface PrepWarning {
  code: PrepWarningCode;
  message: string;
  /** The source (as the user named it) the warning is about, when it is about one. */
  source?: string;
}

export interface SubjectInfo {
  /** Where the subject mask came from. */
  from: 'alpha' | 'segmentation';
  /** The subject's box in the output square. */
  box: Rect;
  /** Area of `box` over the area of the output square. */
  fraction: number;
  framing: Framing;
}

export interface ManifestEntry {
  /** The source, relative to the output folder, '/'-separated. */
  source: string;
  sourceSha256: string;
  sourceImage: { format: string; width: number; height: number; orientation: number; pages: number; hasAlpha: boolean; space: string; depth: string };
  /** Output image file name inside the output folder. */
  output: string;
  outputSha256: string;
  caption: string | null;
  captionSha256: string | null;
  /** Hash of the options and the caption text: with an unchanged source hash, the entry is up to date. */
  key: string;
  options: OutputOptions;
  frame: Pick<Frame, 'fit' | 'crop' | 'target' | 'place' | 'scale'>;
  subject: SubjectInfo | null;
  phash: string;
  /** Warnings about this image that do not depend on other images or report settings. */
  warnings: PrepWarning[];
}

export interface Manifest {
  format: 'dbt-prep';
  version: number;
  tool: string;
  images: ManifestEntry[];
}

/** The manifest in `dir`, or null when there is none; a problem string when it cannot be used. */
export async function readManifest(dir: string): Promise<{ manifest: Manifest | null; problem?: string }> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_NAME), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { manifest: null };
    throw err;
  }
  try {
    const m = JSON.parse(text) as Manifest;
    if (m.format !== 'dbt-prep' || !Array.isArray(m.images)) return { manifest: null, problem: 'not a dbt prep manifest' };
    if (m.version !== MANIFEST_VERSION) return { manifest: null, problem: `manifest version ${m.version}, this dbt writes ${MANIFEST_VERSION}` };
    return { manifest: m };
  } catch (err) {
    return { manifest: null, problem: `invalid JSON (${(err as Error).message})` };
  }
}

/**
 * Written to a temporary name and renamed, so a crash leaves the previous manifest. Not rewritten when
 * nothing changed (a run that skipped everything leaves the output folder exactly as it was).
 */
export async function writeManifest(dir: string, m: Manifest): Promise<string> {
  const path = join(dir, MANIFEST_NAME);
  const tmp = join(dir, `.dbt-tmp-${process.pid}-${MANIFEST_NAME}`);
  m.images.sort((a, b) => (a.output < b.output ? -1 : a.output > b.output ? 1 : 0));
  const text = `${JSON.stringify(m, null, 2)}\n`;
  if ((await readFile(path, 'utf8').catch(() => null)) === text) return path;
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return path;
}
