import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import { writeFileAtomic } from '../src/io/atomic.js';

// Lets a test make rename() fail, as a crash between writing the temp file and renaming would.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const rename = vi.fn(actual.rename);
  return { ...actual, rename, default: { ...actual, rename } };
});

describe('writeFileAtomic', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(tmpdir(), 'maskgen-atomic-'));
  });
  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('writes strings and bytes, creates parent folders, leaves no temp files', async () => {
    const file = path.join(dir, 'a', 'b', 'c.txt');
    await writeFileAtomic(file, 'hello');
    expect(await fsp.readFile(file, 'utf8')).toBe('hello');
    await writeFileAtomic(file, new Uint8Array([104, 105]));
    expect(await fsp.readFile(file, 'utf8')).toBe('hi');
    expect(await fsp.readdir(path.dirname(file))).toEqual(['c.txt']);
  });

  it('a failed rename leaves the old file intact and no temp file', async () => {
    const file = path.join(dir, 'keep.json');
    await writeFileAtomic(file, '{"old":true}');
    vi.mocked(fsp.rename).mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' }));
    await expect(writeFileAtomic(file, '{"new":true}')).rejects.toThrow(/EIO/);
    expect(await fsp.readFile(file, 'utf8')).toBe('{"old":true}');
    expect((await fsp.readdir(dir)).filter((f) => f.startsWith('keep.json'))).toEqual(['keep.json']);
  });

  it('a target that is a folder: UserError, folder untouched, no temp file', async () => {
    const target = path.join(dir, 'isdir');
    await fsp.mkdir(target);
    await fsp.writeFile(path.join(target, 'inside.txt'), 'x');
    const p = writeFileAtomic(target, 'data');
    await expect(p).rejects.toThrow(UserError);
    await expect(writeFileAtomic(target, 'data')).rejects.toThrow(`cannot write ${target}: it is a folder`);
    expect(await fsp.readFile(path.join(target, 'inside.txt'), 'utf8')).toBe('x');
    expect((await fsp.readdir(dir)).filter((f) => f.startsWith('isdir'))).toEqual(['isdir']);
  });

  it('a parent that is a file is a UserError', async () => {
    const parent = path.join(dir, 'plainfile');
    await fsp.writeFile(parent, 'x');
    await expect(writeFileAtomic(path.join(parent, 'child.txt'), 'data')).rejects.toThrow(UserError);
    expect(await fsp.readFile(parent, 'utf8')).toBe('x');
  });
});
