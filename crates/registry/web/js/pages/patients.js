// Patients for researchers: pseudonymised only (pseudonym, center, gender, birth year). Identities live
// behind their own permission and never appear here.

import * as api from '../api.js';
import { go, h, label, replace } from '../dom.js';

export async function render(main, _params, query) {
  const page = Math.max(1, Number(query.get('page')) || 1);
  const center = query.get('center') || '';
  const params = new URLSearchParams({ page, per_page: 50 });
  if (center) params.set('center', center);
  const list = await api.get(`/api/v1/patients?${params}`);
  const pages = Math.max(1, Math.ceil(list.total / list.per_page));
  replace(main, h('section', { class: 'page', id: 'patients' },
    h('h1', {}, 'Patients'),
    h('p', { class: 'muted' }, 'Pseudonymised: no names, birth dates or hospital numbers.'),
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Pseudonym'), h('th', {}, 'Center'), h('th', {}, 'Gender'), h('th', {}, 'Born'))),
      h('tbody', {}, list.items.length ? list.items.map((p) => h('tr', { dataset: { id: p.id } },
        h('td', {}, h('a', { href: `#/patients/${p.id}` }, p.pseudonym)), h('td', {}, label(p.center)), h('td', {}, label(p.gender || '–')), h('td', {}, p.birth_year ?? '–')))
        : h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'No patients.')))),
    h('nav', { class: 'pager' },
      page > 1 ? h('a', { href: '#', class: 'button', onclick: (e) => { e.preventDefault(); go('/patients', { center, page: page - 1 }); } }, '← Previous') : null,
      h('span', {}, `Page ${page} of ${pages} · ${list.total} patients`),
      page < pages ? h('a', { href: '#', class: 'button', onclick: (e) => { e.preventDefault(); go('/patients', { center, page: page + 1 }); } }, 'Next →') : null)));
}
