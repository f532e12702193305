import { describe, expect, it } from 'vitest';
import { DbtError, UsageError } from '../../src/errors.js';
import { coreInfo, cudaAvailable, cudaStatus, empty, resolveDevice } from '../../src/core/index.js';

describe('device selection', () => {
  it('reports CUDA consistently with the devices the core lists', () => {
    const s = cudaStatus();
    expect(typeof s.built).toBe('boolean');
    expect(s.available).toBe(cudaAvailable());
    expect(coreInfo().devices.includes('cuda')).toBe(s.available);
    if (s.available) {
      expect(s.reason).toBe('');
      expect(s.devices.length).toBeGreaterThan(0);
      expect(s.devices.some((d) => d.index === s.device)).toBe(true);
    } else {
      expect(s.reason.length).toBeGreaterThan(10); // says why
      expect(s.device).toBe(-1);
    }
    if (s.built) expect(s.archs).toMatch(/^\d+( \d+)* \(\+PTX \d+\)$/);
  });

  it('auto picks CUDA exactly when it is available; cpu is always the CPU', () => {
    expect(resolveDevice('cpu')).toEqual({ device: 'cpu', index: 0, description: 'cpu' });
    const auto = resolveDevice('auto');
    expect(auto.device).toBe(cudaAvailable() ? 'cuda' : 'cpu');
    if (auto.device === 'cuda') expect(auto.description).toMatch(/^cuda:\d+ \(.+, sm_\d+, [\d.]+ GiB\)$/);
  });

  it('asking for CUDA without it fails with the reason; with it, tensors live there', () => {
    if (!cudaAvailable()) {
      expect(() => resolveDevice('cuda')).toThrow(DbtError);
      expect(() => resolveDevice('cuda:0')).toThrow(cudaStatus().reason);
      expect(() => empty([2], { device: 'cuda' })).toThrow(/cuda/);
    } else {
      expect(resolveDevice('cuda').device).toBe('cuda');
      const t = empty([3], { device: 'cuda' });
      expect(t.device).toBe('cuda');
      t.dispose();
    }
  });

  it('rejects malformed device names as usage errors', () => {
    for (const bad of ['gpu', 'cuda:', 'cpu:1', 'auto:0', 'cuda:x', ''])
      expect(() => resolveDevice(bad), bad).toThrow(UsageError);
  });
});
