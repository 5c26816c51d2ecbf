import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

// ajv-formats is CommonJS: its default export is the plugin itself.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const DOCUMENT_URI = 'urn:quotagate:openapi-admin';

/** One operation of the document: where it is and what it answers. */
export interface DocumentedOperation {
  readonly operationId: string;
  readonly method: string;
  /** The path template, e.g. `/admin/subjects/{id}`. */
  readonly path: string;
  /** Whether it needs the bearer token (an operation-level `security: []` says it does not). */
  readonly needsToken: boolean;
  /** Its documented status codes, e.g. `['200', '404']`. */
  readonly statuses: readonly string[];
}

/** An answer as received: what validate() checks against the document. */
export interface ReceivedResponse {
  readonly status: number;
  readonly headers: Headers;
  /** The raw body ('' for none). */
  readonly text: string;
}

type Json = Record<string, unknown>;

/** JSON Pointer escaping of one reference token (RFC 6901). */
const escapeToken = (token: string): string => token.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * An OpenAPI 3.1 document, and a checker of live answers against it: the
 * status must be documented for the operation, the media type must be one
 * its response declares (none for a response without content), the body must
 * match that media type's schema and each documented header its schema
 * (ajv, JSON Schema 2020-12 with formats). Every answer checked is recorded,
 * so a test can require that every operation and status was seen.
 */
export class OpenapiResponses {
  readonly document: Json;
  readonly operations: ReadonlyMap<string, DocumentedOperation>;
  private readonly ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly seen = new Map<string, Set<string>>();

  constructor(path: string) {
    this.document = parseYaml(readFileSync(path, 'utf8')) as Json;
    this.ajv.addSchema(this.document, DOCUMENT_URI);
    const operations = new Map<string, DocumentedOperation>();
    const topSecurity = this.document.security as unknown[] | undefined;
    for (const [path, item] of Object.entries(this.document.paths as Record<string, Json>)) {
      for (const method of HTTP_METHODS) {
        const operation = item[method] as Json | undefined;
        if (operation === undefined) continue;
        const operationId = operation.operationId as string;
        const security = (operation.security as unknown[] | undefined) ?? topSecurity ?? [];
        operations.set(operationId, {
          operationId,
          method: method.toUpperCase(),
          path,
          needsToken: security.length > 0,
          statuses: Object.keys(operation.responses as Json),
        });
      }
    }
    this.operations = operations;
  }

  /** The operation called `operationId`; throws for one the document does not have. */
  operation(operationId: string): DocumentedOperation {
    const operation = this.operations.get(operationId);
    if (operation === undefined) throw new Error(`openapi: no operation ${operationId}`);
    return operation;
  }

  /**
   * The problems of `response` as an answer of `operationId` (empty when it
   * conforms), recording the status as seen for the operation.
   */
  problems(operationId: string, response: ReceivedResponse): string[] {
    const operation = this.operation(operationId);
    const status = String(response.status);
    const where = `${operation.method} ${operation.path} → ${status}`;
    if (!operation.statuses.includes(status)) return [`${where}: status not documented (documented: ${operation.statuses.join(', ')})`];
    if (!this.seen.has(operationId)) this.seen.set(operationId, new Set());
    this.seen.get(operationId)!.add(status);
    const responsePointer = `/paths/${escapeToken(operation.path)}/${operation.method.toLowerCase()}/responses/${status}`;
    const [documented, pointer] = this.resolve(responsePointer);
    const problems: string[] = [];
    for (const [name, header] of Object.entries((documented.headers as Record<string, Json> | undefined) ?? {})) {
      const [, headerPointer] = this.resolve(`${pointer}/headers/${escapeToken(name)}`, header);
      const value = response.headers.get(name);
      if (value === null) problems.push(`${where}: header ${name} is documented but missing`);
      else problems.push(...this.schemaProblems(`${headerPointer}/schema`, value, `${where}: header ${name}`));
    }
    const content = documented.content as Record<string, unknown> | undefined;
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (content === undefined) {
      if (response.text !== '') problems.push(`${where}: a body (${mediaType}) where the document says none`);
      return problems;
    }
    if (!Object.hasOwn(content, mediaType)) {
      return [...problems, `${where}: content-type "${mediaType}" is not documented (documented: ${Object.keys(content).join(', ')})`];
    }
    let body: unknown;
    try {
      body = JSON.parse(response.text);
    } catch {
      return [...problems, `${where}: the body is not JSON: ${response.text.slice(0, 200)}`];
    }
    problems.push(...this.schemaProblems(`${pointer}/content/${escapeToken(mediaType)}/schema`, body, where));
    return problems;
  }

  /** `operationId status` pairs the document has and no answer checked so far had. */
  unseen(): string[] {
    return [...this.operations.values()].flatMap((operation) =>
      operation.statuses.filter((status) => !this.seen.get(operation.operationId)?.has(status)).map((status) => `${operation.operationId} ${status}`),
    );
  }

  /** The object at `pointer` (or `value`), following OpenAPI `$ref`s (`#/components/...`); with the pointer it was found at. */
  private resolve(pointer: string, value: unknown = this.at(pointer)): [Json, string] {
    let current = value as Json;
    let at = pointer;
    for (let hops = 0; typeof current.$ref === 'string'; hops++) {
      if (hops > 10) throw new Error(`openapi: $ref loop at ${pointer}`);
      at = (current.$ref as string).replace(/^#/, '');
      current = this.at(at) as Json;
    }
    return [current, at];
  }

  private at(pointer: string): unknown {
    let current: unknown = this.document;
    for (const token of pointer.split('/').slice(1)) {
      current = (current as Json | undefined)?.[token.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    if (current === undefined) throw new Error(`openapi: nothing at #${pointer}`);
    return current;
  }

  private schemaProblems(schemaPointer: string, value: unknown, where: string): string[] {
    let validate = this.validators.get(schemaPointer);
    if (validate === undefined) {
      validate = this.ajv.compile({ $ref: `${DOCUMENT_URI}#${schemaPointer}` });
      this.validators.set(schemaPointer, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => `${where}: ${error.instancePath || '(body)'} ${error.message} ${JSON.stringify(error.params)}`);
  }
}
