import { createHash } from 'node:crypto';

/** Instants and helpers shared by the database contract's modules. */
export const HOUR = Date.UTC(2026, 5, 15, 10);
export const DAY = Date.UTC(2026, 5, 15);
export const MONTH = Date.UTC(2026, 5, 1);
export const T0 = new Date(Date.UTC(2026, 5, 15, 10, 30));

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
