// One examination: indications, findings with their classifications and interventions, and the videos
// and reports recorded of it (pseudonymised data only).

import * as api from '../api.js';
import { h, label, replace } from '../dom.js';

export async function render(main, [id]) {
  const exam = await api.get(`/api/v1/patient-examinations/${id}`);
  const media = api.can('read_media')
    ? await Promise.all([api.get(`/api/v1/videos?patient_examination_id=${id}&per_page=100`), api.get(`/api/v1/reports?patient_examination_id=${id}&per_page=100`)])
    : [{ items: [] }, { items: [] }];
  replace(main, h('section', { class: 'page', id: 'examination-page' },
    h('div', { class: 'title-row' }, h('h1', {}, `${label(exam.examination)} ${exam.date || ''}`),
      h('a', { href: `#/patients/${exam.patient_id}`, class: 'button link' }, '← Patient')),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Center'), h('dd', {}, label(exam.center)),
      h('dt', {}, 'Indications'), h('dd', {}, exam.indications.length ? exam.indications.map((i) => label(i.choice ? `${i.indication} (${i.choice})` : i.indication)).join(', ') : '–')),
    h('h2', {}, 'Findings'),
    exam.findings.length ? h('ul', { class: 'findings', id: 'findings' }, exam.findings.map((f) => h('li', { dataset: { finding: f.finding } },
      h('strong', {}, label(f.finding)),
      f.classifications.length ? h('dl', { class: 'facts small' }, f.classifications.map((c) => [h('dt', {}, label(c.classification)), h('dd', {}, label(c.choice))])) : null,
      f.interventions.length ? h('p', { class: 'muted' }, 'Interventions: ', f.interventions.map((i) => `${label(i.intervention)}${i.state ? ` (${label(i.state)})` : ''}`).join(', ')) : null)))
      : h('p', { class: 'muted' }, 'No findings recorded.'),
    h('h2', {}, 'Media'),
    h('ul', {}, [...media[0].items.map((v) => h('li', {}, h('a', { href: `#/videos/${v.id}` }, `Video ${v.id}`), ` · ${label(v.state)}`)),
      ...media[1].items.map((r) => h('li', {}, h('a', { href: `#/reports/${r.id}` }, `Report ${r.id}`), ` · ${label(r.state)}`))],
    media[0].items.length + media[1].items.length ? null : h('li', { class: 'muted' }, 'None.'))));
}
