// Upload a video or a report PDF: drop it (or choose it), pick the center and, for videos, the endoscopy
// processor from the knowledge base, watch the bytes go. The registry recognises the file by its content,
// encrypts it at once and queues its processing.

import * as api from '../api.js';
import { h, label, replace, select, toast } from '../dom.js';

async function options(kind) {
  const page = await api.get(`/api/v1/terminology/${kind}?per_page=500`);
  return page.items.map((e) => [e.name, e.name_en ? `${e.name_en} (${e.name})` : label(e.name)]);
}

function size(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export async function render(main) {
  const [centers, processors] = await Promise.all([options('center'), options('endoscopy_processor')]);
  let file = null;
  const chosen = h('p', { class: 'muted', id: 'chosen' }, 'No file chosen.');
  const input = h('input', { type: 'file', id: 'file', accept: 'video/*,application/pdf,.mp4,.mov,.mkv,.webm,.avi,.ts,.pdf', class: 'sr-only' });
  const choose = (f) => {
    file = f;
    replace(chosen, f ? `${f.name} · ${size(f.size)}` : 'No file chosen.');
    send.disabled = !f;
  };
  input.addEventListener('change', () => choose(input.files[0] || null));
  const zone = h('label', { for: 'file', class: 'drop', id: 'drop', tabindex: 0 },
    h('strong', {}, 'Drop a video or report PDF here'), h('span', {}, 'or press to choose a file'));
  zone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      input.click();
    }
  });
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });

  const bar = h('progress', { id: 'upload-progress', max: 1, value: 0, hidden: true });
  const percent = h('span', { id: 'upload-percent', class: 'muted' });
  const result = h('div', { id: 'upload-result', role: 'status' });
  const send = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Upload');
  const form = h('form', { class: 'card', id: 'upload', onsubmit: async (e) => {
    e.preventDefault();
    if (!file) return;
    const f = new FormData(form);
    const metadata = { center: f.get('center') };
    if (f.get('processor')) metadata.processor = f.get('processor');
    send.disabled = true;
    bar.hidden = false;
    replace(result);
    try {
      const r = await api.upload(metadata, file, (p) => {
        bar.value = p;
        replace(percent, `${Math.round(p * 100)} %`);
      });
      bar.value = 1;
      replace(percent, '100 %');
      const item = r.body.video ? ['videos', r.body.video.id, 'Video'] : ['reports', r.body.report.id, 'Report'];
      replace(result, h('p', { class: 'ok' }, r.body.duplicate ? 'This file was uploaded before: ' : 'Uploaded: ',
        h('a', { href: `#/${item[0]}/${item[1]}` }, `${item[2]} ${item[1]}`), ` (processing job ${r.body.job.id}).`));
      choose(null);
    } catch (err) {
      replace(result, h('p', { class: 'error' }, err.message));
      toast('The upload failed.', 'error');
      send.disabled = false;
    }
  } },
  zone, input, chosen,
  select('center', 'Center', centers, centers[0]?.[0], { required: true }),
  select('processor', 'Endoscopy processor (videos: decides what anonymisation blanks)', [['', 'None (reports)'], ...processors], processors[0]?.[0]),
  h('div', { class: 'actions' }, send, bar, percent),
  result);
  replace(main, h('section', { class: 'page' }, h('h1', {}, 'Upload'), form));
}
