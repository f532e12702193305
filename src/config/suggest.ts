/** "Did you mean" for misspelt keys and enum values. */

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

const normalize = (s: string) => s.toLowerCase().replace(/[-\s]/g, '_');

/**
 * The candidate closest to `input`, if it is close enough to be a plausible typo: case, `-`/`_`
 * differences are free, then up to a third of the length in edits (at least 1, at most 3).
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const n = normalize(input);
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const nc = normalize(c);
    let d = editDistance(n, nc);
    // A candidate that contains the input whole (or the reverse) is a likely meaning: `8bit` → `adamw8bit`.
    if (d > 0 && n.length >= 3 && (nc.includes(n) || n.includes(nc))) d = Math.min(d, 2);
    if (d < bestD) [best, bestD] = [c, d];
  }
  const limit = Math.min(3, Math.max(1, Math.floor(n.length / 3)));
  return bestD <= limit ? best : undefined;
}
