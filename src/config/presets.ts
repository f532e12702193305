import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigIssue } from '../errors.js';
import { PRESETS } from './schema.js';
import { parseYaml, type YamlSource } from './yaml-source.js';

export type PresetName = (typeof PRESETS)[number];

/** presets/ of the package: two levels above both src/config/ and dist/config/. */
export const PRESET_DIR = fileURLToPath(new URL('../../presets/', import.meta.url));

export function isPresetName(v: unknown): v is PresetName {
  return typeof v === 'string' && (PRESETS as readonly string[]).includes(v);
}

export function presetFile(name: PresetName, dir = PRESET_DIR): string {
  return join(dir, `${name}.yaml`);
}

/** Reads presets/<name>.yaml; a broken preset is reported like a broken spec. */
export function loadPreset(name: PresetName, dir = PRESET_DIR): { source?: YamlSource; issues: ConfigIssue[] } {
  const file = presetFile(name, dir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { issues: [{ file, message: `cannot read preset "${name}": ${(err as Error).message}` }] };
  }
  return parseYaml(file, text);
}
