import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { allKeyPaths, formatPath, isPlainObject, type KeyPath } from './keypath.js';
import { isPresetName, loadPreset, PRESET_DIR, type PresetName } from './presets.js';
import { applyDefaults, applyFollows, orderBySchema, renderName, resolvePaths } from './resolve.js';
import { crossFieldIssues } from './rules.js';
import { runSpecSchema } from './schema.js';
import { applySet, parseSets, type SetArg, type SetOverride } from './set.js';
import type { RunSpec } from './types.generated.js';
import { schemaIssues, type PathIssue } from './validate.js';
import { locate, parseYaml, type YamlSource } from './yaml-source.js';

export interface LoadOptions {
  /** Folder that `--set` paths, defaults and `models/<name>` are relative to (default: process.cwd()). */
  cwd?: string;
  /** Folder of the preset files (default: the package's presets/). */
  presetDir?: string;
  /**
   * Checks of the resolved spec against this machine (e.g. a CUDA device it lacks): warnings, located and
   * reported with the spec's own.
   */
  machineWarnings?: (spec: RunSpec) => PathIssue[];
}

export interface LoadedRunSpec {
  /** The resolved spec: every key present, `x-follows` keys filled, paths absolute, output.name rendered. */
  spec: RunSpec;
  /** Absolute path of the spec file. */
  file: string;
  preset: PresetName | null;
  /** Problems that do not stop a run (e.g. an option that has no effect), located like errors. */
  warnings: ConfigIssue[];
  /** Where the run is written: `<output.dir>/<output.name>`. */
  runDir: string;
}

/** Where each value came from, to point at the right line (or `--set`) in messages. */
interface Origins {
  file: YamlSource;
  preset?: YamlSource;
  sets: SetOverride[];
}

const startsWith = (path: KeyPath, prefix: KeyPath) => prefix.length <= path.length && prefix.every((s, i) => path[i] === s);

function origin(o: Origins, path: KeyPath): 'set' | 'file' | 'preset' | 'default' {
  if (o.sets.some((s) => startsWith(path, s.path))) return 'set';
  if (locate(o.file, path)?.exact) return 'file';
  if (o.preset && locate(o.preset, path)?.exact) return 'preset';
  return 'default';
}

/** Turns a key-path issue into a located one: the `--set` that wrote it, or file:line:column. */
function place(o: Origins, issue: PathIssue): ConfigIssue {
  const base = { path: formatPath(issue.path), message: issue.message, hint: issue.hint };
  const set = [...o.sets].reverse().find((s) => startsWith(issue.path, s.path));
  if (set) return { ...base, file: set.where };
  for (const src of [o.file, o.preset]) {
    const pos = src && locate(src, issue.path, { key: issue.atKey });
    if (pos?.exact && pos.depth > 0) return { ...base, file: src!.file, line: pos.line, column: pos.column };
  }
  const below = o.sets.find((s) => startsWith(s.path, issue.path) && s.path.length > issue.path.length);
  if (below) return { ...base, file: below.where };
  // Absent from every source: point at the nearest enclosing mapping, or at the file as a whole.
  const pos = locate(o.file, issue.path);
  return pos && pos.depth > 0 ? { ...base, file: o.file.file, line: pos.line, column: pos.column } : { ...base, file: o.file.file };
}

function fail(file: string, issues: ConfigIssue[]): never {
  const n = issues.length;
  throw new ConfigError(`${file}: ${n} problem${n === 1 ? '' : 's'} in the run spec`, issues);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : structuredClone(v);
    return out;
  }
  return structuredClone(over);
}

/** Reads, merges, validates and resolves a run spec file. Throws a ConfigError listing every problem. */
export function loadRunSpec(file: string, sets: readonly (string | SetArg)[] = [], opts: LoadOptions = {}): LoadedRunSpec {
  const abs = resolve(opts.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a YAML file' : (err as Error).message;
    throw new ConfigError(`cannot read run spec ${file}: ${why}`);
  }
  // A model or image passed by mistake would otherwise be reported as thousands of YAML syntax errors.
  if (text.includes('\u0000')) throw new ConfigError(`${file} is not a run spec: it holds binary data, not YAML text`, [{ file, message: 'give the YAML run spec (e.g. run.yaml); see docs/run-spec.md' }]);
  return resolveRunSpecText(text, file, sets, opts);
}

/** As loadRunSpec, with the file's text given (`file` names it in messages and anchors relative paths). */
export function resolveRunSpecText(text: string, file: string, setArgs: readonly (string | SetArg)[] = [], opts: LoadOptions = {}): LoadedRunSpec {
  const cwd = opts.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  const parsed = parseYaml(file, text);
  const { sets, issues: setIssues } = parseSets(setArgs);
  if (parsed.issues.length) fail(file, [...parsed.issues, ...setIssues]);
  const issues: ConfigIssue[] = [...setIssues];

  const fileValue = parsed.source.value ?? {};
  if (!isPlainObject(fileValue)) {
    fail(file, [{ file, line: 1, column: 1, message: 'a run spec is a YAML mapping (key: value lines)', hint: 'see docs/run-spec.md' }, ...setIssues]);
  }

  const presetSet = [...sets].reverse().find((s) => s.path.length === 1 && s.path[0] === 'preset');
  const presetValue = presetSet ? presetSet.value : (fileValue as Record<string, unknown>).preset;
  let preset: PresetName | null = null;
  let presetSource: YamlSource | undefined;
  if (isPresetName(presetValue)) {
    const loaded = loadPreset(presetValue, opts.presetDir ?? PRESET_DIR);
    issues.push(...loaded.issues);
    if (loaded.source && !loaded.issues.length) [preset, presetSource] = [presetValue, loaded.source];
  }
  const origins: Origins = { file: parsed.source, preset: presetSource, sets };

  const merged = deepMerge(presetSource?.value ?? {}, fileValue) as Record<string, unknown>;
  for (const set of sets) {
    const problem = applySet(merged, set);
    if (problem) issues.push(problem);
  }
  applyDefaults(runSpecSchema, merged);

  const pathIssues = schemaIssues(merged);
  const cross = crossFieldIssues(merged);
  pathIssues.push(...cross.errors);

  const specName = basename(file, extname(file));
  const output = merged.output;
  let runName: string | undefined;
  if (isPlainObject(output) && typeof output.name === 'string' && output.name !== '') {
    const keys = allKeyPaths(runSpecSchema).filter((k) => !k.includes('[]'));
    const r = renderName(output.name, merged, specName, keys);
    if ('name' in r) runName = r.name;
    else pathIssues.push({ path: ['output', 'name'], message: r.message, hint: r.hint });
  }

  issues.push(...pathIssues.map((i) => place(origins, i)));
  if (issues.length) fail(file, sortIssues(issues, file));

  const spec = orderBySchema(runSpecSchema, merged) as Record<string, unknown>;
  applyFollows(runSpecSchema, spec);
  (spec.output as Record<string, unknown>).name = runName;
  const specDir = dirname(abs);
  resolvePaths(runSpecSchema, spec, (p) => (origin(origins, p) === 'file' ? specDir : cwd), cwd);
  const typed = spec as unknown as RunSpec;
  return {
    spec: typed,
    file: abs,
    preset,
    warnings: sortIssues([...cross.warnings, ...(opts.machineWarnings?.(typed) ?? [])].map((w) => place(origins, w)), file),
    runDir: resolve(typed.output.dir, typed.output.name),
  };
}

/** The file's issues in line order first, then `--set` and preset ones in the order found. */
function sortIssues(issues: ConfigIssue[], file: string): ConfigIssue[] {
  const rank = (i: ConfigIssue) => (i.file === file ? 0 : i.file?.startsWith('--set') ? 1 : 2);
  return issues
    .map((issue, n) => ({ issue, n }))
    .sort((a, b) => rank(a.issue) - rank(b.issue) || (a.issue.line ?? 0) - (b.issue.line ?? 0) || (a.issue.column ?? 0) - (b.issue.column ?? 0) || a.n - b.n)
    .map((x) => x.issue);
}

