import { ConfigError } from '../errors.js';
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
