/**
 * Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
 * Output depends only on (key, counter), so any element of any stream can be produced independently and
 * in any order — no hidden state. Known-answer vectors from the Random123 distribution are in the tests.
 */
const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const M0_LO = M0 & 0xffff;
const M0_HI = M0 >>> 16;
const M1_LO = M1 & 0xffff;
const M1_HI = M1 >>> 16;

/** High 32 bits of a 32×32-bit product, with `a` given as 16-bit halves. */
function mulhi(aLo: number, aHi: number, b: number): number {
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const lolo = aLo * bLo;
  const hilo = aHi * bLo;
  const lohi = aLo * bHi;
  const cross = (lolo >>> 16) + (hilo & 0xffff) + lohi; // < 2^33, exact in a double
  return (aHi * bHi + (hilo >>> 16) + Math.floor(cross / 65536)) >>> 0;
}

/** Philox4x32-10 of counter (c0..c3) under key (k0, k1); writes 4 words to `out`. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0_LO, M0_HI, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1_LO, M1_HI, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** FNV-1a over UTF-16 code units with a chosen basis: two different bases give two independent 32-bit hashes. */
export function hash32(s: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A stream of random words addressed by (seed, name, index): the Philox key is the 64-bit seed, the counter
 * holds the element block index and a 64-bit hash of the stream's name (e.g. a tensor key).
 */
export class CounterStream {
  private readonly k0: number;
  private readonly k1: number;
  private readonly n0: number;
  private readonly n1: number;
  private readonly block = new Uint32Array(4);

  constructor(seed: number, name: string) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    this.k0 = seed >>> 0;
    this.k1 = Math.floor(seed / 2 ** 32) >>> 0;
    this.n0 = hash32(name);
    this.n1 = hash32(name, 0x9747b28c);
  }

  /** Fills `out` with uniform u32 words number `start`, `start+1`, … of this stream. */
  words(out: Uint32Array, start = 0): void {
    if (start % 4 !== 0) throw new RangeError('start must be a multiple of 4');
    const b = this.block;
    const n = out.length;
    let blockIndex = start / 4;
    for (let i = 0; i < n; i += 4, blockIndex++) {
      philox4x32(blockIndex >>> 0, Math.floor(blockIndex / 2 ** 32) >>> 0, this.n0, this.n1, this.k0, this.k1, b);
      const m = Math.min(4, n - i);
      for (let j = 0; j < m; j++) out[i + j] = b[j];
    }
  }

  /** Uniform floats in [lo, hi): 24 random bits each. */
  uniform(out: Float32Array, lo: number, hi: number): void {
    const w = new Uint32Array(out.length);
    this.words(w);
    const scale = (hi - lo) * 2 ** -24;
    for (let i = 0; i < out.length; i++) out[i] = lo + (w[i] >>> 8) * scale;
  }

  /** Normal(mean, std) floats by Box–Muller on consecutive word pairs. */
  normal(out: Float32Array, mean: number, std: number): void {
    const n = out.length;
    const w = new Uint32Array(n + (n & 1));
    this.words(w);
    for (let i = 0; i < n; i += 2) {
      const u1 = ((w[i] >>> 8) + 1) * 2 ** -24; // (0, 1]: log is finite
      const u2 = (w[i + 1] >>> 8) * 2 ** -24;
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
    }
  }
}
