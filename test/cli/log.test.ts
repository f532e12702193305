import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { tempDir } from '../config/helpers.js';

describe('createLogger', () => {
  it('writes JSON lines with level, ISO time, message and fields; respects the level; creates the folder', () => {
    const file = join(tempDir(), 'runs', 'x', 'log.jsonl');
    const log = createLogger({ file, level: 'info', base: { run: 'x' } });
    log.debug('hidden');
    log.info({ step: 3, loss: 0.25 }, 'step');
    log.warn('careful');
    log.close();
    log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 30, run: 'x', step: 3, loss: 0.25, msg: 'step' });
    expect(lines[0].time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[1]).toMatchObject({ level: 40, msg: 'careful' });
    expect(lines[0]).not.toHaveProperty('pid');
  });

  it('appends to an existing log (a resumed run keeps its history)', () => {
    const file = join(tempDir(), 'log.jsonl');
    for (const msg of ['first', 'second']) {
      const log = createLogger({ file });
      log.info(msg);
      log.close();
    }
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('without a file logs nowhere and does not throw', () => {
    const log = createLogger({ level: 'trace' });
    expect(() => {
      log.info('x');
      log.close();
    }).not.toThrow();
    expect(log.isLevelEnabled('info')).toBe(false);
  });
});
