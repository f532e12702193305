#!/usr/bin/env node
// `npm run bench -- <name> [args…]` runs bench/<name>.js (plain ESM importing the built dist/).
// Each benchmark prints its figures and ends with one summary line.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js')
  .map((f) => f.slice(0, -3))
  .sort();
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <name> [args]\navailable: ${available.join(', ') || '(none yet)'}\n`);
  process.exit(name ? 2 : 0);
}
process.argv = [process.argv[0], join(here, `${name}.js`), ...rest];
await import(pathToFileURL(join(here, `${name}.js`)).href);
