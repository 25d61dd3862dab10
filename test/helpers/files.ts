import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Total size in bytes of every file under `dir`. */
export async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? await bytesUnder(p) : (await stat(p)).size;
  }
  return n;
}
