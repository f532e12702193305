/**
 * Perceptual hash (pHash): 32×32 greyscale → 2-D DCT-II → the 8×8 lowest frequencies → one bit per
 * coefficient, set when above the median of the 63 AC coefficients. Near-identical images (re-encoded,
 * resized, slightly recoloured) differ in few bits; unrelated images in about half of them.
 */
export const PHASH_INPUT = 32;
const LOW = 8;

/** Two images are reported as near-duplicates at or below this Hamming distance (of 64 bits). */
export const NEAR_DUPLICATE_DISTANCE = 8;

const cosTable: Float64Array = (() => {
  const n = PHASH_INPUT;
  const t = new Float64Array(LOW * n);
  for (let u = 0; u < LOW; u++) for (let x = 0; x < n; x++) t[u * n + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n));
  return t;
})();

/** `grey` is 32×32 8-bit luminance, row-major. Returns 16 hex digits. */
export function phashFromGrey(grey: Uint8Array): string {
  const n = PHASH_INPUT;
  if (grey.length !== n * n) throw new Error(`phash needs ${n}×${n} pixels, got ${grey.length}`);
  // Separable DCT, only the LOW×LOW block we need: rows first, then columns.
  const rows = new Float64Array(n * LOW); // [y][u]
  for (let y = 0; y < n; y++) {
    for (let u = 0; u < LOW; u++) {
      let s = 0;
      for (let x = 0; x < n; x++) s += grey[y * n + x] * cosTable[u * n + x];
      rows[y * LOW + u] = s;
    }
  }
  const coef = new Float64Array(LOW * LOW); // [v][u]
  for (let v = 0; v < LOW; v++) {
    for (let u = 0; u < LOW; u++) {
      let s = 0;
      for (let y = 0; y < n; y++) s += rows[y * LOW + u] * cosTable[v * n + y];
      coef[v * LOW + u] = s;
    }
  }
  const ac = Array.from(coef.subarray(1)).sort((a, b) => a - b);
  const median = ac[ac.length >> 1];
  let bits = 0n;
  for (let i = 0; i < LOW * LOW; i++) bits = (bits << 1n) | (i > 0 && coef[i] > median ? 1n : 0n);
  return bits.toString(16).padStart(16, '0');
}

export function hammingDistance(a: string, b: string): number {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let n = 0;
  while (x) {
    x &= x - 1n;
    n++;
  }
  return n;
}

export interface NearDuplicate {
  a: string;
  b: string;
  distance: number;
}

/** Every pair of items whose hashes are within `maxDistance`, in input order. */
export function findNearDuplicates(items: { id: string; phash: string }[], maxDistance = NEAR_DUPLICATE_DISTANCE): NearDuplicate[] {
  const out: NearDuplicate[] = [];
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      const d = hammingDistance(items[i].phash, items[j].phash);
      if (d <= maxDistance) out.push({ a: items[i].id, b: items[j].id, distance: d });
    }
  }
  return out;
}

/** Pairs joined into groups (connected components), members in first-seen order: one warning per group. */
export function groupNearDuplicates(pairs: NearDuplicate[]): { members: string[]; maxDistance: number }[] {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  for (const { a, b } of pairs) {
    for (const x of [a, b]) if (!parent.has(x)) parent.set(x, x);
    const [ra, rb] = [find(a), find(b)];
    if (ra !== rb) parent.set(rb, ra);
  }
  const groups = new Map<string, { members: string[]; maxDistance: number }>();
  for (const x of parent.keys()) {
    const r = find(x);
    if (!groups.has(r)) groups.set(r, { members: [], maxDistance: 0 });
    groups.get(r)!.members.push(x);
  }
  for (const p of pairs) {
    const g = groups.get(find(p.a))!;
    g.maxDistance = Math.max(g.maxDistance, p.distance);
  }
  return [...groups.values()];
}
