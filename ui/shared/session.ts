/**
 * The credential a page signed in with, kept in sessionStorage: it lives as
 * long as the tab, is readable only by scripts of this origin (which the
 * Content-Security-Policy limits to the page's own bundle), is never sent by
 * the browser on its own (unlike a cookie) and never appears in a URL or the
 * history. Closing the tab or signing out forgets it.
 */
export interface StoredCredential {
  read(): string | undefined;
  write(value: string): void;
  forget(): void;
}

/** The credential stored under `name` in this tab's sessionStorage (in memory only if storage is refused). */
export function sessionCredential(name: string): StoredCredential {
  let memory: string | undefined;
  const storage = (): Storage | undefined => {
    try {
      return window.sessionStorage;
    } catch {
      return undefined;
    }
  };
  return {
    read: () => storage()?.getItem(name) ?? memory,
    write: (value) => {
      memory = value;
      try {
        storage()?.setItem(name, value);
      } catch {
        // Storage full or refused: the credential stays in memory for this page only.
      }
    },
    forget: () => {
      memory = undefined;
      storage()?.removeItem(name);
    },
  };
}
