import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach } from 'vitest';
import { ConfigError } from '../../src/errors.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A fresh folder removed after the test. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dbt-config-'));
  dirs.push(d);
  return d;
}

/** Writes files (relative name → text) into a fresh folder; returns it. */
export function writeFiles(files: Record<string, string>): string {
  const d = tempDir();
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(d, name)), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

/** The smallest valid spec, as YAML lines (tests append to it). */
export const MINIMAL = ['model:', '  name: nanu', 'concepts:', '  - instance_prompt: nanU Unan', '    instance_dir: data/nanu', 'steps: 1000'].join('\n') + '\n';

/** Runs fn, expects a ConfigError, returns it. */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, got success');
}
