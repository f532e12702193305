import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SD15_ARCH, TINY_ARCH } from '../../src/model/arch.js';
import { htmlUnescape } from '../../src/model/html-entities.js';
import { ClipTokenizer } from '../../src/model/tokenizer.js';
import { findTokenizer, loadTokenizer } from '../../src/model/tokenizer-files.js';
import { tempDir } from './helpers.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const VOCAB = join(REPO, '..', 'shared', 'clip', 'bpe_simple_vocab_16e6.txt.gz');
const hasVocab = existsSync(VOCAB);
if (!hasVocab) console.warn(`SKIPPING the real CLIP vocabulary tests: ${VOCAB} is absent (it is test data outside the repository)`);

const EXPECTED: [string, number[]][] = [
  ['a photo of a cat', [49406, 320, 1125, 539, 320, 2368, 49407]],
  ['a photo of sks person', [49406, 320, 1125, 539, 48136, 2533, 49407]],
  ['Hello, World!', [49406, 3306, 267, 1002, 256, 49407]],
  ['123', [49406, 272, 273, 274, 49407]],
  ["don't won't can't", [49406, 847, 713, 1749, 713, 753, 713, 49407]],
];

describe.runIf(hasVocab)('CLIP tokenizer with the real vocabulary', () => {
  // Built only when the file exists: vitest still collects a skipped describe's body.
  const tok = hasVocab ? ClipTokenizer.fromOpenAiVocab(readFileSync(VOCAB), VOCAB) : (undefined as unknown as ClipTokenizer);

  it('has 49,408 entries with the special tokens at 49406/49407', () => {
    expect(tok.vocabSize).toBe(49408);
    expect([tok.bos, tok.eos]).toEqual([49406, 49407]);
  });

  it.each(EXPECTED)('%j → REFERENCE.md §4 ids, padded with 49407 to 77', (text, ids) => {
    const r = tok.tokenize(text);
    expect(r.truncated).toBe(0);
    expect([...r.ids]).toEqual([...ids, ...new Array(77 - ids.length).fill(49407)]);
  });

  it('cleans like CLIP: HTML entities (twice), whitespace, case', () => {
    expect(tok.encode('A  PHOTO\n\tof &amp;amp; a Cat')).toEqual(tok.encode('a photo of & a cat'));
  });

  it('truncates to 77 keeping the end token and reports how much was dropped', () => {
    const r = tok.tokenize(Array(100).fill('cat').join(' '));
    expect(r.truncated).toBe(25);
    expect(r.ids[0]).toBe(49406);
    expect(r.ids[76]).toBe(49407);
    expect(r.ids[75]).toBe(2368);
  });

  it('the Hugging Face vocab.json + merges.txt form gives the same ids', async () => {
    const dir = tempDir();
    const { vocabJson, mergesTxt } = tok.toHfFiles();
    writeFileSync(join(dir, 'vocab.json'), vocabJson);
    writeFileSync(join(dir, 'merges.txt'), mergesTxt);
    const hf = await loadTokenizer(dir);
    for (const [text, ids] of EXPECTED) expect(hf.encode(text)).toEqual(ids.slice(1, -1));
    expect(hf.encode('nanU Unan, 1girl, ☆ 日本語')).toEqual(tok.encode('nanU Unan, 1girl, ☆ 日本語'));
    expect(hf.decode(hf.encode('a photo of sks person'))).toBe('a photo of sks person');
  });

  it('is found in the Hugging Face cache', async () => {
    const home = tempDir();
    const snap = join(home, 'hub', 'models--openai--clip-vit-large-patch14', 'snapshots', 'abc123');
    mkdirSync(snap, { recursive: true });
    const { vocabJson, mergesTxt } = tok.toHfFiles();
    writeFileSync(join(snap, 'vocab.json'), vocabJson);
    writeFileSync(join(snap, 'merges.txt'), mergesTxt);
    const found = await findTokenizer(SD15_ARCH, { env: { HF_HOME: home } });
    expect(found.tokenizer?.source).toBe(snap);
    expect(found.tokenizer?.vocabSize).toBe(49408);
    await expect(findTokenizer(TINY_ARCH, { explicit: VOCAB })).rejects.toThrow(/has 49408 entries but the text encoder has 514 token embeddings/);
  });
});

describe('the tiny tokenizer and tokenizer lookup', () => {
  it('is byte-level BPE without merges: 514 entries, start 512, end 513', () => {
    const t = ClipTokenizer.tiny();
    expect(t.vocabSize).toBe(514);
    expect([...t.tokenize('a cat').ids.slice(0, 7)]).toEqual([512, 320, 66, 64, 339, 513, 513]);
    expect(t.decode(t.encode('Nanu, 1girl!'))).toBe('nanu , 1 girl !');
  });

  it('says where to get a vocabulary when none is found', async () => {
    const r = await findTokenizer(SD15_ARCH, { env: { HF_HOME: tempDir() } });
    expect(r.tokenizer).toBeNull();
    expect(r.problem).toMatch(/bpe_simple_vocab_16e6.txt.gz from https:\/\/github.com\/openai\/CLIP/);
    expect(r.problem).toMatch(/huggingface.co\/openai\/clip-vit-large-patch14/);
    await expect(loadTokenizer(join(tempDir(), 'nothing'))).rejects.toThrow(/does not exist/);
  });

  it('unescapes HTML like Python (numeric, named, legacy without semicolon)', () => {
    expect(htmlUnescape('&lt;b&gt; &#65;&#x42; &amp &copy; &unknown; &#0; &#x80;')).toBe('<b> AB & \u00a9 &unknown; \ufffd \u20ac');
  });
});
