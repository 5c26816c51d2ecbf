/** The admin API's JSON (openapi/admin.yaml), as far as the operator page uses it. */

export interface Subject {
  readonly id: string;
  readonly plan: string;
  readonly overrides: unknown;
  readonly suspended_at: string | null;
  readonly created_at: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly next_cursor?: string | null;
}

export interface ApiKey {
  readonly id: string;
  readonly subject: string;
  readonly prefix: string;
  readonly name: string | null;
  readonly scopes: readonly string[];
  readonly created_at: string;
  readonly expires_at: string | null;
  readonly revoked_at: string | null;
  readonly last_used_at: string | null;
  readonly replaces_key_id: string | null;
}

/** A created or rotated key: the only answers holding the plain key. */
export interface IssuedKey extends ApiKey {
  readonly key: string;
}

export interface CreditGrant {
  readonly metric: string;
  readonly amount: number;
}
