import type { JsonSchema } from './schema.js';

/** A location inside a spec: object keys and array indices, e.g. ['concepts', 0, 'instance_prompt']. */
export type KeyPath = (string | number)[];

/** `concepts[0].instance_prompt`, the form users see in messages and type after `--set`. */
export function formatPath(path: KeyPath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : seg;
  return s;
}

/**
 * Parses `a.b[0].c` (also `a.b.0.c`) into a KeyPath; returns a message instead when malformed.
 * Keys are the schema's snake_case identifiers, so a plain character class is enough.
 */
export function parsePath(text: string): KeyPath | string {
  const path: KeyPath = [];
  const re = /([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\.(\d+)(?=\.|\[|$)|(\.)/gy;
  let expectKey = true;
  let m: RegExpExecArray | null;
  let pos = 0;
  if (text === '') return 'empty key';
  while (pos < text.length && (m = re.exec(text)) !== null) {
    pos = re.lastIndex;
    if (m[1] !== undefined) {
      if (!expectKey) return `unexpected "${m[1]}" in key "${text}"`;
      path.push(m[1]);
      expectKey = false;
    } else if (m[2] !== undefined || m[3] !== undefined) {
      if (path.length === 0) return `key "${text}" cannot start with an index`;
      path.push(Number(m[2] ?? m[3]));
      expectKey = false;
    } else {
      if (expectKey) return `empty segment in key "${text}"`;
      expectKey = true;
    }
  }
  if (pos !== text.length) return `invalid character "${text[pos]}" in key "${text}"`;
  if (expectKey) return `key "${text}" ends with "."`;
  return path;
}

export function typesOf(schema: JsonSchema): string[] {
  return schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
}

/** The subschema at a path (indices step into `items`), or undefined where the schema has no such key. */
export function schemaAt(root: JsonSchema, path: KeyPath): JsonSchema | undefined {
  let s: JsonSchema | undefined = root;
  for (const seg of path) {
    if (!s) return undefined;
    if (typeof seg === 'number') s = s.items;
    else s = s.properties && Object.hasOwn(s.properties, seg) ? s.properties[seg] : undefined;
  }
  return s;
}

/** Every key path in the schema, arrays written as `concepts[]` — for suggesting where a stray key belongs. */
export function allKeyPaths(root: JsonSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, sub] of Object.entries(root.properties ?? {})) {
    const p = prefix ? `${prefix}.${key}` : key;
    out.push(p);
    if (sub.properties) out.push(...allKeyPaths(sub, p));
    if (sub.items?.properties) out.push(...allKeyPaths(sub.items, `${p}[]`));
  }
  return out;
}

export function getAt(value: unknown, path: KeyPath): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
