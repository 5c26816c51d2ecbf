import type { IdempotencyTicket, StoredResponse } from '../core/idempotency.js';
import { storedResponseBytes } from '../core/idempotency.js';

/** One key's record: in flight until `response` is set. */
export interface IdempotencyRecord {
  readonly fingerprint: string;
  readonly attempt: string;
  readonly response: StoredResponse | undefined;
  /** Epoch ms after which the record is gone. */
  readonly expiresAtMs: number;
}

interface Entry {
  record: IdempotencyRecord;
  bytes: number;
}

/** One subject's records, least recently used first (a Map keeps insertion order). */
interface SubjectRecords {
  readonly byKey: Map<string, Entry>;
  bytes: number;
}

export interface IdempotencyRecordsOptions {
  /** All subjects' records together, in bytes (`idempotency.memory.max_bytes`). */
  readonly maxBytes: number;
  /** One subject's share, in bytes (`idempotency.memory.subject_max_bytes`). */
  readonly subjectMaxBytes: number;
}

/** Bytes every record is charged beyond its response: key, fingerprint, attempt and bookkeeping. */
export const RECORD_OVERHEAD_BYTES = 512;

/**
 * The memory store's Idempotency-Key records, bounded twice: each subject
 * holds at most `subjectMaxBytes` (past it, that subject's own least
 * recently used records go), and all together at most `maxBytes` (past it,
 * the records of the least recently active subject go first). So one busy
 * subject can only ever evict its own records. A record that alone is larger
 * than a subject's share is not kept. Expired records are dropped when met.
 */
export class IdempotencyRecords {
  /** Least recently active subject first. */
  private readonly subjects = new Map<string, SubjectRecords>();
  private totalBytes = 0;

  constructor(private readonly options: IdempotencyRecordsOptions) {}

  /** The live record of `key` for `subject`, if any (marking it recently used). */
  get(subject: string, key: string, nowMs: number): IdempotencyRecord | undefined {
    const records = this.subjects.get(subject);
    const entry = records?.byKey.get(key);
    if (records === undefined || entry === undefined) return undefined;
    if (entry.record.expiresAtMs <= nowMs) {
      this.remove(subject, records, key, entry);
      return undefined;
    }
    this.touch(subject, records, key, entry);
    return entry.record;
  }

  /** Stores `record` under `key`, replacing any, within the bounds. */
  set(subject: string, key: string, record: IdempotencyRecord): void {
    const bytes = RECORD_OVERHEAD_BYTES + (record.response === undefined ? 0 : storedResponseBytes(record.response));
    let records = this.subjects.get(subject);
    const existing = records?.byKey.get(key);
    if (records !== undefined && existing !== undefined) this.remove(subject, records, key, existing);
    if (bytes > this.options.subjectMaxBytes) return;
    records = this.subjects.get(subject);
    if (records === undefined) {
      records = { byKey: new Map(), bytes: 0 };
      this.subjects.set(subject, records);
    } else {
      this.subjects.delete(subject);
      this.subjects.set(subject, records);
    }
    records.byKey.set(key, { record, bytes });
    records.bytes += bytes;
    this.totalBytes += bytes;
    this.evictWithin(subject, records);
  }

  /** The record of the ticket's key, if it is still the ticket's own in-flight mark. */
  inFlightOf(ticket: IdempotencyTicket, nowMs: number): IdempotencyRecord | undefined {
    const record = this.get(ticket.subject, ticket.key, nowMs);
    return record !== undefined && record.attempt === ticket.attempt && record.response === undefined ? record : undefined;
  }

  /** Deletes the record of `key`, if any. */
  delete(subject: string, key: string): void {
    const records = this.subjects.get(subject);
    const entry = records?.byKey.get(key);
    if (records !== undefined && entry !== undefined) this.remove(subject, records, key, entry);
  }

  /** Bytes held by all records (for tests and sizing). */
  get bytes(): number {
    return this.totalBytes;
  }

  clear(): void {
    this.subjects.clear();
    this.totalBytes = 0;
  }

  private touch(subject: string, records: SubjectRecords, key: string, entry: Entry): void {
    records.byKey.delete(key);
    records.byKey.set(key, entry);
    this.subjects.delete(subject);
    this.subjects.set(subject, records);
  }

  private remove(subject: string, records: SubjectRecords, key: string, entry: Entry): void {
    records.byKey.delete(key);
    records.bytes -= entry.bytes;
    this.totalBytes -= entry.bytes;
    if (records.byKey.size === 0) this.subjects.delete(subject);
  }

  /** Drops `subject`'s oldest records past its share, then other subjects' past the total. */
  private evictWithin(subject: string, records: SubjectRecords): void {
    for (const [key, entry] of records.byKey) {
      if (records.bytes <= this.options.subjectMaxBytes) break;
      this.remove(subject, records, key, entry);
    }
    for (const [other, otherRecords] of this.subjects) {
      if (this.totalBytes <= this.options.maxBytes) break;
      for (const [key, entry] of otherRecords.byKey) {
        if (this.totalBytes <= this.options.maxBytes) break;
        this.remove(other, otherRecords, key, entry);
      }
    }
  }
}
