/**
 * Atomic file writes: write a temporary file next to the target, fsync it, then rename it over the
 * target. A crash (or an error) at any point leaves either the old file or the new one, never half
 * of one, and no temporary file behind.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { UserError } from '../errors.js';

/** fs error codes that come from where the user asked us to write, not from a bug. */
const USER_FS_ERRORS = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ENOSPC', 'EROFS', 'EEXIST', 'ENAMETOOLONG', 'EDQUOT', 'ENOTEMPTY']);

/** Turns an fs error about `file` into a one-line UserError when it is the user's to fix. */
export function fsError(err: unknown, verb: string, file: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && USER_FS_ERRORS.has(e.code)) {
    const reason =
      e.code === 'EISDIR' || e.code === 'ENOTEMPTY'
        ? 'it is a folder'
        : e.code === 'ENOTDIR'
          ? 'a parent of it is a file, not a folder'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'permission denied'
            : e.code === 'ENOSPC' || e.code === 'EDQUOT'
              ? 'no space left on the device'
              : e.code === 'EROFS'
                ? 'read-only file system'
                : (e.message ?? e.code);
    return new UserError(`cannot ${verb} ${file}: ${reason}`);
  }
  return err;
}

/**
 * Writes `data` to `file` atomically: `file.tmp-<pid>-<random>` in the same folder, fsync, rename.
 * Creates missing parent folders. On failure the temporary file is removed and the old `file` (if
 * any) is untouched; a failure caused by the destination (a folder, no permission, disk full) is a
 * UserError naming it.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let created = false;
  try {
    await fsp.mkdir(dir, { recursive: true });
    const fh = await fsp.open(tmp, 'wx');
    created = true;
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    created = false;
  } catch (err) {
    if (created) await fsp.rm(tmp, { force: true }).catch(() => {});
    throw fsError(err, 'write', file);
  }
  // Make the rename itself durable. Best effort: not every platform can open a folder for fsync.
  try {
    const dh = await fsp.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // ignore
  }
}
