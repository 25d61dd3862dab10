/**
 * Configs: JSON files validated with zod, presets by name (`tiny`, `small`, `base` → configs/<name>.json
 * in the package), and comparing two configs (to refuse a checkpoint made with another one).
 *
 * Every problem is a UserError of one line naming the file and the field, e.g.
 * `config configs/tiny.json: vqgan.patchSize: expected number, received string`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { UserError } from '../errors.js';
import { fsError } from './atomic.js';

// ---------------------------------------------------------------------------------------------
// the package

let root: string | null = null;

/**
 * The folder holding maskgen's package.json, found by walking up from this file (works from `src/`
 * under vitest and from `dist/` after a build).
 */
export function packageRoot(): string {
  if (root !== null) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'maskgen') return (root = dir);
      } catch {
        // not ours (or unreadable): keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find maskgen's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** maskgen's version, from its package.json. */
export function packageVersion(): string {
  return String(JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version);
}

// ---------------------------------------------------------------------------------------------
// validation

type Key = PropertyKey;

/** `vqgan.blocks[2].dim` */
export function formatPath(p: readonly Key[]): string {
  let s = '';
  for (const k of p) {
    if (typeof k === 'number') s += `[${k}]`;
    else s += s === '' ? String(k) : `.${String(k)}`;
  }
  return s;
}

function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

interface IssueLike {
  code: string;
  path: readonly Key[];
  message: string;
  expected?: unknown;
  keys?: string[];
  input?: unknown;
  errors?: IssueLike[][];
}

/** The schema inside wrappers (default, optional, pipe, ...), best effort through zod 4's `_zod.def`. */
function unwrap(schema: unknown): { type?: string; [k: string]: unknown } | null {
  for (let i = 0; i < 20 && schema; i++) {
    const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return null;
    switch (def.type) {
      case 'default':
      case 'prefault':
      case 'optional':
      case 'nullable':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        schema = def.innerType;
        break;
      case 'pipe':
        schema = def.in;
        break;
      case 'lazy':
        schema = (def.getter as () => unknown)();
        break;
      default:
        return def as { type?: string };
    }
  }
  return null;
}

/** The field names the schema allows at `p`, or null when it cannot tell. */
function knownKeys(schema: unknown, p: readonly Key[]): string[] | null {
  try {
    let def = unwrap(schema);
    for (const k of p) {
      if (!def) return null;
      if (def.type === 'object') def = unwrap((def.shape as Record<string, unknown>)[String(k)]);
      else if (def.type === 'array') def = unwrap(def.element);
      else if (def.type === 'record') def = unwrap(def.valueType);
      else return null;
    }
    return def?.type === 'object' ? Object.keys(def.shape as object) : null;
  } catch {
    return null;
  }
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/** The known field a typo most likely meant, if any. */
function suggest(key: string, known: string[]): string | null {
  const lower = key.toLowerCase();
  const same = known.find((k) => k.toLowerCase() === lower);
  if (same) return same;
  let best: string | null = null;
  let bestD = Math.min(2, Math.floor(key.length / 3));
  for (const k of known) {
    const dist = editDistance(lower, k.toLowerCase());
    if (dist <= bestD) [best, bestD] = [k, dist - 1];
  }
  return best;
}

function describeIssue(issue: IssueLike, prefix: readonly Key[], schema: unknown): string {
  const full = [...prefix, ...issue.path];
  const at = formatPath(full);
  const lead = at === '' ? '' : `${at}: `;
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const names = issue.keys.map((k) => `'${k}'`).join(', ');
    const known = knownKeys(schema, issue.path);
    const hint = known && issue.keys.length === 1 ? suggest(issue.keys[0]!, known) : null;
    return `${lead}unknown field${issue.keys.length > 1 ? 's' : ''} ${names}${hint ? ` (did you mean '${hint}'?)` : ''}`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined && full.length > 0) {
    const parent = formatPath(full.slice(0, -1));
    const last = full[full.length - 1]!;
    const what = typeof last === 'number' ? `element ${last}` : `field '${String(last)}'`;
    return `${parent === '' ? '' : `${parent}: `}missing ${what} (expected ${String(issue.expected)})`;
  }
  if (issue.code === 'invalid_union' && issue.errors && issue.errors.every((e) => e.length === 1 && e[0]!.code === 'invalid_type')) {
    const expected = issue.errors.map((e) => String(e[0]!.expected)).join(' or ');
    return `${lead}expected ${expected}, received ${show(issue.input)}`;
  }
  let msg = issue.message.replace(/^Invalid input: /, '');
  msg = msg.charAt(0).toLowerCase() + msg.slice(1);
  if ((issue.code === 'invalid_value' || issue.code === 'too_big' || issue.code === 'too_small' || issue.code === 'invalid_format') && 'input' in issue) {
    msg += `, got ${show(issue.input)}`;
  }
  return `${lead}${msg}`;
}

function parseAt<T>(schema: z.ZodType<T>, value: unknown, where: string, prefix: readonly Key[]): T {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const issues = r.error.issues as unknown as IssueLike[];
  // An unknown field first: a misspelt field is also reported as a missing one, and the typo is the news.
  const first = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
  const more = issues.length - 1;
  const tail = more > 0 ? ` (and ${more} more problem${more > 1 ? 's' : ''})` : '';
  throw new UserError(`${where}: ${describeIssue(first, prefix, schema)}${tail}`);
}

/**
 * Validates `value` (applying the schema's defaults). On failure: a UserError of one line,
 * `<where>: <field path>: <what is wrong>` (`where` is used verbatim, e.g. `config configs/tiny.json`),
 * naming the first problem and how many more there are.
 */
export function parseConfig<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  return parseAt(schema, value, where, []);
}

// ---------------------------------------------------------------------------------------------
// files

/** Reads and parses a JSON file; a missing file or invalid JSON is a UserError naming the file. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file}: no such file`);
    throw fsError(err, 'read', file);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    let pos: number | null = null;
    const m = /at position (\d+)/.exec(message);
    if (m) pos = Number(m[1]);
    else if (/end of JSON input/.test(message)) pos = text.length;
    let where = '';
    if (pos !== null) {
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const column = pos - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${column}`;
    }
    const why = message.replace(/ in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)$/, '');
    throw new UserError(`${file}: invalid JSON${where}: ${why}`);
  }
}

/** The preset folder: `<package root>/configs`. */
export function presetsDir(): string {
  return path.join(packageRoot(), 'configs');
}

/** The names of the presets in `dir` (default: the package's configs/ folder), sorted. */
export function listPresets(dir = presetsDir()): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  } catch {
    return [];
  }
}

/**
 * A bare name (`tiny`, `small`, `base`) → `<package root>/configs/<name>.json` (or
 * `<opts.configsDir>/<name>.json`); anything with a `/` (or `\`) or ending in `.json` is a path and
 * is returned as given. An unknown preset is a UserError listing the presets that exist.
 */
export function resolvePreset(nameOrPath: string, opts: { configsDir?: string } = {}): string {
  if (nameOrPath.includes('/') || nameOrPath.includes('\\') || nameOrPath.endsWith('.json')) return nameOrPath;
  if (nameOrPath === '') throw new UserError('config: empty preset name');
  const dir = opts.configsDir ?? presetsDir();
  const file = path.join(dir, `${nameOrPath}.json`);
  if (existsSync(file)) return file;
  const presets = listPresets(dir);
  throw new UserError(
    `unknown preset '${nameOrPath}' (${presets.length > 0 ? `presets: ${presets.join(', ')}` : `no presets in ${dir}`}; or give a path to a .json file)`,
  );
}

/**
 * Reads a config (a preset name or a path), takes its `section` if given (a preset holds one section
 * per stage: `{"vqgan": {...}, "transformer": {...}}`), applies the schema's defaults and validates.
 * Errors read `config <file>: <section>.<field>: <problem>`.
 */
export async function loadConfig<T>(
  schema: z.ZodType<T>,
  nameOrPath: string,
  section?: string,
  opts: { configsDir?: string } = {},
): Promise<T> {
  const file = resolvePreset(nameOrPath, opts);
  const value = await readJsonFile(file);
  const where = `config ${file}`;
  if (section === undefined) return parseAt(schema, value, where, []);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${where}: expected an object with a '${section}' section, received ${show(value)}`);
  }
  if (!Object.hasOwn(value, section)) {
    const has = Object.keys(value);
    throw new UserError(`${where}: no '${section}' section (it has ${has.length > 0 ? has.map((k) => `'${k}'`).join(', ') : 'none'})`);
  }
  return parseAt(schema, (value as Record<string, unknown>)[section], where, [section]);
}

// ---------------------------------------------------------------------------------------------
// comparing

const MISSING = Symbol('missing');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lineAt(p: readonly Key[], x: unknown, y: unknown): string {
  const v = (z: unknown) => (z === MISSING ? '(missing)' : show(z));
  return `${p.length > 0 ? formatPath(p) : '(whole config)'}: ${v(x)} vs ${v(y)}`;
}

function diffAt(a: unknown, b: unknown, p: Key[]): string | null {
  if (Object.is(a, b)) return null;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return lineAt(p, a, b);
    for (let i = 0; i < a.length; i++) {
      const d = diffAt(a[i], b[i], [...p, i]);
      if (d !== null) return d;
    }
    return null;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const x = a[k] === undefined ? MISSING : a[k];
      const y = b[k] === undefined ? MISSING : b[k];
      if (x === MISSING && y === MISSING) continue;
      if (x === MISSING || y === MISSING) return lineAt([...p, k], x, y);
      const d = diffAt(x, y, [...p, k]);
      if (d !== null) return d;
    }
    return null;
  }
  return lineAt(p, a, b);
}

/**
 * The first field where two configs differ, as `path: a-value vs b-value` (deep; key order does not
 * matter; a field set to undefined counts as absent), or null when they are equal.
 */
export function configDiff(a: unknown, b: unknown): string | null {
  return diffAt(a, b, []);
}
