/** `dbt prep run.yaml`: each concept's raw_dir into its instance_dir with the spec's prep options. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveRunSpecText } from '../../src/config/index.js';
import { PREP_DEFAULTS, prepJobsFromSpec } from '../../src/prep/index.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { encodeImage, readRaw, renderScene } from '../helpers/images.js';
import { colourKeySegModelBytes } from './seg-model.js';

const SPEC = (extra = '') =>
  [
    'model:',
    '  name: nanu',
    'steps: 1000',
    'concepts:',
    '  - instance_prompt: nanU Unan',
    '    instance_dir: data/nanu',
    '    raw_dir: raw/nanu',
    '  - instance_prompt: sks dog',
    '    instance_dir: data/dog',
    'prep:',
    '  size: 64',
    '  white_bg: true',
    '  seg_model: models/key.onnx',
    '  caption_prefix: nanU Unan',
    extra,
  ].join('\n') + '\n';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbt-prep-spec-'));
  mkdirSync(join(dir, 'raw', 'nanu'), { recursive: true });
  mkdirSync(join(dir, 'models'));
  writeFileSync(join(dir, 'models', 'key.onnx'), colourKeySegModelBytes({ key: [0, 255, 0] }));
  const scene = renderScene({ width: 96, height: 64, background: [0, 255, 0], subject: { left: 24, top: 16, width: 40, height: 32, colour: [200, 0, 0] } });
  writeFileSync(join(dir, 'raw', 'nanu', 'a.png'), await encodeImage(scene, 'png'));
  writeFileSync(join(dir, 'run.yaml'), SPEC());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dbt prep run.yaml', () => {
  it('prepares each concept that has a raw_dir, with the prep section and --set overrides', () => {
    const r = runCli(['prep', 'run.yaml', '--set', 'prep.fit=crop', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ ok: true, command: 'prep', file: join(dir, 'run.yaml'), without_raw_dir: [1] });
    expect(result.concepts).toHaveLength(1);
    expect(result.concepts[0]).toMatchObject({ concept: 0, instance_prompt: 'nanU Unan', raw_dir: join(dir, 'raw/nanu'), instance_dir: join(dir, 'data/nanu') });
    expect(result.concepts[0].report.images[0]).toMatchObject({ fit: 'crop', subject: { from: 'segmentation' } });
    expect(readFileSync(join(dir, 'data', 'nanu', 'a.txt'), 'utf8')).toBe('nanU Unan\n');
    expect(existsSync(join(dir, 'data', 'dog'))).toBe(false);
  });

  it('writes the human report per concept and skips unchanged images on the next run', async () => {
    const r = runCli(['prep', 'run.yaml', '--set', 'prep.fit=crop'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/concept 0 \(nanU Unan\):\nprep: 1 source → .*data\/nanu/);
    expect(r.stderr).toMatch(/processed 0, skipped 1/);
    expect(r.stderr).toMatch(/concepts without raw_dir \(nothing to prepare\): 1/);
    const img = await readRaw(join(dir, 'data', 'nanu', 'a.png'));
    expect([img.width, img.height]).toEqual([64, 64]);
  });

  it('spec mistakes are configuration errors (exit 2) naming the key', () => {
    writeFileSync(join(dir, 'bad.yaml'), SPEC('  fit: stretch'));
    const r = runCli(['prep', 'bad.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: prep\.fit/);
    const colour = runCli(['prep', 'run.yaml', '--set', 'prep.bg=mauve-ish'], { cwd: dir });
    expect(colour.code).toBe(2);
    expect(colour.stderr).toMatch(/prep\.bg "mauve-ish": not a colour/);
  });

  it('a missing raw_dir stops the run before any concept is prepared, listing every missing folder', () => {
    const spec = SPEC().replace('    instance_dir: data/dog\n', '    instance_dir: data/dog\n    raw_dir: raw/dog\n  - instance_prompt: cat\n    instance_dir: data/cat\n    raw_dir: raw/cat\n');
    writeFileSync(join(dir, 'missing.yaml'), spec.replace('data/nanu', 'data/nanu-missing'));
    const r = runCli(['prep', 'missing.yaml', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: 'ConfigError', issues: [{ path: 'concepts[1].raw_dir' }, { path: 'concepts[2].raw_dir' }] });
    expect(r.stderr).toMatch(/2 raw_dirs do not exist; nothing was prepared/);
    expect(r.stderr).toMatch(/concepts\[1\]\.raw_dir: .*raw\/dog does not exist/);
    expect(existsSync(join(dir, 'data', 'nanu-missing'))).toBe(false);
  });

  it.each([
    ['prep.size=8192', ['--size', '8192']],
    ['prep.margin=5', ['--margin', '5']],
    ['prep.mask_feather=500', ['--white-bg', '--mask-feather', '500']],
    ['resolution=8192', ['--size', '8192']],
  ])('the spec refuses %s as the flags refuse %j: at load time, naming the key', (set, flags) => {
    const key = set.split('=')[0];
    const err = (() => {
      try {
        resolveRunSpecText(SPEC(), join(dir, 'run.yaml'), [set], { cwd: dir });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path)).toContain(key);
    const r = runCli(['prep', 'raw', '--out', 'limits-out', ...flags], { cwd: dir });
    expect(r.code).toBe(2);
  });

  it('a spec in which no concept has raw_dir says what to add', () => {
    const loaded = resolveRunSpecText(SPEC().replace('    raw_dir: raw/nanu\n', ''), join(dir, 'x.yaml'), [], { cwd: dir });
    expect(() => prepJobsFromSpec(loaded, 1)).toThrow(ConfigError);
    expect(() => prepJobsFromSpec(loaded, 1)).toThrow(/no concept has a raw_dir/);
  });

  it('the flag defaults are the run spec defaults', () => {
    const minimal = ['model:', '  name: m', 'steps: 10', 'concepts:', '  - instance_prompt: a', '    instance_dir: d', '    raw_dir: r'].join('\n');
    const { jobs } = prepJobsFromSpec(resolveRunSpecText(minimal, join(dir, 'm.yaml'), [], { cwd: dir }), 3);
    const { inputs, out, concurrency, segModel, maskThreshold, caption, captionPrefix, ...rest } = jobs[0].options;
    expect(rest).toEqual(PREP_DEFAULTS);
    expect([segModel, maskThreshold, caption, captionPrefix, concurrency]).toEqual([undefined, undefined, undefined, undefined, 3]);
  });
});
