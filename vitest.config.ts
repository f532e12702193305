import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // 2-core CI machines: native ops are multi-threaded themselves, keep file-level parallelism modest.
    maxWorkers: 2,
  },
});
