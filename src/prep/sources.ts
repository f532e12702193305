import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { CAPTION_EXTENSIONS } from './captions.js';

/** Extensions that claim to be images: such a file that does not decode is a failure, not a skip. */
export const IMAGE_EXTENSIONS = new Set([
  '.png', '.jpg', '.jpeg', '.jpe', '.jfif', '.webp', '.avif', '.heic', '.heif', '.tif', '.tiff', '.gif', '.bmp', '.jxl',
]);

export function hasImageExtension(file: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(file).toLowerCase());
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

async function listFolder(dir: string, recursive: boolean, out: string[], seen = new Set<string>()): Promise<void> {
  const real = await realpath(dir);
  if (seen.has(real)) return; // a symlink loop, or a folder reached twice
  seen.add(real);
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (e.name.startsWith('.')) continue; // hidden files, our own temporaries, .DS_Store
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const st = await stat(p).catch(() => null);
      isDir = !!st?.isDirectory();
      isFile = !!st?.isFile();
    }
    if (isDir) {
      if (recursive) await listFolder(p, recursive, out, seen);
    } else if (isFile && !CAPTION_EXTENSIONS.includes(extname(e.name).toLowerCase())) {
      out.push(p);
    }
  }
}

/**
 * Every candidate source (absolute paths, sorted, unique) from folders and files. Caption files and hidden
 * files are not candidates. Refuses an output folder that is, or is inside, an input folder it would be
 * read back from, and inputs inside the output folder (sources are never overwritten).
 */
export async function collectSources(inputs: string[], out: string, recursive: boolean): Promise<string[]> {
  const outAbs = resolve(out);
  const files: string[] = [];
  for (const input of inputs) {
    const abs = resolve(input);
    const st = await stat(abs).catch(() => null);
    if (!st) throw new UsageError(`input not found: ${input}`);
    if (st.isDirectory()) {
      if (abs === outAbs) throw new UsageError(`--out ${out} is the input folder; write the prepared images to another folder`);
      if (recursive && isInside(outAbs, abs)) {
        throw new UsageError(`--out ${out} is inside the input folder ${input} and --recursive would read the outputs back`, {
          details: ['choose an output folder outside the input folder'],
        });
      }
      if (isInside(abs, outAbs)) throw new UsageError(`input folder ${input} is inside the output folder ${out}`);
      await listFolder(abs, recursive, files);
    } else if (st.isFile()) {
      if (isInside(abs, outAbs)) throw new UsageError(`input ${input} is inside the output folder ${out}; sources are never overwritten`);
      files.push(abs);
    } else {
      throw new UsageError(`input ${input} is neither a file nor a folder`);
    }
  }
  return [...new Set(files)].sort();
}

/**
 * Output file names, deterministic: a source keeps the name it had in the manifest; the others take
 * `<stem>.png`, then `<stem>-2.png`, … in sorted order, avoiding names already used (compared
 * case-insensitively, for case-insensitive file systems). `previous` maps source → earlier output name;
 * `reserved` holds names owned by manifest entries of sources not in this run.
 */
export function assignOutputNames(sources: string[], previous: Map<string, string>, reserved: Iterable<string>): Map<string, string> {
  const taken = new Set([...reserved].map((n) => n.toLowerCase()));
  const names = new Map<string, string>();
  for (const s of sources) {
    const prev = previous.get(s);
    if (prev && !taken.has(prev.toLowerCase())) {
      names.set(s, prev);
      taken.add(prev.toLowerCase());
    }
  }
  // Sources with an image extension first, so a stray non-image never takes an image's natural name.
  const rest = sources.filter((s) => !names.has(s));
  const ordered = [...rest.filter(hasImageExtension), ...rest.filter((s) => !hasImageExtension(s))];
  for (const s of ordered) {
    const stem = basename(s, extname(s)).replace(/[\\/:*?"<>|\x00-\x1f]/g, '_') || 'image';
    let name = `${stem}.png`;
    for (let i = 2; taken.has(name.toLowerCase()); i++) name = `${stem}-${i}.png`;
    names.set(s, name);
    taken.add(name.toLowerCase());
  }
  return names;
}
