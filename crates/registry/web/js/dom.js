// Building the page from data without ever parsing data as HTML: every value becomes a text node or an
// attribute, so nothing a record holds can run as script.

/** Creates element `tag` with `attrs` (properties for `on*` handlers and `class`, attributes otherwise)
 *  and `children` (strings become text nodes; null and false are skipped; arrays are flattened). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A date and time in the reader's locale. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Seconds as m:ss.s or h:mm:ss. */
export function clock(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.max(0, seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const sec = hours ? String(Math.floor(rest)).padStart(2, '0') : rest.toFixed(1).padStart(4, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${sec}` : `${minutes}:${sec}`;
}

/** A short notice in the corner; `kind` is info or error. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast ${kind}` }, message);
  box.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 3500);
}

/** A labelled select of `options` ([value, text]); `value` selected. */
export function select(name, label, options, value, attrs = {}) {
  const id = `f-${name}`;
  return h('label', { for: id }, label,
    h('select', { id, name, ...attrs },
      options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, text))));
}

/** The query of the current hash route (`#/path?a=1`). */
export function hashQuery() {
  const hash = location.hash.slice(1);
  const i = hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : hash.slice(i + 1));
}

/** Sets the hash route to `path` with `params` (empty values left out). */
export function go(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  location.hash = `#${path}${s ? `?${s}` : ''}`;
}

/** A readable name for a terminology or state value (`frames_extracted` → `frames extracted`). */
export function label(name) {
  return String(name ?? '').replaceAll('_', ' ');
}
