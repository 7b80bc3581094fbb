// The app's shell: hash routes (#/videos/3) to page modules loaded when first needed, the session, the
// navigation shown by the role's permissions. Pages check nothing themselves that the API does not
// check again: the server decides, the app only avoids offering what would be refused.

import * as api from './api.js';
import { h, replace, toast } from './dom.js';
import * as identity from './pages/identity.js';

const routes = [
  { path: /^\/sign-in$/, page: () => import('./pages/signin.js'), public: true },
  { path: /^\/$/, page: () => import('./pages/worklist.js'), needs: 'read_media' },
  { path: /^\/upload$/, page: () => import('./pages/upload.js'), needs: 'write_media' },
  { path: /^\/videos\/(\d+)$/, page: () => import('./pages/video.js'), needs: 'read_media' },
  { path: /^\/reports\/(\d+)$/, page: () => import('./pages/report.js'), needs: 'read_media' },
  { path: /^\/patients$/, page: () => import('./pages/patients.js'), needs: 'read_clinical' },
  { path: /^\/patients\/(\d+)$/, page: () => import('./pages/patient.js'), needs: 'read_clinical' },
  { path: /^\/examinations\/(\d+)$/, page: () => import('./pages/examination.js'), needs: 'read_clinical' },
  { path: /^\/identity$/, page: () => import('./pages/identity.js'), needs: 'read_identity' },
];

const main = document.getElementById('main');
let cleanup = null;
let rendering = 0;

function route() {
  const hash = location.hash.slice(1) || '/';
  const [path, query] = hash.split('?');
  return { path, query: new URLSearchParams(query || '') };
}

async function show() {
  const ticket = ++rendering;
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  const { path, query } = route();
  const match = routes.map((r) => [r, r.path.exec(path)]).find(([, m]) => m);
  if (!match) {
    replace(main, h('section', { class: 'page' }, h('h1', {}, 'Not found'), h('p', {}, 'There is no page here. ', h('a', { href: '#/' }, 'Go to the worklist.'))));
    return;
  }
  const [r, m] = match;
  if (!r.public && !api.current()) {
    const next = location.hash || '#/';
    location.replace(`#/sign-in?next=${encodeURIComponent(next)}`);
    return;
  }
  if (r.needs && !api.can(r.needs)) {
    replace(main, h('section', { class: 'page', id: 'refused' }, h('h1', {}, 'Not available to your role'),
      h('p', {}, `This page needs the permission “${r.needs.replaceAll('_', ' ')}”, which the role ${api.current().role.replaceAll('_', ' ')} does not have.`)));
    return;
  }
  replace(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    const page = await r.page();
    if (ticket !== rendering) return;
    const done = await page.render(main, m.slice(1), query);
    if (ticket !== rendering) {
      if (typeof done === 'function') done();
      return;
    }
    cleanup = typeof done === 'function' ? done : null;
  } catch (e) {
    if (ticket !== rendering) return;
    if (e instanceof api.ApiError && e.status === 401) return; // the session ended: onSession shows sign-in
    console.error(e);
    replace(main, h('section', { class: 'page' }, h('h1', {}, e instanceof api.ApiError && e.status === 404 ? 'Not found' : 'Something went wrong'),
      h('p', { class: 'error' }, e.message)));
  }
}

function updateShell(session) {
  const nav = document.getElementById('nav');
  nav.hidden = !session;
  for (const a of nav.querySelectorAll('a[data-needs]')) {
    const feature = a.dataset.feature;
    a.hidden = !api.can(a.dataset.needs) || (feature === 'identity' && !identity.available);
  }
  replace(document.getElementById('who'), session ? `${session.role.replaceAll('_', ' ')} · token ${session.token_id}` : '');
  document.getElementById('sign-out').hidden = !session;
  markCurrent();
}

function markCurrent() {
  const { path } = route();
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(1);
    const here = target === '/' ? path === '/' || /^\/(videos|reports)\//.test(path) : path.startsWith(target);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

api.onSession((session, why) => {
  updateShell(session);
  if (why === 'expired' && route().path !== '/sign-in') {
    toast('Your session has ended; sign in again.');
    location.replace(`#/sign-in?next=${encodeURIComponent(location.hash || '#/')}`);
  }
});

document.getElementById('sign-out').addEventListener('click', async () => {
  await api.signOut().catch(() => {});
  location.hash = '#/sign-in';
});

window.addEventListener('hashchange', () => {
  markCurrent();
  show();
});

(async () => {
  try {
    await api.resume();
  } catch (e) {
    toast(`The registry cannot be reached: ${e.message}`, 'error');
  }
  updateShell(api.current());
  show();
})();
