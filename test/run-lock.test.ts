import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockRun, releaseAll } from '../src/io/run-lock.js';
import { checkResume } from '../src/training/loop.js';

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'maskgen-lock-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  releaseAll();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('one training process per run folder (io/run-lock.ts)', () => {
  it('takes the lock with its pid, may take it again, and gives it back', () => {
    const out = path.join(tmp(), 'run');
    lockRun(out);
    expect(fs.readFileSync(path.join(out, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    expect(() => lockRun(out)).not.toThrow();
    releaseAll();
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });

  it('refuses a folder another live process writes, in one line naming it, and takes over once that process is gone', async () => {
    const out = tmp();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    fs.writeFileSync(path.join(out, LOCK_FILE), `${other.pid}\n`);
    expect(() => lockRun(out)).toThrow(new RegExp(`is being written by another training \\(pid ${other.pid}\\)`));
    // a training run checks the lock before anything else: it does not even look for checkpoints
    await expect(checkResume(out, path.join(out, 'checkpoints', 'transformer'), false)).rejects.toThrow(/another training/);
    const exited = new Promise((resolve) => other.once('exit', resolve));
    other.kill('SIGKILL');
    await exited;
    lockRun(out);
    expect(fs.readFileSync(path.join(out, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
  });
});
