// The worklist: videos and reports, newest first, by state, with filters in the address (so a filtered
// view can be bookmarked) and pages fetched from the server, never the whole list. While anything on the
// page is being processed, the page asks again every few seconds (processing progress, live).

import * as api from '../api.js';
import { go, h, label, replace, select, when } from '../dom.js';

const VIDEO_STEPS = ['uploaded', 'probed', 'anonymised', 'frames_extracted', 'predicted', 'validated'];
const REPORT_STEPS = ['uploaded', 'text_extracted', 'anonymised'];
const POLL_MS = 3000;

let centers = null;

async function centerOptions() {
  if (!centers) {
    const page = await api.get('/api/v1/terminology/center?per_page=500');
    centers = page.items.map((c) => [c.name, c.name_en || label(c.name)]);
  }
  return centers;
}

/** The steps of an item's processing, done ones filled: live progress at a glance. */
export function steps(kind, state) {
  const all = kind === 'video' ? VIDEO_STEPS : REPORT_STEPS;
  const at = all.indexOf(state);
  return h('span', { class: `steps${state === 'failed' ? ' failed' : ''}`, title: label(state), 'aria-label': `state ${label(state)}` },
    all.map((s, i) => h('span', { class: i <= at ? 'done' : '' })));
}

function busy(item) {
  const final = item.kind === 'video' ? ['predicted', 'validated', 'failed'] : ['anonymised', 'failed'];
  return !final.includes(item.state) || (item.job && ['queued', 'running'].includes(item.job.state));
}

function version(key) {
  return key ? key.replace(/\.mp4$/, '').split('/').pop() : null;
}

function picture(item) {
  const framesThere = item.kind === 'video' && ['frames_extracted', 'predicted', 'validated'].includes(item.state);
  if (!framesThere || !item.anonymised_key) return h('span', { class: `thumb none ${item.kind}` }, item.kind === 'report' ? 'PDF' : '');
  return h('img', { class: 'thumb', loading: 'lazy', alt: '', width: 96, height: 54,
    src: `/api/v1/videos/${item.id}/thumbnail?v=${version(item.anonymised_key)}&width=96`,
    onerror: (e) => e.target.replaceWith(h('span', { class: 'thumb none video' })) });
}

function job(item) {
  if (!item.job) return '';
  const j = item.job;
  const text = j.state === 'running' ? `running (attempt ${j.attempts} of ${j.max_attempts})`
    : j.state === 'queued' ? (j.attempts ? `waiting to retry (${j.attempts} of ${j.max_attempts} tried)` : 'queued')
      : j.state;
  return h('span', { class: `job ${j.state}`, title: j.last_error || '' }, `${label(j.kind)}: ${text}`);
}

function row(item) {
  const href = `#/${item.kind === 'video' ? 'videos' : 'reports'}/${item.id}`;
  return h('tr', { dataset: { kind: item.kind, id: item.id, state: item.state } },
    h('td', {}, h('a', { href, tabindex: -1, 'aria-hidden': 'true' }, picture(item))),
    h('td', {}, h('a', { href, class: 'item' }, `${item.kind === 'video' ? 'Video' : 'Report'} ${item.id}`),
      item.processor ? h('div', { class: 'muted' }, label(item.processor)) : null),
    h('td', {}, label(item.center)),
    h('td', {}, steps(item.kind, item.state), ' ', h('span', { class: `state ${item.state}` }, label(item.state)),
      item.state_detail ? h('div', { class: 'muted detail' }, item.state_detail) : null),
    h('td', {}, job(item)),
    h('td', {}, when(item.received_at)));
}

export async function render(main, _params, query) {
  const filters = {
    kind: query.get('kind') || '',
    center: query.get('center') || '',
    state: query.get('state') || '',
    received_from: query.get('from') || '',
    received_to: query.get('to') || '',
  };
  const page = Math.max(1, Number(query.get('page')) || 1);
  const perPage = [25, 50, 100, 200].includes(Number(query.get('per_page'))) ? Number(query.get('per_page')) : 50;
  const params = new URLSearchParams({ page, per_page: perPage });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);

  const centerList = await centerOptions().catch(() => []);
  const states = ['', ...new Set([...VIDEO_STEPS, ...REPORT_STEPS, 'failed'])];
  const form = h('form', { class: 'filters', id: 'filters', onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(form);
    go('/', { kind: f.get('kind'), center: f.get('center'), state: f.get('state'), from: f.get('from'), to: f.get('to'), per_page: perPage === 50 ? '' : perPage });
  } },
  select('kind', 'Kind', [['', 'Videos and reports'], ['video', 'Videos'], ['report', 'Reports']], filters.kind),
  select('center', 'Center', [['', 'All centers'], ...centerList], filters.center),
  select('state', 'State', states.map((s) => [s, s ? label(s) : 'Any state']), filters.state),
  h('label', { for: 'f-from' }, 'Received from', h('input', { id: 'f-from', name: 'from', type: 'date', value: filters.received_from })),
  h('label', { for: 'f-to' }, 'to', h('input', { id: 'f-to', name: 'to', type: 'date', value: filters.received_to })),
  h('button', { type: 'submit' }, 'Filter'),
  h('a', { href: '#/', class: 'button link' }, 'Clear'));

  const chips = h('div', { class: 'chips', id: 'state-counts' });
  const body = h('tbody', { id: 'worklist-rows' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const status = h('p', { class: 'muted', id: 'worklist-status', 'aria-live': 'polite' });
  replace(main, h('section', { class: 'page', id: 'worklist' },
    h('div', { class: 'title-row' }, h('h1', {}, 'Worklist'), api.can('write_media') ? h('a', { href: '#/upload', class: 'button primary' }, 'Upload') : null),
    form, chips,
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', {}, h('span', { class: 'sr-only' }, 'Picture')), h('th', {}, 'Item'), h('th', {}, 'Center'), h('th', {}, 'State'), h('th', {}, 'Processing'), h('th', {}, 'Received'))),
      body),
    pager, status));

  const to = (p) => ({ kind: filters.kind, center: filters.center, state: filters.state, from: filters.received_from, to: filters.received_to,
    page: p === 1 ? '' : p, per_page: perPage === 50 ? '' : perPage });

  let timer = null;
  let stopped = false;
  async function load() {
    const list = await api.get(`/api/v1/worklist?${params}`);
    if (stopped) return;
    replace(body, list.items.length ? list.items.map(row) : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Nothing matches these filters.')));
    replace(chips, list.states.map((s) => h('a', {
      href: `#/?${new URLSearchParams({ ...(filters.kind ? { kind: filters.kind } : {}), ...(filters.center ? { center: filters.center } : {}), state: s.state })}`,
      class: `chip ${s.state === filters.state ? 'on' : ''}` }, `${s.kind}s ${label(s.state)}: ${s.count}`)));
    const pages = Math.max(1, Math.ceil(list.total / list.per_page));
    replace(pager,
      page > 1 ? h('a', { href: '#', class: 'button', onclick: (e) => { e.preventDefault(); go('/', to(page - 1)); } }, '← Previous') : h('span', { class: 'button disabled' }, '← Previous'),
      h('span', { id: 'page-of' }, `Page ${list.page} of ${pages} · ${list.total} item${list.total === 1 ? "" : "s"}`),
      page < pages ? h('a', { href: '#', class: 'button', id: 'next-page', onclick: (e) => { e.preventDefault(); go('/', to(page + 1)); } }, 'Next →') : h('span', { class: 'button disabled' }, 'Next →'));
    const live = list.items.some(busy);
    replace(status, live ? 'Processing: this page updates by itself.' : '');
    clearTimeout(timer);
    if (live) timer = setTimeout(poll, POLL_MS);
  }
  async function poll() {
    if (stopped) return;
    if (document.hidden) {
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    try {
      await load();
    } catch (e) {
      if (!stopped) timer = setTimeout(poll, POLL_MS * 3);
    }
  }
  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
