// Asked for when the server answers 401: a bearer token, kept in this tab's sessionStorage only.
import { api, ApiError, explain, setToken } from '../api.js';
import { h, setChildren } from '../dom.js';

export function mountSignIn(root, { refused = false, onSignedIn }) {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help',
  });
  const error = h(
    'p',
    { class: 'form-error', role: 'alert', hidden: !refused },
    refused ? 'That token was not accepted. Try another one.' : '',
  );
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-title', novalidate: true },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', null, 'This Lifeline server asks for an access token.'),
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Access token'), input),
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'The same token the CLI reads from LIFELINE_TOKEN. It stays in this browser tab (session storage) and is sent only to this server.',
    ),
    error,
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.textContent = 'Enter a token.';
      error.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    error.hidden = true;
    setToken(token);
    try {
      await api.plans();
      onSignedIn();
    } catch (err) {
      setToken(null);
      error.textContent =
        err instanceof ApiError && err.status === 401 ? 'That token was not accepted.' : explain(err);
      error.hidden = false;
      input.select();
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  setChildren(root, h('section', { class: 'page page-narrow' }, form));
  input.focus();
  return { title: 'Sign in', destroy() {} };
}
