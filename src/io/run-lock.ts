/**
 * One training process per run folder. `<out>/.lock` holds the pid of the process that writes the
 * run; another process that would write the same folder (a second `train-* --out` on it, or a
 * `--resume` while the first still runs) is refused with one line instead of interleaving its
 * checkpoints with the first's. The lock lasts until the process exits; the same process may take
 * it again (runs in turn in one process, the refiner's two stages). A lock whose process is gone
 * (a crash, SIGKILL) is taken over.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { fsError } from './atomic.js';

export const LOCK_FILE = '.lock';

const held = new Set<string>();

/** Whether a process with this pid exists (a zombie counts; EPERM means it exists under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock of run folder `out` (made if missing) for this process; throws a UserError when another live process holds it. */
export function lockRun(out: string): void {
  const file = path.resolve(out, LOCK_FILE);
  if (held.has(file)) return;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (err) {
    throw fsError(err, 'write', out);
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      held.add(file);
      if (held.size === 1) process.once('exit', releaseAll);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, 'write', file);
    }
    let pid = NaN;
    try {
      pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    } catch {
      // removed in between, or unreadable: try again
    }
    if (pid === process.pid) {
      held.add(file);
      return;
    }
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new UserError(`${out} is being written by another training (pid ${pid}); wait for it to end or stop it (a lock left by a crash is taken over once its process is gone)`);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new UserError(`could not take the lock ${file}`);
}

/** Gives back every lock this process holds (at exit; also for tests). */
export function releaseAll(): void {
  for (const file of held) {
    try {
      if (Number.parseInt(fs.readFileSync(file, 'utf8'), 10) === process.pid) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }
  held.clear();
}
