import { parse as parseYamlValue } from 'yaml';
import type { ConfigIssue } from '../errors.js';
import { formatPath, isPlainObject, parsePath, schemaAt, typesOf, type KeyPath } from './keypath.js';
import { runSpecSchema, type JsonSchema } from './schema.js';
import { unknownKeyHint } from './validate.js';

/** One `--set key.path=value` override, parsed. */
export interface SetOverride {
  /** The argument as typed (`key=value`). */
  raw: string;
  /** Where it came from, for messages: `--set key=value`, or the option it stands for (`--device cuda:0`). */
  where: string;
  path: KeyPath;
  value: unknown;
}

/** A `key=value` override that came from another option than `--set` (e.g. `--device X`), named so in messages. */
export interface SetArg {
  arg: string;
  where: string;
}

const whereOf = (a: string | SetArg) => (typeof a === 'string' ? `--set ${a}` : a.where);

/**
 * Parses `--set` arguments. The key must name a key of the schema (did-you-mean otherwise); the value
 * is read as YAML (`2e-6` is a number, `true` a boolean, `[0.9, 0.99]` a list, an empty value null),
 * except for text keys, which take it as typed.
 */
export function parseSets(args: readonly (string | SetArg)[]): { sets: SetOverride[]; issues: ConfigIssue[] } {
  const sets: SetOverride[] = [];
  const issues: ConfigIssue[] = [];
  for (const a of args) {
    const raw = typeof a === 'string' ? a : a.arg;
    const where = whereOf(a);
    const eq = raw.indexOf('=');
    if (eq < 0) {
      issues.push({ file: where, message: 'expected key=value', hint: 'e.g. --set lr=2e-6' });
      continue;
    }
    const keyText = raw.slice(0, eq).trim();
    const path = parsePath(keyText);
    if (typeof path === 'string') {
      issues.push({ file: where, message: path, hint: 'keys look like lr, ema.decay or concepts[0].instance_prompt' });
      continue;
    }
    const bad = unknownPrefix(path);
    if (bad) {
      issues.push({ file: where, path: formatPath(path), message: bad.message, hint: bad.hint });
      continue;
    }
    let value: unknown;
    try {
      value = parseValue(raw.slice(eq + 1), schemaAt(runSpecSchema, path)!);
    } catch (err) {
      issues.push({ file: where, path: formatPath(path), message: `value is not valid YAML: ${(err as Error).message.split('\n')[0]}` });
      continue;
    }
    sets.push({ raw, where, path, value: value === undefined ? null : value });
  }
  return { sets, issues };
}

/**
 * Text keys take the text as typed (`--set output.name={model.name}-x`, `--set instance_prompt=[filewords], x`
 * would otherwise be YAML collections); `null`/`~` still mean null where allowed, and a quoted value is
 * read as YAML. Every other key reads the value as YAML.
 */
function parseValue(text: string, schema: JsonSchema): unknown {
  const types = typesOf(schema);
  const textOnly = types.includes('string') && types.every((t) => t === 'string' || t === 'null');
  if (textOnly && !/^\s*(["']|null\s*$|~\s*$)/.test(text)) return text;
  return parseYamlValue(text);
}

function unknownPrefix(path: KeyPath): { message: string; hint?: string } | undefined {
  for (let i = 0; i < path.length; i++) {
    const parent = schemaAt(runSpecSchema, path.slice(0, i))!;
    const seg = path[i];
    if (typeof seg === 'number') {
      if (!parent.items) return { message: `${formatPath(path.slice(0, i))} is not a list` };
      continue;
    }
    if (!parent.properties) return { message: `${formatPath(path.slice(0, i)) || 'the spec'} has no keys inside it` };
    if (!Object.hasOwn(parent.properties, seg)) {
      return { message: `unknown key "${formatPath(path.slice(0, i + 1))}"`, hint: unknownKeyHint(runSpecSchema, path.slice(0, i), seg) };
    }
  }
  return undefined;
}

/**
 * Writes an override into a plain spec object, creating the mappings on its way. A list index may
 * address an existing item or the next one (which appends). Returns a problem instead of writing.
 */
export function applySet(target: Record<string, unknown>, set: SetOverride): ConfigIssue | undefined {
  let node: Record<string | number, unknown> = target;
  for (let i = 0; i < set.path.length - 1; i++) {
    const seg = set.path[i];
    const nextIsIndex = typeof set.path[i + 1] === 'number';
    let child = node[seg];
    if (nextIsIndex) {
      if (!Array.isArray(child)) child = node[seg] = [];
      const idx = set.path[i + 1] as number;
      const list = child as unknown[];
      if (idx > list.length) {
        return {
          file: set.where,
          path: formatPath(set.path),
          message: `${formatPath(set.path.slice(0, i + 1))} has ${list.length} item${list.length === 1 ? '' : 's'}; index ${idx} is past the end`,
          hint: `use an index up to ${list.length} (${list.length} appends a new item)`,
        };
      }
    } else if (!isPlainObject(child) && !Array.isArray(child)) {
      child = node[seg] = {};
    }
    node = child as Record<string | number, unknown>;
  }
  const last = set.path[set.path.length - 1];
  if (Array.isArray(node) && typeof last === 'number' && last > node.length) {
    return { file: set.where, path: formatPath(set.path), message: `index ${last} is past the end of a list of ${node.length}` };
  }
  node[last] = structuredClone(set.value);
  return undefined;
}
