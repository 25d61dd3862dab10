/**
 * The web page in a real browser (Debian's chromium through playwright-core, no browser download):
 * type a prompt, generate, check the PNG's pixels on the page against the API's, paint a mask over
 * the lower part, run an inpainting edit, check what it regenerated and the before/after. Saves a
 * screenshot (to $MASKGEN_SERVE_SCREENSHOT when set: the README's comes from here).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng } from '../src/data/png.js';
import type { MaskgenPipeline } from '../src/pipeline.js';
import { loadRunner } from '../src/serve/lifecycle.js';
import { LocalQueue } from '../src/serve/local-queue.js';
import { createMetrics } from '../src/serve/metrics.js';
import { buildServer, type MaskgenServer } from '../src/serve/server.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`serve-browser: no Chromium at ${CHROMIUM} (apt-get install chromium): skipping the web page test`);

describe.skipIf(!haveChromium)('the web page in Chromium', () => {
  const BUNDLE = path.resolve(import.meta.dirname, '..', 'models', 'maskgen-emoji-small');
  let pipe: MaskgenPipeline;
  let server: MaskgenServer;
  let queue: LocalQueue;
  let url: string;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    const loaded = await loadRunner(BUNDLE, tf.getBackend());
    pipe = loaded.pipe;
    queue = new LocalQueue((spec, ctx) => loaded.runner.run(spec, ctx));
    server = await buildServer({ queue, metrics: createMetrics(), info: { bundle: BUNDLE, backend: tf.getBackend() } });
    url = await server.app.listen({ port: 0, host: '127.0.0.1' });
    profile = await mkdtemp(path.join(tmpdir(), 'maskgen-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 900 },
    });
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.shutdown();
    pipe?.dispose();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('generates from a typed prompt, shows it with its settings, and edits it through a painted mask', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url + '/');
    await page.fill('#prompt', 'green heart');
    await page.fill('#steps', '4');
    await page.fill('#seed', '11');
    const generated = page.waitForResponse((r) => r.url().endsWith('/v1/generate'));
    await page.click('#generate');
    const jobId = ((await (await generated).json()) as { id: string }).id;
    const card = page.locator(`.card[data-job="${jobId}"]`);
    await card.locator('img').waitFor({ timeout: 60_000 });
    await expect.poll(() => card.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 }).toBe(64);
    expect(await card.locator('.settings').textContent()).toContain('“green heart” · seed 11');
    expect(await card.locator('a[download]').getAttribute('download')).toMatch(/\.png$/);
    expect(await page.locator('#live-status').textContent()).toMatch(/done/);

    // The pixels the page shows are the API's PNG.
    const shown = await card.locator('img').evaluate((img: HTMLImageElement) => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
    });
    const api = decodePng(new Uint8Array(await (await fetch(`${url}/v1/jobs/${jobId}/images/0.png`)).arrayBuffer()))!;
    const rgb = shown.filter((_, i) => i % 4 !== 3);
    expect(rgb).toEqual(Array.from(api.data));
    const distinct = new Set(rgb.map((v, i) => (i % 3 === 0 ? `${v},${rgb[i + 1]},${rgb[i + 2]}` : ''))).size;
    expect(distinct).toBeGreaterThan(10); // a picture, not a flat fill

    // Edit: paint over the lower quarter of the 256-px canvas, then run an inpainting edit.
    await card.locator('button.edit').click();
    await page.check('#mode-brush');
    await page.fill('#edit-prompt', 'crying face');
    const box = (await page.locator('#edit-canvas').boundingBox())!;
    for (const y of [200, 225, 250]) {
      await page.mouse.move(box.x + 4, box.y + y);
      await page.mouse.down();
      await page.mouse.move(box.x + 252, box.y + y, { steps: 8 });
      await page.mouse.up();
    }
    const edited = page.waitForResponse((r) => r.url().endsWith('/v1/edit'));
    await page.click('#run-edit');
    const editId = ((await (await edited).json()) as { id: string }).id;
    await page.locator('#before-after:not([hidden])').waitFor({ timeout: 60_000 });
    await expect.poll(() => page.locator('#after').evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 }).toBe(32);
    const job = (await (await fetch(`${url}/v1/jobs/${editId}`)).json()) as { state: string; result: { images: { settings: { mode: string; regenerated: number[] } }[] } };
    expect(job.state).toBe('done');
    const { mode, regenerated } = job.result.images[0]!.settings;
    expect(mode).toBe('inpaint');
    // painted: display rows ~188–256 of 256 → token rows 5–7 of 8 (4 px tokens at 32 px)
    expect(regenerated.length).toBeGreaterThanOrEqual(8);
    expect(regenerated.every((i) => Math.floor(i / 8) >= 5)).toBe(true);
    expect(errors).toEqual([]);
    await page.screenshot({ path: process.env.MASKGEN_SERVE_SCREENSHOT ?? path.join(profile, 'page.png'), fullPage: true });
  });
});
