import { h, replaceChildren } from './dom.js';
import { errorLine } from './layout.js';

/** What a dashboard's sign-in form asks for. */
export interface SignInOptions {
  /** The secret's field: its input's id and name (`api-key`, `admin-token`). */
  readonly field: string;
  readonly title: string;
  readonly label: string;
  /** Where the secret goes and how long it stays, under the field. */
  readonly help: string;
  readonly placeholder?: string;
  /** Called with the trimmed secret when the form is submitted with one. */
  readonly onSecret: (secret: string) => void;
  /** Why the last sign-in failed, shown under the button. */
  readonly problem?: string | undefined;
}

/**
 * Replaces `root`'s content with a sign-in form for one secret (a password
 * field: never autocompleted or spell-checked) and focuses the field.
 */
export function showSignInForm(root: HTMLElement, options: SignInOptions): void {
  const input = h('input', {
    id: options.field,
    name: options.field,
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: options.placeholder,
    'aria-describedby': 'sign-in-help',
  });
  const form = h(
    'form',
    {
      id: 'sign-in',
      class: 'card sign-in',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const secret = input.value.trim();
        if (secret !== '') options.onSecret(secret);
      },
    },
    h('h1', {}, options.title),
    h('label', { for: options.field }, options.label),
    input,
    h('p', { id: 'sign-in-help', class: 'help' }, options.help),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    options.problem === undefined ? null : errorLine('sign-in-error', options.problem),
  );
  replaceChildren(root, form);
  input.focus();
}
