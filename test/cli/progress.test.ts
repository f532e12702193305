import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration } from '../../src/cli/progress.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, write: (s: string) => void chunks.push(s) } };
}

describe('createProgress', () => {
  it('without a TTY prints plain lines at most once per interval, and a final line', () => {
    const { chunks, stream } = sink(false);
    let t = 0;
    const p = createProgress({ label: 'train', total: 100, unit: 'step', stream, intervalMs: 1000, now: () => t });
    for (let i = 1; i <= 100; i++) {
      t += 50; // 20 steps/s
      p.update(i, { loss: 0.5 / i });
    }
    p.stop();
    p.stop();
    const text = chunks.join('');
    expect(text).not.toMatch(/\x1b/);
    const lines = text.trim().split('\n');
    // first update, then every 1000 ms (20 updates) and the last one
    expect(lines.length).toBe(6);
    expect(lines[0]).toMatch(/^train: 1\/100 \(1%\) loss=0\.5000 20\.00 step\/s eta 5s$/);
    expect(lines[lines.length - 1]).toMatch(/^train: 100\/100 \(100%\) loss=0\.005000 20\.00 step\/s eta 0s$/);
  });

  it('increment adds to the position', () => {
    const { chunks, stream } = sink(false);
    const p = createProgress({ label: 'prep', total: 3, stream, intervalMs: 0, now: () => 1000 });
    p.increment();
    p.increment(2);
    p.stop();
    expect(chunks.join('')).toMatch(/prep: 3\/3 \(100%\)/);
  });

  it('silent mode prints nothing', () => {
    const { chunks, stream } = sink(true);
    const p = createProgress({ label: 'x', total: 2, stream, mode: 'silent' });
    p.update(1);
    p.stop();
    expect(chunks).toEqual([]);
  });

  it('on a TTY draws a cli-progress bar', () => {
    const { chunks, stream } = sink(true);
    const p = createProgress({ label: 'sample', total: 4, stream: Object.assign(stream, { cursorTo() {}, clearLine() {}, moveCursor() {}, columns: 120 }) });
    p.update(2, { img: 2 });
    p.stop();
    const text = chunks.join('');
    expect(text).toContain('sample [');
    expect(text).toContain('2/4');
    expect(text).toContain('img=2');
  });

  it.each([
    [5, '5s'],
    [65, '1m05s'],
    [3725, '1h02m'],
    [Infinity, '?'],
  ])('formatDuration(%s) = %s', (s, want) => {
    expect(formatDuration(s)).toBe(want);
  });
});
