import { describe, expect, it } from 'vitest';
import { applySet, closest, formatNumber, formatPath, parsePath, parseSets } from '../../src/config/index.js';
import { editDistance } from '../../src/config/suggest.js';

describe('key paths', () => {
  it.each([
    ['lr', ['lr']],
    ['ema.decay', ['ema', 'decay']],
    ['concepts[0].instance_prompt', ['concepts', 0, 'instance_prompt']],
    ['concepts.1.repeats', ['concepts', 1, 'repeats']],
    ['sample.seeds[2]', ['sample', 'seeds', 2]],
  ])('parsePath(%s)', (text, path) => {
    expect(parsePath(text)).toEqual(path);
    expect(parsePath(formatPath(path))).toEqual(path);
  });

  it.each(['', 'a..b', 'a.', '.a', '[0]', 'a b', 'a[x]', 'a]'])('parsePath rejects %j', (text) => {
    expect(typeof parsePath(text)).toBe('string');
  });
});

describe('--set values', () => {
  it.each([
    ['lr=2e-6', ['lr'], 2e-6],
    ['steps=8000', ['steps'], 8000],
    ['hflip=true', ['hflip'], true],
    ['betas=[0.9, 0.99]', ['betas'], [0.9, 0.99]],
    ['min_snr_gamma=', ['min_snr_gamma'], null],
    ['steps=null', ['steps'], null],
    ['ema={enabled: true, decay: 0.99}', ['ema'], { enabled: true, decay: 0.99 }],
    ['output.name={spec}-lr{lr}', ['output', 'name'], '{spec}-lr{lr}'],
    ['concepts[0].instance_prompt=[filewords], nanU', ['concepts', 0, 'instance_prompt'], '[filewords], nanU'],
    ['concepts[0].class_prompt=null', ['concepts', 0, 'class_prompt'], null],
    ['concepts[0].class_prompt="null"', ['concepts', 0, 'class_prompt'], 'null'],
    ['concepts[0].class_prompt=123', ['concepts', 0, 'class_prompt'], '123'],
    ['device=cuda:1', ['device'], 'cuda:1'],
    ['sample.negative=a=b', ['sample', 'negative'], 'a=b'],
  ])('%s', (raw, path, value) => {
    const { sets, issues } = parseSets([raw]);
    expect(issues).toEqual([]);
    expect(sets).toEqual([{ raw, where: `--set ${raw}`, path, value }]);
  });

  it('a set from another option is named by it in messages', () => {
    const { sets, issues } = parseSets([{ arg: 'device=cuda:1', where: '--device cuda:1' }, { arg: 'nope=1', where: '--nope 1' }]);
    expect(sets).toEqual([{ raw: 'device=cuda:1', where: '--device cuda:1', path: ['device'], value: 'cuda:1' }]);
    expect(issues).toEqual([expect.objectContaining({ file: '--nope 1', path: 'nope' })]);
  });

  it('applySet creates mappings and appends list items, refuses gaps', () => {
    const target: Record<string, unknown> = { concepts: [{ instance_prompt: 'a' }] };
    const [a, b, c] = parseSets(['ema.decay=0.99', 'concepts[1].repeats=2', 'concepts[5].repeats=2']).sets;
    expect(applySet(target, a)).toBeUndefined();
    expect(applySet(target, b)).toBeUndefined();
    expect(target).toEqual({ concepts: [{ instance_prompt: 'a' }, { repeats: 2 }], ema: { decay: 0.99 } });
    expect(applySet(target, c)?.message).toContain('index 5 is past the end');
  });
});

describe('did you mean', () => {
  it('edit distance counts transpositions as one edit', () => {
    expect(editDistance('lr', 'lr')).toBe(0);
    expect(editDistance('decay', 'deacy')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it.each([
    ['lr_schedular', ['lr_scheduler', 'lr_power'], 'lr_scheduler'],
    ['FP16', ['no', 'fp16', 'bf16'], 'fp16'],
    ['adam8bit', ['adamw', 'adamw8bit', 'lion'], 'adamw8bit'],
    ['gradient-checkpointing', ['gradient_checkpointing'], 'gradient_checkpointing'],
    ['zzz', ['lr', 'steps'], undefined],
    ['banana', ['lr', 'steps'], undefined],
  ])('closest(%s)', (input, candidates, want) => {
    expect(closest(input, candidates)).toBe(want);
  });
});

describe('formatNumber (run names)', () => {
  it.each([
    [2e-6, '2e-6'],
    [1.5e-7, '1.5e-7'],
    [8000, '8000'],
    [0.5, '0.5'],
    [0.0001, '1e-4'],
    [1e21, '1e+21'],
  ])('%s → %s', (n, s) => {
    expect(formatNumber(n)).toBe(s);
  });
});
