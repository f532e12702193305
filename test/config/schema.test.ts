import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { PRESETS, presetFile, runSpecSchema, type JsonSchema } from '../../src/config/index.js';
import { createAjv, schemaIssues } from '../../src/config/validate.js';
import { generatedFiles } from '../../src/config/generate.js';
import { applyDefaults } from '../../src/config/resolve.js';

function* walk(s: JsonSchema, path: string): Generator<[string, JsonSchema]> {
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    yield [`${path}${k}`, sub];
    yield* walk(sub, `${path}${k}.`);
    if (sub.items) yield* walk(sub.items, `${path}${k}[].`);
  }
}

describe('the run-spec schema', () => {
  it('is valid draft-07 JSON Schema that a plain ajv (non-strict) compiles', () => {
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema(runSpecSchema)).toBe(true);
    expect(() => ajv.compile(runSpecSchema)).not.toThrow();
  });

  it('describes every key, and every optional leaf has a default or follows another key', () => {
    const missing: string[] = [];
    for (const [path, s] of walk(runSpecSchema, '')) {
      if (!s.description) missing.push(`${path}: no description`);
      const leaf = !s.properties && !s.items?.properties;
      const required = ['model', 'concepts', 'model.name', 'concepts[].instance_prompt', 'concepts[].instance_dir'].includes(path);
      if (leaf && !required && s.default === undefined) missing.push(`${path}: no default`);
      if (s['x-follows'] && s.default !== null) missing.push(`${path}: follows but default is not null`);
    }
    expect(missing).toEqual([]);
  });

  it('its defaults satisfy it', () => {
    const ajv = createAjv();
    for (const [path, s] of walk(runSpecSchema, '')) {
      if (s.default === undefined) continue;
      expect(ajv.validate(s, s.default), `${path} default ${JSON.stringify(s.default)}`).toBe(true);
    }
  });

  it.each(PRESETS)('preset %s holds only valid top-level training keys', (name) => {
    const value = parse(readFileSync(presetFile(name), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(value)).not.toContain('preset');
    expect(Object.keys(value)).not.toContain('model');
    expect(Object.keys(value)).not.toContain('concepts');
    const full = { model: { name: 'm' }, concepts: [{ instance_prompt: 'p', instance_dir: 'd' }], steps: 1000, ...value };
    applyDefaults(runSpecSchema, full);
    expect(schemaIssues(full)).toEqual([]);
  });

  it('the generated files are up to date (run `npm run docs` after changing the schema)', () => {
    for (const [rel, text] of Object.entries(generatedFiles())) {
      const onDisk = readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');
      expect(onDisk, `${rel} is stale: run npm run docs`).toBe(text);
    }
  });

  it('docs/run-spec.md documents every key', () => {
    const md = generatedFiles()['docs/run-spec.md'];
    for (const [path, s] of walk(runSpecSchema, '')) {
      if (s.properties || s.items?.properties) expect(md).toContain(`## \`${path}\``);
      else expect(md).toContain(`| \`${path}\` |`);
    }
  });
});
