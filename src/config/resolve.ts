import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { getAt, isPlainObject, parsePath, type KeyPath } from './keypath.js';
import type { JsonSchema } from './schema.js';
import { closest } from './suggest.js';

/**
 * Fills schema defaults into `value` in place: missing keys with a default get a copy of it, missing
 * optional mappings are created (so every key of a resolved spec is present). Values of the wrong type are left
 * alone for the validator to report.
 */
export function applyDefaults(schema: JsonSchema, value: unknown): void {
  if (isPlainObject(value) && schema.properties) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      if (value[key] === undefined) {
        if (sub.default !== undefined) value[key] = structuredClone(sub.default);
        else if (sub.properties && !schema.required?.includes(key)) value[key] = {};
      }
      applyDefaults(sub, value[key]);
    }
  } else if (Array.isArray(value) && schema.items) {
    for (const item of value) applyDefaults(schema.items, item);
  }
}

const stripFilewords = (prompt: string) =>
  prompt
    .replace(/\s*,?\s*\[filewords\]\s*,?/g, ',')
    .replace(/^[\s,]+|[\s,]+$/g, '')
    .replace(/,(?=\S)/g, ', ');

/** The value an `x-follows` key takes when not given. */
function followed(spec: Record<string, unknown>, expr: string): unknown {
  if (expr === 'concepts[*].instance_prompt') {
    const prompts = (spec.concepts as { instance_prompt: string }[]).map((c) => stripFilewords(c.instance_prompt));
    return [...new Set(prompts)];
  }
  if (expr === 'sample.seed+count') {
    const s = spec.sample as { seed: number; count: number };
    return Array.from({ length: s.count }, (_, i) => s.seed + i);
  }
  const path = parsePath(expr);
  if (typeof path === 'string') throw new Error(`bad x-follows "${expr}" in the schema`);
  return structuredClone(getAt(spec, path));
}

/** Replaces null `x-follows` values by what they follow. Runs on a valid spec. */
export function applyFollows(schema: JsonSchema, root: Record<string, unknown>, value: unknown = root): void {
  if (!isPlainObject(value) || !schema.properties) return;
  for (const [key, sub] of Object.entries(schema.properties)) {
    if (sub['x-follows'] && value[key] === null) value[key] = followed(root, sub['x-follows']);
    else if (sub.properties) applyFollows(sub, root, value[key]);
  }
}

/** A model given as a plain name lives in `models/<name>`; anything with a slash or dot prefix is a path. */
export function isPlainModelName(name: string): boolean {
  return !/[\\/]/.test(name) && name !== '.' && name !== '..' && !isAbsolute(name);
}

/** Makes every `x-path` value absolute. `baseFor(path)` is the folder a value's relative path starts from. */
export function resolvePaths(schema: JsonSchema, value: unknown, baseFor: (path: KeyPath) => string, cwd: string, at: KeyPath = []): void {
  if (isPlainObject(value) && schema.properties) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      const v = value[key];
      const kind = sub['x-path'];
      if (kind && typeof v === 'string') {
        if (kind === 'model' && isPlainModelName(v)) value[key] = join(cwd, 'models', v);
        else value[key] = resolvePath(baseFor([...at, key]), v);
      } else resolvePaths(sub, v, baseFor, cwd, [...at, key]);
    }
  } else if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => resolvePaths(schema.items!, item, baseFor, cwd, [...at, i]));
  }
}

/** Numbers as people write them in names: 2e-6 (not 0.000002), 8000, 0.5. */
export function formatNumber(n: number): string {
  const plain = String(n);
  if (Number.isInteger(n)) return plain;
  const exp = n.toExponential().replace('e+', 'e');
  return exp.length < plain.length ? exp : plain;
}

/**
 * Renders `output.name`: `{key.path}` is replaced by the spec's value, `{spec}` by the spec file's name.
 * Returns the name, or a message naming the unknown key. Characters unsafe in a folder name become `_`.
 */
export function renderName(template: string, spec: unknown, specName: string, keys: string[]): { name: string } | { message: string; hint?: string } {
  let problem: { message: string; hint?: string } | undefined;
  const name = template.replace(/\{([^{}]*)\}/g, (_, expr: string) => {
    const key = expr.trim();
    let v: unknown;
    if (key === 'spec') v = specName;
    else {
      const path = parsePath(key);
      v = typeof path === 'string' ? undefined : getAt(spec, path);
      if (v === undefined) {
        const near = closest(key, ['spec', ...keys]);
        problem ??= { message: `unknown key {${key}} in the name template`, hint: near ? `did you mean {${near}}?` : undefined };
        return '';
      }
    }
    if (v === null) return 'none';
    if (typeof v === 'number') return formatNumber(v);
    if (typeof v === 'string' || typeof v === 'boolean') return String(v);
    problem ??= { message: `{${key}} is a ${Array.isArray(v) ? 'list' : 'mapping'}, not a single value` };
    return '';
  });
  if (problem) return problem;
  const safe = name.replace(/[^A-Za-z0-9._+=@,-]+/g, '_');
  if (safe === '' || safe === '.' || safe === '..') return { message: `the name template gives "${name}", which is not a usable folder name` };
  return { name: safe };
}

/** A copy of `value` with mapping keys in schema order (the order of docs and `config show`). */
export function orderBySchema(schema: JsonSchema, value: unknown): unknown {
  if (isPlainObject(value) && schema.properties) {
    const out: Record<string, unknown> = {};
    for (const [key, sub] of Object.entries(schema.properties)) if (key in value) out[key] = orderBySchema(sub, value[key]);
    for (const key of Object.keys(value)) if (!(key in out)) out[key] = value[key];
    return out;
  }
  if (Array.isArray(value) && schema.items) return value.map((v) => orderBySchema(schema.items!, v));
  return value;
}
