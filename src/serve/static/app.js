// The maskgen page: plain JavaScript, no build step. Talks to the JSON API; follows a job's
// server-sent events with fetch (so the API key travels as a header) to show the live preview.
const $ = (id) => document.getElementById(id);
const DISPLAY = 256;

// --- API -----------------------------------------------------------------------------------
const keyInput = $('api-key');
keyInput.value = localStorage.getItem('maskgen-api-key') ?? '';
keyInput.addEventListener('change', () => localStorage.setItem('maskgen-api-key', keyInput.value));
const auth = () => (keyInput.value ? { authorization: `Bearer ${keyInput.value}` } : {});

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...auth(), ...(init.headers ?? {}) } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

async function fetchBlob(path) {
  const res = await fetch(path, { headers: auth() });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.blob();
}

/** Follows a job's event stream; calls onEvent(name, data) for each; resolves with the finished job. */
async function follow(eventsUrl, onEvent) {
  const res = await fetch(eventsUrl, { headers: auth() });
  if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the event stream ended before the job did');
    buffer += value;
    for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
      const chunk = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let name = 'message';
      let data = '';
      for (const line of chunk.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) continue;
      const parsed = JSON.parse(data);
      onEvent(name, parsed);
      if (name === 'done' || name === 'failed') {
        reader.cancel().catch(() => {});
        return parsed;
      }
      if (name === 'state' && (parsed.state === 'done' || parsed.state === 'failed')) return parsed;
    }
  }
}

const showError = (err) => ($('error').textContent = err ? String(err.message ?? err) : '');

/** Shows the live preview of a job until it finishes. */
async function runLive(job, label) {
  const live = $('live');
  const status = $('live-status');
  const preview = $('preview');
  live.hidden = false;
  preview.replaceChildren();
  status.textContent = `${label}: queued`;
  const final = await follow(job.events, (name, data) => {
    if (name === 'running') status.textContent = `${label}: running`;
    if (name === 'step') {
      status.textContent = `${label}: decoding step ${data.step} of ${data.total}`;
      (data.previews ?? []).forEach((src, i) => {
        let img = preview.children[i];
        if (!img) preview.append((img = Object.assign(document.createElement('img'), { alt: `preview ${i}` })));
        img.src = src;
      });
    }
    if (name === 'refine') status.textContent = `${label}: refining, step ${data.step} of ${data.total}`;
  });
  status.textContent = final.state === 'done' ? `${label}: done in ${final.result.seconds.toFixed(2)} s` : `${label}: failed`;
  if (final.state !== 'done') throw new Error(final.error ?? 'the job failed');
  return final;
}

// --- Generate ------------------------------------------------------------------------------
$('random-seed').addEventListener('click', () => ($('seed').value = Math.floor(Math.random() * 1e9)));

$('generate-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError();
  const button = $('generate');
  button.disabled = true;
  try {
    const body = {
      prompts: [$('prompt').value],
      guidance: Number($('guidance').value),
      steps: Number($('steps').value),
      n: Number($('n').value),
      seed: Number($('seed').value),
      refine: $('refine').checked,
    };
    const negative = $('negative-prompt').value.trim();
    if (negative) body.negativePrompt = negative;
    const job = await api('/v1/generate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const final = await runLive(job, 'generate');
    await addResults(final);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
});

function describe(s) {
  if (s.mode) return `${s.mode}: “${s.prompt}” · seed ${s.seed} · guidance ${s.guidance} · steps ${s.steps}`;
  const refine = s.refine ? ` · refined (${s.refine.steps} steps)` : '';
  return `“${s.prompt}” · seed ${s.seed} #${s.index} · guidance ${s.guidance} · steps ${s.steps}${s.negativePrompt ? ` · not “${s.negativePrompt}”` : ''}${refine}`;
}

async function addResults(job) {
  const gallery = $('gallery');
  for (const [i, im] of job.result.images.entries()) {
    const blob = await fetchBlob(im.url);
    const url = URL.createObjectURL(blob);
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.job = job.id;
    card.dataset.index = String(i);
    const img = Object.assign(document.createElement('img'), { src: url, alt: im.settings.prompt });
    const settings = Object.assign(document.createElement('div'), { className: 'settings', textContent: describe(im.settings) });
    const actions = Object.assign(document.createElement('div'), { className: 'actions' });
    const name = `maskgen-${String(im.settings.prompt).replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-${im.settings.seed}-${i}.png`;
    const download = Object.assign(document.createElement('a'), { href: url, download: name, textContent: 'Download' });
    const edit = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Edit', className: 'edit' });
    edit.addEventListener('click', () => loadForEdit(blob, im.settings.prompt));
    actions.append(download, edit);
    card.append(img, settings, actions);
    gallery.prepend(card);
  }
}

// --- Edit ----------------------------------------------------------------------------------
const imageCanvas = $('edit-image');
const maskCanvas = $('edit-canvas');
const mctx = maskCanvas.getContext('2d');
maskCanvas.style.opacity = '0.5';
let source = null; // { blob, width, height }
let box = null; // display pixels
const mode = () => document.querySelector('input[name=mode]:checked').value;

function showTools() {
  for (const el of document.querySelectorAll('[data-for]')) el.hidden = !el.dataset.for.split(' ').includes(mode());
  maskCanvas.style.pointerEvents = mode() === 'brush' || mode() === 'box' ? 'auto' : 'none';
}
for (const r of document.querySelectorAll('input[name=mode]')) r.addEventListener('change', () => (clearMask(), showTools()));
showTools();

function clearMask() {
  mctx.clearRect(0, 0, DISPLAY, DISPLAY);
  box = null;
}
$('clear-mask').addEventListener('click', clearMask);

async function loadForEdit(blob, prompt) {
  const bitmap = await createImageBitmap(blob);
  source = { blob, width: bitmap.width, height: bitmap.height };
  const ctx = imageCanvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, DISPLAY, DISPLAY);
  ctx.drawImage(bitmap, 0, 0, DISPLAY, DISPLAY);
  clearMask();
  if (prompt && !$('edit-prompt').value) $('edit-prompt').value = prompt;
  $('run-edit').disabled = false;
  $('before-after').hidden = true;
}
$('upload').addEventListener('change', (e) => e.target.files[0] && loadForEdit(e.target.files[0], ''));

let drawing = null;
const at = (e) => {
  const r = maskCanvas.getBoundingClientRect();
  return { x: ((e.clientX - r.left) * DISPLAY) / r.width, y: ((e.clientY - r.top) * DISPLAY) / r.height };
};
maskCanvas.addEventListener('pointerdown', (e) => {
  if (!source) return;
  maskCanvas.setPointerCapture(e.pointerId);
  drawing = at(e);
  if (mode() === 'brush') paint(drawing, drawing);
});
maskCanvas.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const p = at(e);
  if (mode() === 'brush') {
    paint(drawing, p);
    drawing = p;
  } else {
    box = { x: Math.min(drawing.x, p.x), y: Math.min(drawing.y, p.y), w: Math.abs(p.x - drawing.x), h: Math.abs(p.y - drawing.y) };
    mctx.clearRect(0, 0, DISPLAY, DISPLAY);
    mctx.fillStyle = '#e0245e';
    mctx.fillRect(box.x, box.y, box.w, box.h);
  }
});
maskCanvas.addEventListener('pointerup', () => (drawing = null));

function paint(from, to) {
  mctx.strokeStyle = mctx.fillStyle = '#e0245e';
  mctx.lineWidth = Number($('brush-size').value);
  mctx.lineCap = 'round';
  mctx.beginPath();
  mctx.moveTo(from.x, from.y);
  mctx.lineTo(to.x, to.y);
  mctx.stroke();
}

/** The painted mask at the image's own size, white = regenerate, as a PNG blob (null if nothing is painted). */
async function maskBlob() {
  const c = Object.assign(document.createElement('canvas'), { width: source.width, height: source.height });
  const ctx = c.getContext('2d');
  ctx.drawImage(maskCanvas, 0, 0, source.width, source.height);
  const d = ctx.getImageData(0, 0, source.width, source.height);
  let any = false;
  for (let i = 0; i < d.data.length; i += 4) {
    const v = d.data[i + 3] > 0 ? 255 : 0;
    any ||= v > 0;
    d.data[i] = d.data[i + 1] = d.data[i + 2] = v;
    d.data[i + 3] = 255;
  }
  if (!any) return null;
  ctx.putImageData(d, 0, 0);
  return new Promise((resolve) => c.toBlob(resolve, 'image/png'));
}

$('run-edit').addEventListener('click', async () => {
  showError();
  const button = $('run-edit');
  button.disabled = true;
  try {
    const form = new FormData();
    const m = mode();
    form.append('mode', m === 'brush' || m === 'box' ? 'inpaint' : m);
    form.append('prompt', $('edit-prompt').value);
    form.append('seed', $('edit-seed').value);
    if (m === 'brush') {
      const mask = await maskBlob();
      if (!mask) throw new Error('paint over the part to change first');
      form.append('mask', mask, 'mask.png');
    } else if (m === 'box') {
      if (!box || box.w < 1 || box.h < 1) throw new Error('drag a box over the part to change first');
      const sx = source.width / DISPLAY;
      const sy = source.height / DISPLAY;
      const x = Math.floor(box.x * sx);
      const y = Math.floor(box.y * sy);
      const w = Math.max(1, Math.min(source.width - x, Math.ceil(box.w * sx)));
      const h = Math.max(1, Math.min(source.height - y, Math.ceil(box.h * sy)));
      form.append('box', `${x},${y},${w},${h}`);
    } else if (m === 'extend') {
      form.append('extend', ['ext-left', 'ext-top', 'ext-right', 'ext-bottom'].map((id) => $(id).value || '0').join(','));
    } else {
      form.append('strength', $('strength').value);
    }
    form.append('image', source.blob, 'image.png');
    const job = await api('/v1/edit', { method: 'POST', body: form });
    const final = await runLive(job, 'edit');
    $('before').src = URL.createObjectURL(await fetchBlob(final.result.before));
    $('after').src = URL.createObjectURL(await fetchBlob(final.result.images[0].url));
    $('before-after').hidden = false;
    await addResults(final);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
});

// --- Health --------------------------------------------------------------------------------
fetch('/healthz')
  .then((r) => r.json())
  .then((h) => ($('health').textContent = h.mode === 'redis' ? `queue ${h.queue ? `(${h.queue.waiting} waiting)` : ''}` : `${h.backend ?? ''} · ${h.bundle ? h.bundle.split('/').pop() : ''}`))
  .catch(() => {});
