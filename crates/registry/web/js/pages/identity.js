// Identity verification (issue 13) belongs here: each OCR'd overlay field beside the picture of its
// region, confirm or correct, the proposed patient/examination link, then the before/after anonymisation
// check. The registry does not offer that API yet, so the navigation entry stays hidden (`available`)
// and this page only says so. When the API lands, set `available` from its presence in
// /api/openapi.json and build the page on it; nothing else in the app needs to change.

import { h, replace } from '../dom.js';

export const available = false;

export function render(main) {
  replace(main, h('section', { class: 'page', id: 'identity-placeholder' },
    h('h1', {}, 'Identity verification'),
    h('p', { class: 'notice' }, 'Verifying identities comes with the registry’s identity API, which this version does not have yet.')));
}
