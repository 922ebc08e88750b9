// Boot and routing. Routes live in the hash (#/, #/d/NAME, #/stacks, #/s/NAME), so moving around never reloads the page.
import { ApiError, session, sessionEvents, signOut } from './api.js';
import { clearToasts } from './dom.js';
import { refreshRelativeTimes } from './format.js';
import { getPlans, setConn } from './shell.js';
import { mountDeployment } from './views/deployment.js';
import { mountList } from './views/list.js';
import { mountStack } from './views/stack.js';
import { mountStacks } from './views/stacks.js';
import { mountSignIn } from './views/signin.js';

const main = document.getElementById('main');
let view = null;
let needSignIn = false;
let refused = false;
let signingIn = false;
let booted = false;

function parseRoute() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/')) return null; // an in-page anchor, not a route
  const [path, qs] = hash.slice(1).split('?');
  const m = /^\/d\/([^/]+)\/?$/.exec(path);
  if (m) return { name: 'deployment', ref: decodeURIComponent(m[1]) };
  const st = /^\/s\/([^/]+)\/?$/.exec(path);
  if (st) return { name: 'stack', ref: decodeURIComponent(st[1]) };
  if (/^\/stacks\/?$/.test(path)) return { name: 'stacks' };
  return { name: 'list', params: new URLSearchParams(qs ?? '') };
}

function render({ focus = false } = {}) {
  const route = parseRoute();
  if (!route) return;
  view?.destroy();
  view = null;
  clearToasts(location.hash);
  setConn('idle');
  if (needSignIn) {
    signingIn = true;
    view = mountSignIn(main, {
      refused,
      onSignedIn: () => {
        needSignIn = false;
        refused = false;
        signingIn = false;
        renderSession();
        render({ focus: true });
      },
    });
    document.title = 'Sign in · Lifeline';
    return;
  }
  signingIn = false;
  const mount =
    { deployment: mountDeployment, stack: mountStack, stacks: mountStacks }[route.name] ?? mountList;
  view = mount(main, route);
  document.title = route.ref ? `${route.ref} · Lifeline` : `${view.title} · Lifeline`;
  for (const [id, names] of [
    ['nav-deployments', ['list']],
    ['nav-stacks', ['stacks']],
  ]) {
    const nav = document.getElementById(id);
    if (names.includes(route.name)) nav.setAttribute('aria-current', 'page');
    else nav.removeAttribute('aria-current');
  }
  // After a route change, start reading at the new content (not at the link that was clicked).
  if (focus) {
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

function renderSession() {
  const chip = document.getElementById('role');
  const out = document.getElementById('signout');
  if (session.role) {
    chip.hidden = false;
    chip.textContent = session.role;
    chip.dataset.role = session.role;
    chip.title = session.token
      ? `Your token has the ${session.role} role`
      : `No authentication on this server: everyone on this machine is ${session.role}`;
  } else chip.hidden = true;
  out.hidden = !session.token;
}

sessionEvents.addEventListener('role', () => {
  renderSession();
  view?.onRole?.();
});

sessionEvents.addEventListener('auth', (e) => {
  if (signingIn) return;
  // A token that worked stopped working (revoked), or there never was one.
  refused = e.detail.hadToken;
  signOut();
  needSignIn = true;
  renderSession();
  if (booted) render({ focus: true });
});

document.getElementById('signout').addEventListener('click', () => {
  signOut();
  needSignIn = true;
  refused = false;
  renderSession();
  render({ focus: true });
});

document.getElementById('skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', () => render({ focus: true }));
setInterval(() => refreshRelativeTimes(), 15_000);

async function boot() {
  try {
    await getPlans(); // tells whether a token is needed, and the role of the one we have
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      needSignIn = true;
    }
  }
  booted = true;
  renderSession();
  render();
}
void boot();
