/**
 * The seeded data set, shared by the target (which writes it) and the load
 * generator (which reads, queries and updates it), so neither has to ship id lists
 * to the other: record j has a predictable id and field values.
 */
export const APP = 'com.freehold.bench';
/** Queried table: the bench app's manifest declares an index on `kind` only. */
export const SEEDED = `${APP}.seeded`;
/** Where CEPS write puts new records (and delete removes them). */
export const WRITES = `${APP}.writes`;
/** Distinct values of `kind` (and of `tag`): an equality query matches seed / KINDS records. */
export const KINDS = 1000;
/** Records per query page, as an app listing a view would ask. */
export const PAGE = 50;

export const seedId = (j: number): string => `seed${j.toString(36).padStart(6, '0')}`;
/** Spreads successive requests over the seed instead of walking it in order. */
export const spread = (i: number, n: number): number => (i * 7919) % Math.max(1, n);

export const kindOf = (j: number): string => `k${j % KINDS}`;

/**
 * The request paths the CEPS rows and their Fastify + SQLite ceiling rows both send,
 * so the two rows compared ask for exactly the same things.
 */
export const WRITE_PATH = `/ceps/write/${WRITES}`;
/** Read of the i-th request: spread over a seed of n records. */
export const readPath = (i: number, n: number): string => `/ceps/read/${SEEDED}/${seedId(spread(i, n))}`;
/** The indexed query of the i-th request: one page of one `kind`, walking the kinds. */
export const queryPath = (i: number): string => `/ceps/query/${SEEDED}?kind=${kindOf(i)}&_count=${PAGE}`;

/** Record j of the seed. `tag` carries the same values as `kind` but has no index. */
export function seedRecord(j: number, now: number): { _id: string; _date_created: number; _date_modified: number; kind: string; tag: string; n: number; text: string } {
  return { _id: seedId(j), _date_created: now, _date_modified: now + j, kind: kindOf(j), tag: kindOf(j), n: j, text: 'lorem ipsum dolor sit amet' };
}

/** The body of CEPS write/update: a small JSON note, the typical app record. */
export const smallBody = (j: number): string => JSON.stringify({ kind: kindOf(j), tag: kindOf(j), n: j, text: 'lorem ipsum dolor sit amet' });

/** A manifest for the bench app: the same path an app author takes to get an index. */
export const BENCH_MANIFEST = {
  identifier: APP,
  display_name: 'freehold bench',
  version: '1.0.0',
  app_tables: { [SEEDED]: { indexes: ['kind'] } },
};
