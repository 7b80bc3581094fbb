// One patient, pseudonymised, with the examinations recorded for them.

import * as api from '../api.js';
import { h, label, replace } from '../dom.js';

export async function render(main, [id]) {
  const [patient, exams] = await Promise.all([
    api.get(`/api/v1/patients/${id}`),
    api.get(`/api/v1/patient-examinations?patient_id=${id}&per_page=500`),
  ]);
  replace(main, h('section', { class: 'page', id: 'patient-page' },
    h('div', { class: 'title-row' }, h('h1', {}, `Patient ${patient.pseudonym}`), h('a', { href: '#/patients', class: 'button link' }, '← Patients')),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Center'), h('dd', {}, label(patient.center)),
      h('dt', {}, 'Gender'), h('dd', {}, label(patient.gender || '–')),
      h('dt', {}, 'Born'), h('dd', {}, patient.birth_year ?? '–')),
    h('h2', {}, 'Examinations'),
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Examination'), h('th', {}, 'Date'), h('th', {}, 'Center'))),
      h('tbody', {}, exams.items.length ? exams.items.map((e) => h('tr', {},
        h('td', {}, h('a', { href: `#/examinations/${e.id}` }, label(e.examination))), h('td', {}, e.date || '–'), h('td', {}, label(e.center))))
        : h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No examinations.'))))));
}
