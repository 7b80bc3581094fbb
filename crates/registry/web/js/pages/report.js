// A report: its anonymised text, each replacement the anonymiser made marked where it stands. The
// anonymiser writes what it removed as placeholders ([PATIENT_NAME], [BIRTH_DATE], [EXAMINATION_DATE],
// [EXAMINER]; the whole text is withheld when anonymisation failed); nothing else of the original is kept.

import * as api from '../api.js';
import { h, label, replace, when } from '../dom.js';
import { steps } from './worklist.js';

const PLACEHOLDERS = {
  '[PATIENT_NAME]': 'the patient’s name',
  '[BIRTH_DATE]': 'the birth date',
  '[EXAMINATION_DATE]': 'the examination date',
  '[EXAMINER]': 'the examiner’s name',
  '[TEXT WITHHELD: ANONYMISATION FAILED]': 'the whole text (anonymisation failed)',
};

/** The text as nodes, each placeholder a <mark> saying what it replaced. */
export function marked(text) {
  const pattern = new RegExp(Object.keys(PLACEHOLDERS).map((p) => p.replace(/[[\]():]/g, '\\$&')).join('|'), 'g');
  const out = [];
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    out.push(h('mark', { class: 'replaced', title: `replaced: ${PLACEHOLDERS[m[0]]}` }, m[0]));
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

export async function render(main, [id]) {
  const report = await api.get(`/api/v1/reports/${id}`);
  let text = null;
  if (report.state === 'anonymised') text = await api.request('GET', `/api/v1/reports/${id}/text`).then((r) => r.body);
  const count = text ? [...text.matchAll(/\[(PATIENT_NAME|BIRTH_DATE|EXAMINATION_DATE|EXAMINER)\]/g)].length : 0;
  replace(main, h('section', { class: 'page', id: 'report-page' },
    h('div', { class: 'title-row' }, h('h1', {}, `Report ${report.id}`), h('a', { href: '#/', class: 'button link' }, '← Worklist')),
    h('dl', { class: 'facts' },
      h('dt', {}, 'State'), h('dd', {}, steps('report', report.state), ' ', label(report.state), report.state_detail ? ` — ${report.state_detail}` : ''),
      h('dt', {}, 'Center'), h('dd', {}, label(report.center)),
      h('dt', {}, 'Type'), h('dd', {}, label(report.pdf_type || '–')),
      h('dt', {}, 'Examination'), h('dd', {}, report.patient_examination_id
        ? (api.can('read_clinical') ? h('a', { href: `#/examinations/${report.patient_examination_id}` }, `Examination ${report.patient_examination_id}`) : `Examination ${report.patient_examination_id}`)
        : 'not linked'),
      h('dt', {}, 'Received'), h('dd', {}, when(report.created_at))),
    text === null
      ? h('p', { class: 'notice' }, 'The anonymised text is not ready yet.')
      : [h('h2', {}, 'Anonymised text'),
        h('p', { class: 'muted', id: 'replacements' }, `${count} replacement${count === 1 ? '' : 's'} marked `, h('mark', { class: 'replaced' }, 'like this'), '.'),
        h('pre', { class: 'report-text', id: 'report-text' }, marked(text)),
        h('p', {}, h('a', { href: `/api/v1/reports/${id}/text`, download: `report-${id}-anonymised.txt` }, 'Download the text'))]));
}
