import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigIssue } from '../errors.js';
import type { KeyPath } from './keypath.js';

/** A parsed YAML file that still knows where each value came from. */
export interface YamlSource {
  file: string;
  doc: Document;
  lines: LineCounter;
  value: unknown;
}

export interface Position {
  line: number;
  column: number;
  /** False when the path itself is absent and this is its nearest present ancestor. */
  exact: boolean;
  /** How many path segments were found (0: the document itself). */
  depth: number;
}

/**
 * Parses YAML text; syntax errors (each with line and column) come back as issues, all of them.
 * `<<: *anchor` merge keys are allowed (handy for concepts that share settings).
 */
export function parseYaml(file: string, text: string): { source: YamlSource; issues: ConfigIssue[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const issues: ConfigIssue[] = doc.errors.map((e) => {
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    return { file, line: pos.line, column: pos.col, message: `YAML syntax error: ${yamlMessage(e.message, e.code)}` };
  });
  const source: YamlSource = { file, doc, lines, value: issues.length ? undefined : doc.toJS({ maxAliasCount: 1000 }) };
  return { source, issues };
}

function yamlMessage(message: string, code: string): string {
  const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  if (code === 'DUPLICATE_KEY') return 'the same key appears twice in one mapping';
  return first;
}

/** Line and column of the value at `path` (or of its key, with `key`), else of its nearest ancestor. */
export function locate(src: YamlSource, path: KeyPath, opts: { key?: boolean } = {}): Position | undefined {
  let node: unknown = src.doc.contents;
  let keyNode: unknown;
  let depth = 0;
  for (const seg of path) {
    let next: unknown;
    let nextKey: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (pair) [next, nextKey] = [pair.value ?? pair.key, pair.key];
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (next === undefined) break;
    node = next;
    keyNode = nextKey;
    depth++;
  }
  const exact = depth === path.length;
  const target = (exact && opts.key && keyNode) || node;
  const range = (target as Node | null)?.range;
  if (!range) return undefined;
  const lp = src.lines.linePos(range[0]);
  return { line: lp.line, column: lp.col, exact, depth };
}
