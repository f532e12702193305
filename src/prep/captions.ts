import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/** Caption files looked for beside a source `name.ext`, in this order. */
export const CAPTION_EXTENSIONS = ['.txt', '.caption'];

/** The caption file beside a source, if any, and its text (trimmed). */
export async function readOwnCaption(source: string): Promise<{ file: string; text: string } | null> {
  const stem = basename(source, extname(source));
  for (const ext of CAPTION_EXTENSIONS) {
    const file = join(dirname(source), stem + ext);
    try {
      return { file, text: (await readFile(file, 'utf8')).trim() };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
    }
  }
  return null;
}

/**
 * The caption written beside the output: the source's own caption, else `--caption`; `--caption-prefix`
 * goes before it, joined with ", " (tag style). Null when there is nothing to write.
 */
export function composeCaption(own: string | null, opts: { caption?: string; captionPrefix?: string }): string | null {
  const body = (own ?? opts.caption ?? '').trim();
  const prefix = (opts.captionPrefix ?? '').trim().replace(/,+$/, '').trim();
  const text = [prefix, body].filter((s) => s.length > 0).join(', ');
  return text.length ? text : null;
}
