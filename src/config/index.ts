/**
 * The run spec: one YAML file drives prep, create, train and sample.
 *
 *   loadRunSpec(file, sets?, { cwd?, presetDir?, machineWarnings? }) → LoadedRunSpec   (synchronous)
 *       { spec: RunSpec, file, preset, warnings: ConfigIssue[], runDir }
 *     Resolution: schema defaults < presets/<preset>.yaml < the file < `--set key.path=value` (in order).
 *     The returned spec has every key (typed by RunSpec from types.generated.ts), `x-follows` keys filled
 *     in (prep.size ← resolution, preview/sample prompts ← the concepts' instance prompts, samplers ←
 *     model.scheduler, sample.seeds ← seed..seed+count-1, train_text_encoder.lr ← lr, preview.every ←
 *     save_every), every path absolute (relative paths in the file start at the file's folder; `--set`
 *     and defaults at cwd; a plain model.name becomes <cwd>/models/<name>), and output.name rendered from
 *     its template. Throws ConfigError (exit 2) listing every problem at once — YAML syntax, schema
 *     (unknown keys and enum values with "did you mean"), cross-field rules, bad `--set` — each with
 *     file:line:column or the `--set` argument, the key path and a hint.
 *   resolveRunSpecText(text, file, sets?, opts?) → the same for text already read (file names it).
 *   parseSets(["lr=2e-6", "ema.enabled=true"]) → { sets, issues }; values are read as YAML. A set may also
 *   be { arg: "device=cuda", where: "--device cuda" } (an option that stands for a --set, named so in messages).
 *   machineWarnings(spec) adds warnings about this machine (a CUDA device it lacks), located like the rest.
 *   runSpecSchema: the JSON Schema (draft-07; `dbt config schema` prints it); enum lists SAMPLERS,
 *   OPTIMIZERS, LR_SCHEDULERS, … for flags that must accept the same values as the spec.
 *   formatPath / parsePath: `concepts[0].instance_prompt` ⇄ ['concepts', 0, 'instance_prompt'].
 *   toYaml(spec): the resolved spec as YAML (what runs/<name>/run.yaml holds and `dbt config show` prints).
 */
export { loadRunSpec, resolveRunSpecText, type LoadedRunSpec, type LoadOptions } from './load.js';
export { parseSets, applySet, type SetArg, type SetOverride } from './set.js';
export { formatPath, parsePath, type KeyPath } from './keypath.js';
export { formatNumber, isPlainModelName } from './resolve.js';
export { closest } from './suggest.js';
export { PRESET_DIR, presetFile, type PresetName } from './presets.js';
export { toYaml } from './yaml-out.js';
export {
  runSpecSchema,
  PRESETS,
  ARCHS,
  SAMPLERS,
  LR_SCHEDULERS,
  OPTIMIZERS,
  MIXED_PRECISIONS,
  SAVE_PRECISIONS,
  ATTENTIONS,
  CAPTION_SOURCES,
  PREP_FITS,
  DEVICES,
  MAX_SEED,
  type JsonSchema,
} from './schema.js';
export type * from './types.generated.js';

import type { ARCHS, ATTENTIONS, CAPTION_SOURCES, LR_SCHEDULERS, MIXED_PRECISIONS, OPTIMIZERS, PREP_FITS, SAMPLERS, SAVE_PRECISIONS } from './schema.js';
export type Sampler = (typeof SAMPLERS)[number];
export type ArchName = (typeof ARCHS)[number];
export type LrScheduler = (typeof LR_SCHEDULERS)[number];
export type OptimizerName = (typeof OPTIMIZERS)[number];
export type MixedPrecision = (typeof MIXED_PRECISIONS)[number];
export type SavePrecision = (typeof SAVE_PRECISIONS)[number];
export type AttentionKind = (typeof ATTENTIONS)[number];
export type CaptionSource = (typeof CAPTION_SOURCES)[number];
export type PrepFit = (typeof PREP_FITS)[number];
