/**
 * Atomic file writes: write a temporary file next to the target, fsync it, then rename it over the
 * target. A crash (or an error) at any point leaves either the old file or the new one, never half
 * of one, and no temporary file behind.
 *
 * Every byte maskgen writes through this module passes one place (`writeBytes`), where a test can
 * inject a fault: `MASKGEN_TEST_FAULT=<action>[@<path part>]:<bytes>` (or `setWriteFault` in the
 * same process). Once `<bytes>` bytes have been written to files whose path contains `<path part>`,
 * the write that would go past stops there and
 *   kill    the process sends itself SIGKILL (a crash at exactly that byte),
 *   enospc  the write fails with ENOSPC, as on a full disk (and so does every later one),
 *   pause   the write waits until the fault is disarmed, then fails (a test looks at the disk
 *           meanwhile, as it would be after a crash at that byte).
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { UserError } from '../errors.js';

/** fs error codes that come from where the user asked us to write, not from a bug. */
const USER_FS_ERRORS = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ENOSPC', 'EROFS', 'EEXIST', 'ENAMETOOLONG', 'EDQUOT', 'ENOTEMPTY']);

/** Why an fs error happened, in words, when it is the user's to fix (a full disk, no permission, …); else undefined. */
export function fsReason(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e.code !== 'string' || !USER_FS_ERRORS.has(e.code)) return undefined;
  return e.code === 'EISDIR' || e.code === 'ENOTEMPTY'
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
}

/** Turns an fs error about `file` into a one-line UserError when it is the user's to fix. */
export function fsError(err: unknown, verb: string, file: string): unknown {
  const reason = fsReason(err);
  return reason === undefined ? err : new UserError(`cannot ${verb} ${file}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// fault injection (tests only)

export interface WriteFault {
  action: 'kill' | 'enospc' | 'pause';
  /** Only writes to files whose path contains this (default: every file). */
  scope?: string;
  /** Bytes written (within the scope) before the fault. */
  atByte: number;
  /** Called when the fault fires: before a failure, once a write is paused (not before a kill). */
  onFault?: (file: string) => void;
}

/** Parses `MASKGEN_TEST_FAULT`'s form `<action>[@<path part>]:<bytes>`. */
export function parseWriteFault(spec: string | undefined): WriteFault | undefined {
  if (spec === undefined || spec === '') return undefined;
  const m = /^(kill|enospc|pause)(?:@(.+))?:(\d+)$/.exec(spec);
  if (!m) throw new Error(`MASKGEN_TEST_FAULT must be <kill|enospc|pause>[@<path part>]:<bytes>, got ${JSON.stringify(spec)}`);
  return { action: m[1] as WriteFault['action'], scope: m[2], atByte: Number(m[3]) };
}

let fault = parseWriteFault(process.env.MASKGEN_TEST_FAULT);
let faultWritten = 0;
const paused = new Set<(err: Error) => void>();

/**
 * Arms (or, without an argument, disarms) a write fault in this process and restarts its byte count.
 * Writes paused by an earlier fault fail now.
 */
export function setWriteFault(f?: WriteFault): void {
  fault = f;
  faultWritten = 0;
  for (const fail of paused) fail(new Error('write fault released'));
  paused.clear();
}

function enospc(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), { code: 'ENOSPC', errno: -28, syscall: 'write', path: file });
}

/**
 * Writes all of `bytes` to an open file, unless an armed fault stops it part-way: the first
 * `atByte` bytes within the fault's scope are written, the write that reaches past them faults.
 */
async function writeBytes(fh: fsp.FileHandle, file: string, bytes: Uint8Array): Promise<void> {
  const f = fault;
  const inScope = f !== undefined && (f.scope === undefined || file.includes(f.scope));
  if (!inScope) return void (await fh.writeFile(bytes));
  if (faultWritten < f.atByte && faultWritten + bytes.length <= f.atByte) {
    faultWritten += bytes.length;
    return void (await fh.writeFile(bytes));
  }
  const part = Math.max(0, f.atByte - faultWritten);
  if (part > 0) await fh.write(bytes, 0, part);
  faultWritten = f.atByte;
  if (f.action === 'enospc') {
    f.onFault?.(file);
    throw enospc(file);
  }
  await fh.sync();
  if (f.action === 'kill') process.kill(process.pid, 'SIGKILL');
  await new Promise<never>((_, reject) => {
    paused.add(reject);
    f.onFault?.(file);
  });
}

// ---------------------------------------------------------------------------------------------
// writing

const bytesOf = (data: string | Uint8Array) => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);

/**
 * Writes `data` to a new file (failing if it exists) and fsyncs it, without the rename: for files in
 * a folder that is itself committed by a rename (checkpoints). Errors are the raw fs errors; on
 * error the partial file is removed.
 */
export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await fsp.open(file, 'wx');
  try {
    await writeBytes(fh, file, bytesOf(data));
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(file, { force: true }).catch(() => {});
    throw err;
  }
  await fh.close();
}

/** fsyncs a folder so that renames into it are durable. Best effort: not every platform can open a folder. */
export async function syncDir(dir: string): Promise<void> {
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

/**
 * Writes `data` to `file` atomically: `file.tmp-<pid>-<random>` in the same folder, fsync, rename.
 * Creates missing parent folders. On failure the temporary file is removed and the old `file` (if
 * any) is untouched; a failure caused by the destination (a folder, no permission, disk full) is a
 * UserError naming it.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await fsp.mkdir(dir, { recursive: true });
    await writeFileDurable(tmp, data);
  } catch (err) {
    throw fsError(err, 'write', file);
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw fsError(err, 'write', file);
  }
  // Make the rename itself durable.
  await syncDir(dir);
}
