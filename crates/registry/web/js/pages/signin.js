// Sign-in with an API token (today's credential). The token goes once to the registry, which answers with
// an HttpOnly session cookie; the field is cleared and the token kept nowhere. Signing in through the
// hospital's identity provider (issue 14) will add a button here that starts the OpenID Connect flow.

import * as api from '../api.js';
import { h, replace } from '../dom.js';

export function render(main, _params, query) {
  const next = query.get('next') || '#/';
  const error = h('p', { class: 'error', id: 'sign-in-error', role: 'alert' });
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    placeholder: 'endoreg_…', 'aria-describedby': 'token-help' });
  const form = h('form', { id: 'sign-in', class: 'card narrow', onsubmit: async (e) => {
    e.preventDefault();
    replace(error);
    const value = token.value.trim();
    token.value = '';
    try {
      await api.signIn(value);
      // Only our own routes: a `next` from elsewhere is not followed.
      location.replace(next.startsWith('#/') && !next.startsWith('#/sign-in') ? next : '#/');
    } catch (err) {
      replace(error, err.status === 401 ? 'This token is unknown, revoked or expired.' : err.message);
      token.focus();
    }
  } },
  h('h1', {}, 'Sign in'),
  h('label', { for: 'token' }, 'API token'),
  token,
  h('p', { id: 'token-help', class: 'help' }, 'Paste the token an administrator created for you (',
    h('code', {}, 'endoreg token create --role ROLE'), '). It is sent once; the browser keeps only a session cookie that scripts cannot read.'),
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  error);
  replace(main, h('section', { class: 'page' }, form));
  if (api.current()) replace(error, `You are signed in as ${api.current().role.replaceAll('_', ' ')}; signing in again replaces the session.`);
  token.focus();
}
