import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRunSpec, presetFile, resolveRunSpecText, toYaml } from '../../src/config/index.js';
import { EXIT_USAGE } from '../../src/errors.js';
import { configErrorOf, MINIMAL, tempDir, writeFiles } from './helpers.js';

const lineOf = (file: string, start: string) => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.startsWith(start)) + 1;

describe('loadRunSpec: resolution order defaults < preset < file < --set', () => {
  it('fills every default into a minimal spec', () => {
    const dir = writeFiles({ 'run.yaml': MINIMAL });
    const { spec, preset, warnings } = loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir });
    expect(preset).toBeNull();
    expect(warnings).toEqual([]);
    expect(spec.lr).toBe(2e-6);
    expect(spec.hflip).toBe(false);
    expect(spec.optimizer).toBe('adamw');
    expect(spec.ema).toEqual({ enabled: false, decay: 0.9999 });
    expect(spec.concepts[0].repeats).toBe(1);
    expect(spec.concepts[0].class_prompt).toBeNull();
    expect(spec.betas).toEqual([0.9, 0.999]);
  });

  it('a preset overrides defaults, the file overrides the preset, --set overrides the file', () => {
    const dir = writeFiles({ 'run.yaml': `preset: person\n${MINIMAL}warmup_steps: 30\nhflip: true\n` });
    const file = join(dir, 'run.yaml');
    const plain = loadRunSpec(file, [], { cwd: dir });
    expect(plain.preset).toBe('person');
    expect(plain.spec.lr).toBe(1e-6); // preset over default 2e-6
    expect(plain.spec.optimizer).toBe('adamw8bit'); // preset
    expect(plain.spec.warmup_steps).toBe(30); // file over preset's 15
    expect(plain.spec.hflip).toBe(true); // file over preset's false
    expect(plain.spec.weight_decay).toBe(0.01); // default, untouched by the preset
    const over = loadRunSpec(file, ['lr=3e-6', 'warmup_steps=5', 'ema.enabled=true'], { cwd: dir });
    expect(over.spec.lr).toBe(3e-6);
    expect(over.spec.warmup_steps).toBe(5);
    expect(over.spec.ema).toEqual({ enabled: true, decay: 0.9999 });
    expect(over.spec.optimizer).toBe('adamw8bit');
  });

  it('--set preset= switches the preset, and later --set wins over earlier', () => {
    const dir = writeFiles({ 'run.yaml': `preset: person\n${MINIMAL}` });
    const r = loadRunSpec(join(dir, 'run.yaml'), ['preset=object', 'lr=1e-5', 'lr=4e-6'], { cwd: dir });
    expect(r.preset).toBe('object');
    expect(r.spec.lr_scheduler).toBe('constant_with_warmup');
    expect(r.spec.lr).toBe(4e-6);
  });

  it('each preset differs from the defaults as documented', () => {
    const dir = writeFiles({ 'run.yaml': MINIMAL });
    const get = (p: string) => loadRunSpec(join(dir, 'run.yaml'), [`preset=${p}`], { cwd: dir }).spec;
    expect(get('person')).toMatchObject({ lr: 1e-6, hflip: false, warmup_steps: 15, optimizer: 'adamw8bit', gradient_checkpointing: true, lr_scheduler: 'polynomial' });
    expect(get('object')).toMatchObject({ lr: 2e-6, hflip: false, warmup_steps: 15, optimizer: 'adamw8bit' });
    expect(get('style')).toMatchObject({ lr: 2e-6, hflip: true, save_every: 1000 });
  });

  it('--set can replace a list, append a concept and null a value', () => {
    const dir = writeFiles({ 'run.yaml': MINIMAL });
    const r = loadRunSpec(
      join(dir, 'run.yaml'),
      ['betas=[0.8, 0.99]', 'concepts[1].instance_prompt=sks dog', 'concepts[1].instance_dir=dogs', 'steps=null', 'epochs=3'],
      { cwd: dir },
    );
    expect(r.spec.betas).toEqual([0.8, 0.99]);
    expect(r.spec.concepts).toHaveLength(2);
    expect(r.spec.concepts[1].instance_dir).toBe(join(dir, 'dogs'));
    expect(r.spec.steps).toBeNull();
    expect(r.spec.epochs).toBe(3);
  });
});

describe('loadRunSpec: derived values', () => {
  it('fills x-follows keys from what they follow', () => {
    const dir = writeFiles({ 'run.yaml': `${MINIMAL}resolution: 768\nsave_every: 250\nmodel:\n  name: m\n  scheduler: euler_a\nsample:\n  seed: 7\n  count: 3\n` .replace(/^model:\n  name: nanu\n/, '') });
    const { spec } = loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir });
    expect(spec.prep.size).toBe(768);
    expect(spec.preview.size).toBe(768);
    expect(spec.sample.width).toBe(768);
    expect(spec.sample.height).toBe(768);
    expect(spec.preview.every).toBe(250);
    expect(spec.preview.sampler).toBe('euler_a');
    expect(spec.sample.sampler).toBe('euler_a');
    expect(spec.sample.seeds).toEqual([7, 8, 9]);
    expect(spec.train_text_encoder.lr).toBe(spec.lr);
    expect(spec.preview.prompts).toEqual(['nanU Unan']);
  });

  it('keeps explicit values of x-follows keys', () => {
    const dir = writeFiles({ 'run.yaml': `${MINIMAL}prep:\n  size: 256\nsample:\n  seeds: [5, 50]\n  prompts: [a, b]\n` });
    const { spec } = loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir });
    expect(spec.prep.size).toBe(256);
    expect(spec.sample.seeds).toEqual([5, 50]);
    expect(spec.sample.prompts).toEqual(['a', 'b']);
  });

  it('drops [filewords] from default preview prompts', () => {
    const dir = writeFiles({ 'run.yaml': MINIMAL.replace('nanU Unan', '"nanU Unan, [filewords]"') });
    expect(loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir }).spec.preview.prompts).toEqual(['nanU Unan']);
  });

  it('resolves paths: file values from the file\'s folder, --set and defaults from cwd, plain model names under models/', () => {
    const dir = writeFiles({ 'specs/run.yaml': `${MINIMAL}prep:\n  seg_model: ../isnetis.onnx\n` });
    const cwd = tempDir();
    const r = loadRunSpec(join(dir, 'specs/run.yaml'), ['concepts[0].class_dir=class'], { cwd });
    expect(r.spec.concepts[0].instance_dir).toBe(join(dir, 'specs/data/nanu'));
    expect(r.spec.prep.seg_model).toBe(join(dir, 'isnetis.onnx'));
    expect(r.spec.concepts[0].class_dir).toBe(join(cwd, 'class'));
    expect(r.spec.output.dir).toBe(join(cwd, 'runs'));
    expect(r.spec.model.name).toBe(join(cwd, 'models', 'nanu'));
    const p = loadRunSpec(join(dir, 'specs/run.yaml'), ['model.name=./here/m'], { cwd });
    expect(p.spec.model.name).toBe(join(cwd, 'here/m'));
  });

  it('renders output.name from its template; runDir joins output.dir', () => {
    const dir = writeFiles({ 'nanu.yaml': `${MINIMAL}output:\n  name: "{spec}-lr{lr}-s{steps}-{concepts[0].class_prompt}-{hflip}"\n` });
    const r = loadRunSpec(join(dir, 'nanu.yaml'), ['lr=2e-6'], { cwd: dir });
    expect(r.spec.output.name).toBe('nanu-lr2e-6-s1000-none-false');
    expect(r.runDir).toBe(join(dir, 'runs', 'nanu-lr2e-6-s1000-none-false'));
    const plain = loadRunSpec(join(dir, 'nanu.yaml'), ['output.name={model.name} x/y'], { cwd: dir });
    expect(plain.spec.output.name).toBe('nanu_x_y');
  });

  it('returns warnings with locations for settings that have no effect', () => {
    const dir = writeFiles({ 'run.yaml': `${MINIMAL}warmup_steps: 10\n` });
    const { warnings } = loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ path: 'warmup_steps', line: 7, message: expect.stringContaining('ignores warmup_steps') });
  });

  it('supports anchors and << merge keys for shared concept settings', () => {
    const text = [
      'model:',
      '  name: m',
      'concepts:',
      '  - &base',
      '    instance_prompt: a',
      '    instance_dir: da',
      '    repeats: 3',
      '  - <<: *base',
      '    instance_prompt: b',
      '    instance_dir: db',
      'steps: 1000',
    ].join('\n');
    const dir = writeFiles({ 'run.yaml': text });
    const { spec } = loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir });
    expect(spec.concepts.map((c) => [c.instance_prompt, c.repeats])).toEqual([
      ['a', 3],
      ['b', 3],
    ]);
  });

  it('reads unquoted exponents in the file as numbers (YAML 1.2)', () => {
    const dir = writeFiles({ 'run.yaml': `${MINIMAL}lr: 1e-6\neps: 1.0e-7\n` });
    const { spec } = loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir });
    expect([spec.lr, spec.eps]).toEqual([1e-6, 1e-7]);
  });

  it('a resolved spec, written out and loaded again, resolves to itself (runs/<name>/run.yaml)', () => {
    const dir = writeFiles({ 'run.yaml': `preset: person\n${MINIMAL}output:\n  name: "n-{lr}"\n` });
    const first = loadRunSpec(join(dir, 'run.yaml'), ['concepts[0].num_class_images=3', 'concepts[0].class_prompt=Unan', 'concepts[0].class_dir=cls'], { cwd: dir });
    const runDir = writeFiles({ 'run.yaml': toYaml(first.spec) });
    const again = loadRunSpec(join(runDir, 'run.yaml'), [], { cwd: tempDir() });
    expect(again.spec).toEqual(first.spec);
    expect(again.runDir).toBe(first.runDir);
  });

  it('orders keys as the schema does', () => {
    const dir = writeFiles({ 'run.yaml': `steps: 5\n${MINIMAL.replace('steps: 1000\n', '')}` });
    const keys = Object.keys(loadRunSpec(join(dir, 'run.yaml'), [], { cwd: dir }).spec);
    expect(keys.slice(0, 5)).toEqual(['preset', 'model', 'concepts', 'prep', 'steps']);
  });
});

describe('loadRunSpec: errors', () => {
  const load = (text: string, sets: string[] = []) => configErrorOf(() => resolveRunSpecText(text, 'run.yaml', sets, { cwd: tempDir() }));
  const where = (e: ReturnType<typeof load>) => e.issues.map((i) => `${i.file}:${i.line ?? '-'}:${i.column ?? '-'} ${i.path ?? ''}`);

  it('reports five different mistakes at once, each with its line, and exits 2', () => {
    const text = [
      'preset: persn', //                     1 enum typo
      'model:',
      '  name: nanu',
      'concepts:',
      '  - instance_prompt: nanU Unan',
      '    instance_dir: data/nanu',
      'steps: 100',
      'lr: fast', //                          8 wrong type
      'lr_schedular: cosine', //              9 misspelt key
      'resolution: 500', //                  10 not a multiple of 64
      'warmup_steps: 200', //                11 cross-field: more than steps
    ].join('\n');
    const e = load(text);
    expect(e.exitCode).toBe(EXIT_USAGE);
    expect(e.issues).toHaveLength(5);
    expect(e.issues.map((i) => [i.line, i.path])).toEqual([
      [1, 'preset'],
      [8, 'lr'],
      [9, 'lr_schedular'],
      [10, 'resolution'],
      [11, 'warmup_steps'],
    ]);
    expect(e.issues[0].hint).toBe('did you mean "person"?');
    expect(e.issues[2].hint).toBe('did you mean "lr_scheduler"?');
    expect(e.message).toBe('run.yaml: 5 problems in the run spec');
    expect(e.details[0]).toBe('run.yaml:1:9: preset: expected one of person, object, style; got "persn" (did you mean "person"?)');
  });

  it('YAML syntax errors give line and column, all of them', () => {
    const e = load('model:\n  name: [a, b\nconcepts: {\n');
    expect(e.issues.length).toBeGreaterThanOrEqual(2);
    for (const i of e.issues) {
      expect(i.message).toMatch(/^YAML syntax error/);
      expect(i.line).toBeGreaterThan(1);
      expect(i.column).toBeGreaterThan(0);
    }
  });

  it('duplicate keys are a syntax error at the second one', () => {
    const e = load(`${MINIMAL}steps: 200\n`);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatchObject({ line: 7, message: expect.stringContaining('same key appears twice') });
  });

  it('a document that is not a mapping', () => {
    const e = load('- a\n- b\n');
    expect(e.issues[0]).toMatchObject({ line: 1, message: expect.stringContaining('YAML mapping') });
  });

  it.each([
    ['unknown nested key', 'ema:\n  decai: 0.9\n', 'ema.decai', 'unknown key "decai"', 'did you mean "ema.decay"?'],
    ['key in the wrong place', 'decay: 0.99\n', 'decay', 'unknown key "decay"', 'did you mean "ema.decay"?'],
    ['concept key typo', '', 'concepts[0].instance_promt', 'unknown key', 'did you mean "concepts[0].instance_prompt"?'],
    ['enum case', 'mixed_precision: FP16\n', 'mixed_precision', 'expected one of auto, no, fp16, bf16; got "FP16"', 'did you mean "fp16"?'],
    ['enum typo', 'optimizer: adam8bit\n', 'optimizer', 'expected one of', 'did you mean "adamw8bit"?'],
    ['nested enum', 'preview:\n  sampler: eular_a\n', 'preview.sampler', 'expected one of', 'did you mean "euler_a"?'],
    ['type', 'batch_size: two\n', 'batch_size', 'expected an integer, got string "two"', undefined],
    ['quoted number', 'lr: "1e-6"\n', 'lr', 'expected a number, got string "1e-6"', 'write the number without quotes'],
    ['YAML 1.1 boolean', 'hflip: yes\n', 'hflip', 'expected a boolean, got string "yes"', 'write true or false (without quotes)'],
    ['scalar for a list', 'sample:\n  prompts: nanU\n', 'sample.prompts', 'expected a list or null, got string "nanU"', 'write a list, e.g. ["nanU"]'],
    ['integer', 'batch_size: 1.5\n', 'batch_size', 'expected an integer, got the number 1.5', undefined],
    ['minimum', 'batch_size: 0\n', 'batch_size', 'must be >= 1, got 0', undefined],
    ['exclusive maximum', 'ema:\n  decay: 1\n', 'ema.decay', 'must be < 1, got 1', undefined],
    ['multipleOf', 'resolution: 500\n', 'resolution', 'must be a multiple of 64', 'try 448 or 512'],
    ['pattern with synonym', 'device: gpu\n', 'device', 'expected auto, cpu, cuda or cuda:N; got "gpu"', 'did you mean "cuda"?'],
    ['list length', 'betas: [0.9]\n', 'betas', 'needs at least 2 items', undefined],
    ['empty string', 'output:\n  name: ""\n', 'output.name', 'must not be empty', undefined],
    ['mapping expected', 'ema: true\n', 'ema', 'expected a mapping, got boolean true', undefined],
    ['template key', 'output:\n  name: x-{lrr}\n', 'output.name', 'unknown key {lrr} in the name template', 'did you mean {lr}?'],
    ['template list', 'output:\n  name: x-{betas}\n', 'output.name', '{betas} is a list, not a single value', undefined],
  ])('%s', (_name, extra, path, message, hint) => {
    const text = _name === 'concept key typo' ? MINIMAL.replace('    instance_dir', '    instance_promt: x\n    instance_dir') : MINIMAL + extra;
    const e = load(text);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0].path).toBe(path);
    expect(e.issues[0].message).toContain(message);
    expect(e.issues[0].hint).toBe(hint);
    expect(e.issues[0].line).toBeGreaterThan(0);
  });

  it('missing required keys point at the mapping that lacks them', () => {
    const e = load('model:\n  name: m\nconcepts:\n  - instance_dir: x\nsteps: 3\n');
    expect(e.issues).toEqual([expect.objectContaining({ line: 4, path: 'concepts[0]', message: 'missing required key "instance_prompt" in concepts[0]' })]);
    const top = load('steps: 3\n');
    expect(top.issues.map((i) => i.message)).toEqual([
      'missing required key "model" at the top level',
      'missing required key "concepts" at the top level',
    ]);
    expect(top.issues[0].line).toBeUndefined();
  });

  it.each([
    ['neither steps nor epochs', MINIMAL.replace('steps: 1000\n', ''), 'steps', 'give steps or epochs'],
    ['both steps and epochs', `${MINIMAL}epochs: 3\n`, 'epochs', 'not both'],
    ['warmup more than steps', `${MINIMAL}warmup_steps: 1001\n`, 'warmup_steps', 'more than steps'],
    ['prior preservation without class prompt', MINIMAL.replace('    instance_dir: data/nanu\n', '    instance_dir: data/nanu\n    num_class_images: 5\n    class_dir: c\n'), 'concepts[0]', 'needs class_prompt'],
    ['prior preservation without class dir', MINIMAL.replace('    instance_dir: data/nanu\n', '    instance_dir: data/nanu\n    num_class_images: 5\n    class_prompt: Unan\n'), 'concepts[0]', 'needs class_dir'],
    ['raw_dir is instance_dir', MINIMAL.replace('    instance_dir: data/nanu\n', '    instance_dir: data/nanu\n    raw_dir: data/nanu\n'), 'concepts[0].raw_dir', 'the same folder'],
    ['from and arch', MINIMAL.replace('  name: nanu\n', '  name: nanu\n  from: a.safetensors\n  arch: tiny\n'), 'model.arch', 'exclude each other'],
  ])('cross-field rule: %s', (_name, text, path, message) => {
    const e = load(text);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0].path).toBe(path);
    expect(e.issues[0].message).toContain(message);
  });

  it('cross-field and schema errors come together', () => {
    const e = load(`${MINIMAL.replace('steps: 1000\n', '')}lr: 0\n`);
    expect(e.issues.map((i) => i.path).sort()).toEqual(['lr', 'steps']);
  });

  it.each([
    ['no equals sign', 'lr', undefined, 'expected key=value'],
    ['unknown key', 'lr_rate=1', 'lr_rate', 'unknown key "lr_rate"'],
    ['unknown nested key', 'ema.decai=0.9', 'ema.decai', 'unknown key "ema.decai"'],
    ['bad path syntax', 'ema..decay=1', undefined, 'empty segment'],
    ['index into a mapping', 'ema[0]=1', 'ema[0]', 'ema is not a list'],
    ['key under a scalar', 'lr.x=1', 'lr.x', 'has no keys inside it'],
    ['invalid YAML value', 'betas=[0.9, 0.99', 'betas', 'not valid YAML'],
    ['index past the end', 'concepts[3].repeats=2', 'concepts[3].repeats', 'index 3 is past the end'],
    ['value of the wrong type', 'steps=abc', 'steps', 'expected an integer or null, got string "abc"'],
    ['enum value', 'optimizer=lion8bit', 'optimizer', 'expected one of'],
  ])('--set: %s', (_name, arg, path, message) => {
    const e = load(MINIMAL, [arg]);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0].file).toBe(`--set ${arg}`);
    expect(e.issues[0].path).toBe(path);
    expect(e.issues[0].message).toContain(message);
  });

  it('--set unknown keys suggest the full path', () => {
    expect(load(MINIMAL, ['concepts[0].instance_promt=x']).issues[0].hint).toBe('did you mean "concepts[0].instance_prompt"?');
    expect(load(MINIMAL, ['warmup=3']).issues[0].hint).toBe('did you mean "warmup_steps"?');
  });

  it('a preset value that conflicts with the file points at the preset line that set it', () => {
    const e = load(`preset: person\n${MINIMAL.replace('steps: 1000', 'steps: 10')}save_every: 5\n`);
    expect(e.issues).toEqual([
      expect.objectContaining({ file: presetFile('person'), line: lineOf(presetFile('person'), 'warmup_steps:'), path: 'warmup_steps', message: 'warmup_steps (15) is more than steps (10)' }),
    ]);
  });

  it('a missing or unreadable file is a ConfigError', () => {
    const dir = tempDir();
    expect(configErrorOf(() => loadRunSpec(join(dir, 'nope.yaml'))).message).toContain('no such file');
    expect(configErrorOf(() => loadRunSpec(dir)).message).toContain('is a folder');
    writeFileSync(join(dir, 'model.safetensors'), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]));
    const binary = configErrorOf(() => loadRunSpec(join(dir, 'model.safetensors')));
    expect(binary.message).toMatch(/is not a run spec: it holds binary data/);
    expect(binary.issues).toHaveLength(1);
  });

  it('a broken preset file is reported with its own location', () => {
    const presetDir = writeFiles({ 'person.yaml': 'lr: [\n', 'object.yaml': 'lr: fast\n' });
    const broken = configErrorOf(() => resolveRunSpecText(`preset: person\n${MINIMAL}`, 'run.yaml', [], { presetDir, cwd: presetDir }));
    expect(broken.issues[0].file).toBe(join(presetDir, 'person.yaml'));
    expect(broken.issues[0].line).toBeGreaterThan(0);
    const invalid = configErrorOf(() => resolveRunSpecText(`preset: object\n${MINIMAL}`, 'run.yaml', [], { presetDir, cwd: presetDir }));
    expect(invalid.issues[0]).toMatchObject({ file: join(presetDir, 'object.yaml'), line: 1, path: 'lr' });
  });
});
