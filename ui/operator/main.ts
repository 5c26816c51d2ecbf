/**
 * The operator page (`/admin/ui` on the admin listener): sign in with the
 * admin token, then the operator views and the subjects; `#subject=<id>`
 * opens one subject's detail. The token is sent only as
 * `Authorization: Bearer` by fetch() to this origin and kept in this tab's
 * sessionStorage (ui/shared/session.ts says why).
 */
import './operator.css';
import { requestJson } from '../shared/api.js';
import { appRoot, h, replaceChildren } from '../shared/dom.js';
import { topBar } from '../shared/layout.js';
import { sessionCredential } from '../shared/session.js';
import { showSignInForm } from '../shared/sign-in.js';
import { adminClient, failure } from './admin-client.js';
import { overview } from './overview.js';
import { subjectDetail } from './subject-detail.js';

const credential = sessionCredential('quotagate.operator.token');
const root = appRoot();

window.addEventListener('hashchange', () => {
  const token = credential.read();
  if (token !== undefined) showPage(token);
});

const stored = credential.read();
if (stored === undefined) showSignIn();
else showPage(stored);

function showSignIn(problem?: string): void {
  showSignInForm(root, {
    field: 'admin-token',
    title: 'quotagate operator',
    label: 'Admin token',
    help: 'The token the gateway reads from admin.token_env. It stays in this browser tab and is sent only to this admin listener, as a header.',
    onSecret: (token) => void signIn(token),
    problem,
  });
}

/** Checks the token with one cheap call before keeping it. */
async function signIn(token: string): Promise<void> {
  const result = await requestJson('/admin/subjects?limit=1', { headers: { authorization: `Bearer ${token}` } });
  if (!result.ok) {
    showSignIn(`The admin API refused: ${failure(result)}`);
    return;
  }
  credential.write(token);
  showPage(token);
}

function showPage(token: string): void {
  const client = adminClient(token);
  const match = /^#subject=(.+)$/.exec(location.hash);
  const subject = match === null ? undefined : decodeURIComponent(match[1]!);
  const signOut = h(
    'button',
    {
      id: 'sign-out',
      type: 'button',
      onclick: () => {
        credential.forget();
        history.replaceState(null, '', location.pathname);
        showSignIn();
      },
    },
    'Sign out',
  );
  replaceChildren(
    root,
    topBar('quotagate operator', h('a', { href: '#', class: 'button' }, 'Overview'), signOut),
    subject === undefined ? overview(client) : subjectDetail(client, subject),
  );
}
