import { describe, expect, it } from 'vitest';
import { LossScaler } from '../../src/train/loss-scale.js';
import { ops, scope, tensor } from '../../src/core/index.js';

describe('LossScaler', () => {
  it('starts at 2^16, halves and skips on overflow, doubles after 2000 clean steps', () => {
    const s = new LossScaler();
    expect(s.scale).toBe(65536);
    expect(s.gradScale()).toBe(1 / 65536);
    expect(s.update(true)).toBe(false);
    expect(s.scale).toBe(32768);
    for (let i = 0; i < 1999; i++) expect(s.update(false)).toBe(true);
    expect(s.scale).toBe(32768);
    expect(s.update(false)).toBe(true);
    expect(s.scale).toBe(65536);
    expect(s.state()).toEqual({ scale: 65536, growthTracker: 0 });
    // an overflow restarts the count of clean steps
    for (let i = 0; i < 1500; i++) s.update(false);
    s.update(true);
    for (let i = 0; i < 1999; i++) s.update(false);
    expect(s.scale).toBe(32768);
    s.update(false);
    expect(s.scale).toBe(65536);
  });

  it('stays within [minScale, maxScale]', () => {
    const s = new LossScaler({ initScale: 4 });
    for (let i = 0; i < 5; i++) s.update(true);
    expect(s.scale).toBe(1);
    const g = new LossScaler({ initScale: 2 ** 23, growthInterval: 1 });
    g.update(false);
    g.update(false);
    expect(g.scale).toBe(2 ** 24);
    expect(() => new LossScaler({ backoffFactor: 1 })).toThrow(/backoffFactor/);
    expect(() => new LossScaler({ growthInterval: 0 })).toThrow(/growthInterval/);
  });

  it('resumes exactly from its state', () => {
    const seq = Array.from({ length: 9000 }, (_, i) => i % 2777 === 100 || i % 3001 === 5);
    const whole = new LossScaler();
    const decisions = seq.map((o) => whole.update(o));
    const first = new LossScaler();
    const part = seq.slice(0, 4321).map((o) => first.update(o));
    const saved = JSON.parse(JSON.stringify(first.state()));
    const resumed = new LossScaler({}, saved);
    part.push(...seq.slice(4321).map((o) => resumed.update(o)));
    expect(part).toEqual(decisions);
    expect(resumed.state()).toEqual(whole.state());
    expect(() => new LossScaler({}, { scale: 65536, growthTracker: 2000 })).toThrow(/growthTracker/);
    expect(() => new LossScaler({}, { scale: 0.5, growthTracker: 0 })).toThrow(/scale/);
  });

  it('drives the overflow check and the folded unscale of an AdamW step', () =>
    scope(() => {
      const s = new LossScaler({ initScale: 1024 });
      const p = tensor([0.5, -0.25], [2]);
      const m = tensor([0, 0], [2]), v = tensor([0, 0], [2]);
      const bad = tensor([1, Infinity], [2]);
      expect(s.update(ops.checkFinite([bad]).read()[0] === 1)).toBe(false);
      expect(s.scale).toBe(512);
      // gradients of a loss scaled by 512: the step with gradScale 1/512 equals the unscaled one
      const g = tensor([0.3 * 512, -0.1 * 512], [2]);
      expect(s.update(ops.checkFinite([g]).read()[0] === 1)).toBe(true);
      ops.adamw(p, g, m, v, { lr: 0.1, step: 1, weightDecay: 0, gradScale: s.gradScale() });
      const q = tensor([0.5, -0.25], [2]);
      ops.adamw(q, tensor([0.3, -0.1], [2]), tensor([0, 0], [2]), tensor([0, 0], [2]), { lr: 0.1, step: 1, weightDecay: 0 });
      expect(Array.from(p.read() as Float32Array)).toEqual(Array.from(q.read() as Float32Array));
    }));
});
