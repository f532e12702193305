import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { allKeyPaths, formatPath, schemaAt, type KeyPath } from './keypath.js';
import { DEVICES, runSpecSchema, type JsonSchema } from './schema.js';
import { closest } from './suggest.js';

/** A problem at a key path; load.ts turns the path into file:line:column. */
export interface PathIssue {
  path: KeyPath;
  /** Point at the key itself (unknown keys), not its value. */
  atKey?: boolean;
  message: string;
  hint?: string;
}

export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false });
  ajv.addVocabulary(['x-follows', 'x-path']);
  return ajv;
}

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  compiled ??= createAjv().compile(runSpecSchema);
  return compiled;
}

const PATTERN_HINTS: Record<string, { expected: string; choices?: readonly string[]; synonyms?: Record<string, string> }> = {
  '^(auto|cpu|cuda(:[0-9]+)?)$': { expected: 'auto, cpu, cuda or cuda:N', choices: DEVICES, synonyms: { gpu: 'cuda', nvidia: 'cuda' } },
  '^\\.[A-Za-z0-9_.-]+$': { expected: 'a file extension starting with "." (e.g. ".txt")' },
};

function show(v: unknown): string {
  const s = v === undefined ? 'nothing' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function describeType(types: string[]): string {
  const names = types.map((t) =>
    t === 'integer' ? 'an integer' : t === 'array' ? 'a list' : t === 'object' ? 'a mapping' : t === 'null' ? 'null' : `a ${t}`,
  );
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0];
}

function typeOfValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return `the number ${v}`;
  return `${typeof v} ${show(v)}`;
}

/** The usual YAML slips: a quoted number, YAML 1.1 booleans (yes/on), one value where a list belongs. */
function typeHint(want: string[], value: unknown): string | undefined {
  const numeric = want.includes('number') || want.includes('integer');
  if (typeof value === 'string') {
    if (numeric && value.trim() !== '' && Number.isFinite(Number(value))) return 'write the number without quotes';
    if (want.includes('boolean') && /^(yes|no|on|off|y|n|true|false)$/i.test(value.trim())) return 'write true or false (without quotes)';
  }
  if (want.includes('array') && !Array.isArray(value) && value !== null && typeof value !== 'object') return `write a list, e.g. [${JSON.stringify(value)}]`;
  return undefined;
}

function toPath(instancePath: string): KeyPath {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Hint for a key that is not allowed here: a close key at this level, or the same key elsewhere. */
export function unknownKeyHint(root: JsonSchema, parent: KeyPath, key: string): string | undefined {
  const here = Object.keys(schemaAt(root, parent)?.properties ?? {});
  const near = closest(key, here);
  if (near) return `did you mean "${formatPath([...parent, near])}"?`;
  const everywhere = allKeyPaths(root);
  const same = everywhere.filter((p) => p === key || p.endsWith(`.${key}`) || p.endsWith(`]${key}`));
  if (same.length) return `did you mean ${same.map((p) => `"${p}"`).join(' or ')}?`;
  const lastSegs = everywhere.map((p) => p.split(/\.|\[\]\.?/).pop()!);
  const far = closest(key, lastSegs);
  if (far) {
    const full = everywhere.filter((p) => p.split(/\.|\[\]\.?/).pop() === far);
    return `did you mean ${full.map((p) => `"${p}"`).join(' or ')}?`;
  }
  return here.length <= 12 && here.length ? `keys allowed here: ${here.join(', ')}` : undefined;
}

function translate(e: ErrorObject): PathIssue {
  const path = toPath(e.instancePath);
  const value = (e as ErrorObject & { data?: unknown }).data;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      return { path: [...path, key], atKey: true, message: `unknown key "${key}"`, hint: unknownKeyHint(runSpecSchema, path, key) };
    }
    case 'required': {
      const key = String(p.missingProperty);
      const where = path.length ? `in ${formatPath(path)}` : 'at the top level';
      return { path, message: `missing required key "${key}" ${where}`, hint: schemaAt(runSpecSchema, [...path, key])?.description };
    }
    case 'type': {
      const want = String(p.type).split(',');
      return { path, message: `expected ${describeType(want)}, got ${typeOfValue(value)}`, hint: typeHint(want, value) };
    }
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).filter((v) => v !== null).map(String);
      const near = typeof value === 'string' ? closest(value, allowed) : undefined;
      return { path, message: `expected one of ${allowed.join(', ')}; got ${show(value)}`, hint: near ? `did you mean "${near}"?` : undefined };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { path, message: `must be ${String(p.comparison)} ${String(p.limit)}, got ${show(value)}` };
    case 'multipleOf': {
      const m = Number(p.multipleOf);
      const v = Number(value);
      const lo = Math.max(m, Math.floor(v / m) * m);
      return { path, message: `must be a multiple of ${m}, got ${show(value)}`, hint: `try ${lo} or ${lo + m}` };
    }
    case 'pattern': {
      const known = PATTERN_HINTS[String(p.pattern)];
      const word = typeof value === 'string' ? value.replace(/:.*/, '').toLowerCase() : undefined;
      const near = word === undefined ? undefined : (known?.synonyms?.[word] ?? (known?.choices && closest(word, known.choices)));
      return {
        path,
        message: `expected ${known?.expected ?? `text matching /${String(p.pattern)}/`}; got ${show(value)}`,
        hint: near ? `did you mean "${near}"?` : undefined,
      };
    }
    case 'minItems':
      return { path, message: `needs at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}, got ${(value as unknown[]).length}` };
    case 'maxItems':
      return { path, message: `takes at most ${String(p.limit)} items, got ${(value as unknown[]).length}` };
    case 'minLength':
      return { path, message: 'must not be empty' };
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** Every schema violation in `data`, one issue per key (a wrong type hides the follow-on enum/range errors). */
export function schemaIssues(data: unknown): PathIssue[] {
  const validate = validator();
  if (validate(data)) return [];
  const errors = (validate.errors ?? []).map((e) => ({ ...e, data: dataAt(data, toPath(e.instancePath)) }));
  const typeErrorAt = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const issues: PathIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'type' && typeErrorAt.has(e.instancePath)) continue;
    const issue = translate(e);
    const id = `${formatPath(issue.path)}|${issue.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    issues.push(issue);
  }
  return issues;
}

function dataAt(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const seg of path) v = (v as Record<string | number, unknown>)?.[seg];
  return v;
}
