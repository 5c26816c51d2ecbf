/**
 * The messages between EmbeddedDatabase (the gateway's side) and
 * embedded-database-process.ts (the process that runs PGlite), over the
 * fork() IPC channel with `serialization: 'advanced'` (structured clone), so
 * parameters and rows keep their types: Dates, arrays, jsonb objects,
 * Uint8Array, numbers.
 *
 * Every request carries an `id`; the process answers each exactly once with
 * a Reply of that id, in any order.
 */
export type EmbeddedRequest =
  | { readonly id: number; readonly op: 'open'; readonly dataDir: string; readonly detectNestedUse: boolean }
  /** One statement, inside transaction `tx` when given. */
  | { readonly id: number; readonly op: 'query'; readonly text: string; readonly params: readonly unknown[]; readonly tx?: number }
  | { readonly id: number; readonly op: 'exec'; readonly script: string; readonly tx: number }
  /** Opens transaction `tx`; answered once it holds the engine. */
  | { readonly id: number; readonly op: 'begin'; readonly tx: number }
  /** Ends transaction `tx`: commit, or roll back; answered once it has ended. */
  | { readonly id: number; readonly op: 'commit' | 'rollback'; readonly tx: number }
  /** Closes the engine; the process exits after answering. */
  | { readonly id: number; readonly op: 'close' };

/** What a failed statement said: the message and PostgreSQL's error fields (SQLSTATE in `code`). */
export interface EmbeddedErrorFields {
  readonly message: string;
  readonly code?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly constraint?: string;
  readonly table?: string;
  readonly column?: string;
  readonly schema?: string;
  readonly severity?: string;
}

export type EmbeddedReply =
  | { readonly id: number; readonly ok: true; readonly rows?: readonly object[] }
  | { readonly id: number; readonly ok: false; readonly error: EmbeddedErrorFields };

const ERROR_FIELDS = ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'severity'] as const;

/** The fields of `error` that cross the channel (never a stack: it names the other process's files). */
export function errorFieldsOf(error: unknown): EmbeddedErrorFields {
  const fields: Record<string, string> = { message: error instanceof Error ? error.message : String(error) };
  if (typeof error === 'object' && error !== null) {
    for (const name of ERROR_FIELDS) {
      const value = (error as Record<string, unknown>)[name];
      if (typeof value === 'string') fields[name] = value;
    }
  }
  return fields as unknown as EmbeddedErrorFields;
}

/** An error the embedded engine reported, with its PostgreSQL fields, as PGlite's own errors carry them. */
export class EmbeddedDatabaseError extends Error {
  readonly code: string | undefined;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly constraint: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly schema: string | undefined;
  readonly severity: string | undefined;

  constructor(fields: EmbeddedErrorFields) {
    super(fields.message);
    this.name = 'EmbeddedDatabaseError';
    this.code = fields.code;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.constraint = fields.constraint;
    this.table = fields.table;
    this.column = fields.column;
    this.schema = fields.schema;
    this.severity = fields.severity;
  }
}
