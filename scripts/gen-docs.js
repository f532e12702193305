#!/usr/bin/env node
// `npm run docs`: regenerates the files derived from the run-spec schema (src/config/schema.ts):
// src/config/types.generated.ts and docs/run-spec.md. Imports the built dist/, so `npm run build` first.
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../dist/config/generate.js';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const [rel, text] of Object.entries(generatedFiles())) {
  const file = `${root}${rel}`;
  mkdirSync(new URL('.', `file://${file}`), { recursive: true });
  writeFileSync(file, text);
  process.stderr.write(`wrote ${rel}\n`);
}
