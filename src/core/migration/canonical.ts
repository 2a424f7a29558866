import { createHash, type Hash } from 'node:crypto';

/**
 * JSON with object keys sorted, so that two stores holding the same record hash the
 * same even when one reorders keys (PostgreSQL's jsonb does).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const keys = Object.keys(value).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson((value as Record<string, unknown>)[k])).join(',') + '}';
}

export function newHash(): Hash {
  return createHash('sha256');
}
