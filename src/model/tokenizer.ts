/**
 * The CLIP byte-level BPE tokenizer of SD1.x (REFERENCE.md §4), from OpenAI's
 * `bpe_simple_vocab_16e6.txt.gz` or Hugging Face's `vocab.json` + `merges.txt`. The tiny tokenizer shipped
 * with the project is the same algorithm with no merges (514 entries), generated here, not read from disk.
 */
import { gunzipSync } from 'node:zlib';
import { DbtError } from '../errors.js';
import { TINY_VOCAB_SIZE } from './arch.js';
import { htmlUnescape } from './html-entities.js';

export const SOT = '<|startoftext|>';
export const EOT = '<|endoftext|>';
export const CONTEXT_LENGTH = 77;
/** Number of merges CLIP uses from the openai vocabulary file: lines[1 : 49152-256-2+1]. */
export const CLIP_MERGES = 49152 - 256 - 2;

const TOKEN_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2's reversible byte → printable-character map, in its original order (the vocabulary's first 256 entries). */
export function bytesToUnicode(): [number, string][] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return bs.map((b, i) => [b, String.fromCodePoint(cs[i])]);
}

export interface TokenizedPrompt {
  /** Exactly `maxLength` ids: start, tokens, end, then end-token padding. */
  ids: Int32Array;
  /** How many tokens did not fit and were dropped (0 when the prompt fits). */
  truncated: number;
}

export class ClipTokenizer {
  readonly encoder: Map<string, number>;
  readonly merges: [string, string][];
  readonly bos: number;
  readonly eos: number;
  private readonly ranks = new Map<string, number>();
  private readonly byteEncoder: string[] = new Array(256);
  private readonly cache = new Map<string, string[]>();

  /** `source` says where the vocabulary came from (a path, "tiny", …) for model.json and messages. */
  constructor(encoder: Map<string, number>, merges: [string, string][], readonly source: string) {
    this.encoder = encoder;
    this.merges = merges;
    merges.forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i));
    for (const [b, c] of bytesToUnicode()) this.byteEncoder[b] = c;
    const bos = encoder.get(SOT);
    const eos = encoder.get(EOT);
    if (bos === undefined || eos === undefined) throw new DbtError(`${source}: the vocabulary has no ${SOT} / ${EOT} tokens: not a CLIP tokenizer`);
    this.bos = bos;
    this.eos = eos;
    this.cache.set(SOT, [SOT]);
    this.cache.set(EOT, [EOT]);
  }

  get vocabSize(): number {
    return this.encoder.size;
  }

  /** Vocabulary built the openai way: bytes, bytes + `</w>`, one entry per merge, then the two special tokens. */
  static fromMerges(merges: [string, string][], source: string): ClipTokenizer {
    const vocab = bytesToUnicode().map(([, c]) => c);
    const words = [...vocab, ...vocab.map((v) => `${v}</w>`), ...merges.map(([a, b]) => a + b), SOT, EOT];
    return new ClipTokenizer(new Map(words.map((w, i) => [w, i])), merges, source);
  }

  /** OpenAI's `bpe_simple_vocab_16e6.txt(.gz)`: a header line, then merges; CLIP uses the first 48,894. */
  static fromOpenAiVocab(bytes: Uint8Array, source: string): ClipTokenizer {
    const isGzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
    const text = (isGzip ? gunzipSync(bytes) : Buffer.from(bytes)).toString('utf8');
    const lines = text.split('\n').slice(1, CLIP_MERGES + 1);
    const merges = lines.map((l, i) => parseMerge(l, `${source}: line ${i + 2}`));
    return ClipTokenizer.fromMerges(merges, source);
  }

  /** Hugging Face `vocab.json` (token → id) and `merges.txt` (`#version` header, then merges). */
  static fromHf(vocabJson: string, mergesTxt: string, source: string): ClipTokenizer {
    let vocab: unknown;
    try {
      vocab = JSON.parse(vocabJson);
    } catch (e) {
      throw new DbtError(`${source}: vocab.json is not valid JSON (${(e as Error).message})`);
    }
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw new DbtError(`${source}: vocab.json is not an object of token → id`);
    const encoder = new Map<string, number>();
    for (const [k, v] of Object.entries(vocab as Record<string, unknown>)) {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new DbtError(`${source}: vocab.json id of ${JSON.stringify(k)} is not an integer`);
      encoder.set(k, v);
    }
    const lines = mergesTxt.split('\n');
    const merges: [string, string][] = [];
    lines.forEach((l, i) => {
      if ((i === 0 && l.startsWith('#version')) || l.trim() === '') return;
      merges.push(parseMerge(l, `${source}: merges.txt line ${i + 1}`));
    });
    return new ClipTokenizer(encoder, merges, source);
  }

  /** The tokenizer of the `tiny` architecture: byte-level, no merges, 514 entries. */
  static tiny(): ClipTokenizer {
    const t = ClipTokenizer.fromMerges([], 'tiny');
    if (t.vocabSize !== TINY_VOCAB_SIZE) throw new DbtError(`internal: tiny vocabulary has ${t.vocabSize} entries`);
    return t;
  }

  /** HF-format files for this vocabulary (written into model directories). */
  toHfFiles(): { vocabJson: string; mergesTxt: string } {
    const vocab: Record<string, number> = {};
    for (const [k, v] of [...this.encoder].sort((a, b) => a[1] - b[1])) vocab[k] = v;
    return { vocabJson: JSON.stringify(vocab), mergesTxt: `#version: 0.2\n${this.merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n` };
  }

  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = Array.from(token);
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else merged.push(word[i++]);
      }
      word = merged;
    }
    this.cache.set(token, word);
    return word;
  }

  /** Token ids of `text` without start/end tokens. */
  encode(text: string): number[] {
    const cleaned = htmlUnescape(htmlUnescape(text)).replace(/\s+/gu, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of cleaned.matchAll(TOKEN_PATTERN)) {
      const piece = m[0];
      const mapped = piece === SOT || piece === EOT ? piece : Array.from(Buffer.from(piece, 'utf8'), (b) => this.byteEncoder[b]).join('');
      for (const sym of this.bpe(mapped)) {
        const id = this.encoder.get(sym);
        if (id === undefined) throw new DbtError(`${this.source}: the vocabulary has no entry for ${JSON.stringify(sym)} (incomplete vocab.json?)`);
        ids.push(id);
      }
    }
    return ids;
  }

  /** SD1 framing: [start] + ids + [end], truncated to `maxLength` (end token kept) and padded with the end token. */
  tokenize(text: string, maxLength = CONTEXT_LENGTH): TokenizedPrompt {
    const body = this.encode(text);
    const room = maxLength - 2;
    const ids = new Int32Array(maxLength).fill(this.eos);
    ids[0] = this.bos;
    const kept = Math.min(room, body.length);
    for (let i = 0; i < kept; i++) ids[1 + i] = body[i];
    ids[1 + kept] = this.eos;
    return { ids, truncated: body.length - kept };
  }

  /** [n, maxLength] ids, row-major. */
  tokenizeBatch(texts: string[], maxLength = CONTEXT_LENGTH): Int32Array {
    const out = new Int32Array(texts.length * maxLength);
    texts.forEach((t, i) => out.set(this.tokenize(t, maxLength).ids, i * maxLength));
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    const decoder = new Map<number, string>();
    for (const [k, v] of this.encoder) decoder.set(v, k);
    const byteDecoder = new Map(bytesToUnicode().map(([b, c]) => [c, b]));
    const text = Array.from(ids, (id) => decoder.get(id) ?? '').join('');
    const bytes: number[] = [];
    for (const ch of text.replaceAll('</w>', ' ')) {
      const b = byteDecoder.get(ch);
      if (b !== undefined) bytes.push(b);
      else bytes.push(...Buffer.from(ch, 'utf8'));
    }
    return Buffer.from(bytes).toString('utf8').trim();
  }
}

function parseMerge(line: string, where: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new DbtError(`${where}: expected a merge "a b", found ${JSON.stringify(line.slice(0, 40))}`);
  return [parts[0], parts[1]];
}
