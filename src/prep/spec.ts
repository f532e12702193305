import { existsSync } from 'node:fs';
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { LoadedRunSpec } from '../config/index.js';
import { parseColour, type PrepOptions } from './options.js';

/** One `prepImages` call of `dbt prep run.yaml`: a concept's raw_dir into its instance_dir. */
export interface PrepJob {
  /** Index in `concepts`. */
  concept: number;
  instancePrompt: string;
  options: PrepOptions;
}

/**
 * The jobs a run spec asks for: every concept with a `raw_dir`, with the spec's `prep` options (paths are
 * already absolute in a loaded spec). Concepts without `raw_dir` are listed in `without` (nothing to do).
 */
export function prepJobsFromSpec(loaded: LoadedRunSpec, concurrency: number): { jobs: PrepJob[]; without: number[] } {
  const { spec } = loaded;
  const p = spec.prep;
  let bg: PrepOptions['bg'];
  try {
    bg = parseColour(p.bg, 'prep.bg');
  } catch (err) {
    throw new ConfigError(`${loaded.file}: prep.bg is not a colour`, [
      { file: loaded.file, path: 'prep.bg', message: (err as Error).message, hint: 'a name (white, black, gray…), #rrggbb, #rgb or r,g,b' },
    ]);
  }
  const jobs: PrepJob[] = [];
  const without: number[] = [];
  spec.concepts.forEach((c, i) => {
    if (!c.raw_dir) {
      without.push(i);
      return;
    }
    jobs.push({
      concept: i,
      instancePrompt: c.instance_prompt,
      options: {
        inputs: [c.raw_dir],
        out: c.instance_dir,
        size: p.size,
        fit: p.fit,
        bg,
        whiteBg: p.white_bg,
        segModel: p.seg_model ?? undefined,
        maskThreshold: p.mask_threshold ?? undefined,
        maskFeather: p.mask_feather,
        keepAlpha: p.keep_alpha,
        margin: p.margin,
        caption: p.caption ?? undefined,
        captionPrefix: p.caption_prefix ?? undefined,
        recursive: p.recursive,
        maxPixels: p.max_pixels,
        force: p.force,
        minSubjectFraction: p.min_subject_fraction,
        concurrency,
      },
    });
  });
  if (!jobs.length) {
    throw new ConfigError(`${loaded.file}: nothing to prepare: no concept has a raw_dir`, [
      { file: loaded.file, path: 'concepts[0].raw_dir', message: 'give each concept whose images need preparing a raw_dir (its raw images; they are prepared into instance_dir)' },
    ]);
  }
  return { jobs, without };
}

/**
 * Every job's raw_dir must exist before any concept is prepared: finding a missing one only after the
 * first concepts were done would end the run with their reports unseen. All missing folders are listed.
 */
export function checkRawDirs(loaded: LoadedRunSpec, jobs: PrepJob[]): void {
  const issues: ConfigIssue[] = jobs
    .filter((j) => !existsSync(j.options.inputs[0]))
    .map((j) => ({ file: loaded.file, path: `concepts[${j.concept}].raw_dir`, message: `${j.options.inputs[0]} does not exist`, hint: 'the folder of raw images to prepare into instance_dir' }));
  if (issues.length) throw new ConfigError(`${loaded.file}: ${issues.length === 1 ? 'a raw_dir does' : `${issues.length} raw_dirs do`} not exist; nothing was prepared`, issues);
}
