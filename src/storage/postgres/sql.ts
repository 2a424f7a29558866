/** The fixed SQL of the PostgreSQL record store (see record-store.ts for the design). */
import { createHash } from 'node:crypto';
import { SYSTEM_OWNER } from '../../core/system-tables.js';

/** Advisory lock namespaces ("free", "fref"): init/DDL, and one lock per owner for writes. */
export const DDL_LOCK = 1718773093;
export const OWNER_LOCK = 1718773094;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export type Statements = ReturnType<typeof statements>;

/**
 * The notification channel on which the trigger below reports changes to system
 * records (change-listener.ts): one per schema, so stores in different schemas of one
 * database do not hear each other. Channel names are identifiers (at most 63 bytes).
 */
export function systemChannel(schema: string | null): string {
  return schema === null ? 'fh_system_changed' : `fh_system_changed_${createHash('sha256').update(schema).digest('hex').slice(0, 24)}`;
}

/**
 * All fixed SQL of one store, with table names qualified by the configured schema.
 * Every write is one statement that also appends its `changes` row, so alone it
 * commits atomically in one round trip. Record writes take (owner, table, id, …) as
 * $1..$3, which the store relies on to name the record in errors.
 */
export function statements(schema: string | null) {
  const p = schema ? quoteIdent(schema) + '.' : '';
  const records = `${p}records`;
  const changes = `${p}changes`;
  // Taken first by every write (see the store's comment); the lock CTE feeds the write, so it runs before it.
  // Re-taking it in a transaction that holds it already only bumps a local count.
  const lock = `lock AS (SELECT pg_advisory_xact_lock(${OWNER_LOCK}, hashtext($1::text)) AS locked)`;
  const values = 'SELECT $1::text, $2::text, $3::text, $4::int8, $5::int8, $6::jsonb FROM lock';
  const insert = `INSERT INTO ${records} (owner, tbl, id, created, modified, data) ${values}`;
  const logPut = `INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, $2, id, 'put', $7::int8 FROM w`;
  return {
    records,
    /**
     * Whether every object `schema` makes is there ($1..$5: installedNames). When it is,
     * a store starts without any DDL, so it can run as a role that may only read and
     * write the tables: even CREATE … IF NOT EXISTS needs the right to create (or to own
     * the table, for an index) before PostgreSQL looks whether the object exists. Any
     * object added to `schema` must be checked here too.
     */
    installed: `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL
      AND to_regclass($4) IS NOT NULL AND to_regprocedure($5) IS NOT NULL
      AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'fh_system_changed' AND tgrelid = to_regclass($1))
      AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'body' AND NOT attisdropped)`,
    installedNames: [records, changes, `${p}records_by_modified`, `${p}changes_by_owner`, `${p}fh_system_changed()`],
    schema: `
      CREATE TABLE IF NOT EXISTS ${records} (
        owner    text COLLATE "C" NOT NULL,
        tbl      text COLLATE "C" NOT NULL,
        id       text COLLATE "C" NOT NULL,
        created  bigint NOT NULL,
        modified bigint NOT NULL,
        data     jsonb  NOT NULL,
        -- The record as jsonb's output text, made once per write rather than once per read:
        -- jsonb_out over a 50-record page was about a third of PostgreSQL's CPU per query.
        body     text   GENERATED ALWAYS AS (data::text) STORED,
        -- (owner, table) as one injective value (length-prefixed owner): see the store's comment.
        scope    text COLLATE "C" NOT NULL GENERATED ALWAYS AS (length(owner)::text || ':' || owner || tbl) STORED,
        PRIMARY KEY (owner, tbl, id)
      );
      -- Stores made before the column existed get it here (PostgreSQL rewrites the table once).
      ALTER TABLE ${records} ADD COLUMN IF NOT EXISTS body text GENERATED ALWAYS AS (data::text) STORED;
      CREATE INDEX IF NOT EXISTS records_by_modified ON ${records} (scope, modified DESC, id);
      CREATE TABLE IF NOT EXISTS ${changes} (
        seq   bigserial PRIMARY KEY,
        owner text COLLATE "C" NOT NULL,
        tbl   text COLLATE "C" NOT NULL,
        id    text COLLATE "C" NOT NULL,
        op    text   NOT NULL,
        at    bigint NOT NULL
      );
      CREATE INDEX IF NOT EXISTS changes_by_owner ON ${changes} (owner, seq);
      -- Any connection updating or deleting a system record (a revoked token, say) tells every
      -- store listening (change-listener.ts). Inserts need no word: nothing caches an absence.
      -- Made only when missing, so a store connecting as a role that does not own them still starts.
      DO $do$ BEGIN
        IF to_regprocedure('${p}fh_system_changed()') IS NULL THEN
          CREATE FUNCTION ${p}fh_system_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN PERFORM pg_notify('${systemChannel(schema)}', ''); RETURN NULL; END $fn$;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'fh_system_changed' AND tgrelid = '${records}'::regclass) THEN
          CREATE TRIGGER fh_system_changed AFTER UPDATE OR DELETE ON ${records}
            FOR EACH ROW WHEN (OLD.owner = '${SYSTEM_OWNER}') EXECUTE FUNCTION ${p}fh_system_changed();
        END IF;
      END $do$;`,
    /** Taken first by a write that runs as a transaction of its own (an update or delete by query). */
    ownerLock: `SELECT pg_advisory_xact_lock(${OWNER_LOCK}, hashtext($1::text))`,
    get: `SELECT body FROM ${records} WHERE owner = $1 AND tbl = $2 AND id = $3`,
    /** An existing id inserts nothing (rowCount 0), so a conflict fails no other write of its group. */
    create: `WITH ${lock}, w AS (${insert} ON CONFLICT DO NOTHING RETURNING id) ${logPut}`,
    /**
     * Several creates as one statement (the write queue's combined creates), each as
     * `create` alone: one whose id exists inserts nothing. Parameters: insertManyOf.
     */
    createMany: insertManyOf(records, changes, lock, 'ON CONFLICT DO NOTHING'),
    /** Several of a batch's `createStrict` as one: an existing id fails it whole. */
    createStrictMany: insertManyOf(records, changes, lock, ''),
    /** Several of a batch's `put` as one. */
    putMany: insertManyOf(records, changes, lock,
      'ON CONFLICT (owner, tbl, id) DO UPDATE SET created = excluded.created, modified = excluded.modified, data = excluded.data'),
    /**
     * In a batch: an existing id raises unique_violation, which aborts the transaction
     * (the batch must fail whole, and pipelined statements cannot wait to look).
     */
    createStrict: `WITH ${lock}, w AS (${insert} RETURNING id) ${logPut}`,
    put: `WITH ${lock}, w AS (${insert}
      ON CONFLICT (owner, tbl, id) DO UPDATE SET created = excluded.created, modified = excluded.modified, data = excluded.data
      RETURNING id) ${logPut}`,
    replace: `WITH ${lock}, w AS (UPDATE ${records} SET created = $4::int8, modified = $5::int8, data = $6::jsonb FROM lock
      WHERE owner = $1 AND tbl = $2 AND id = $3::text RETURNING id) ${logPut}`,
    /** update(): the new record is built from the stored row by the UPDATE itself (see updateOf). */
    updateMerge: updateOf(records, lock, logPut, MERGE_BASE),
    updateKeep: updateOf(records, lock, logPut, KEEP_BASE),
    /**
     * Several updates as one statement (the write queue's combined updates), each as
     * `updateMerge` or `updateKeep` alone: $1 owner, then per update, in order, $2 tables,
     * $3 ids, $5 modification times, $6 budgets, $7 times of the change rows, $4 the
     * fields as one JSON array, and ($8, shared) the fields kept. Returns the position
     * (from 1), created and modified of each record updated. The queue never puts one
     * (table, id) twice in one.
     */
    updateMergeMany: updateManyOf(records, changes, lock, MERGE_BASE),
    updateKeepMany: updateManyOf(records, changes, lock, KEEP_BASE),
    delete: `WITH ${lock}, w AS (DELETE FROM ${records} USING lock WHERE owner = $1 AND tbl = $2 AND id = $3 RETURNING id, data),
      c AS (INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, $2, id, 'delete', $4::int8 FROM w) SELECT data FROM w`,
    drop: `WITH ${lock}, w AS (DELETE FROM ${records} USING lock WHERE owner = $1 AND tbl = $2 RETURNING id),
      c AS (INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, $2, id, 'delete', $3::int8 FROM w) SELECT count(*) FROM w`,
    listTables: `SELECT tbl, count(*) FROM ${records} WHERE owner = $1 GROUP BY tbl ORDER BY tbl`,
    usage: `SELECT count(*)::int8, coalesce(sum(octet_length(body)), 0)::int8 FROM ${records} WHERE owner = $1`,
    changes: `SELECT seq, tbl AS "table", id, op, at FROM ${changes} WHERE owner = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
  };
}

/** What an update builds the new record on: the whole stored record (merge), or only its fields named in $8 (keep). */
const MERGE_BASE = 'r.data';
const KEEP_BASE = `CASE WHEN r.data ?| $8::text[]
      THEN (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(r.data) AS e WHERE e.key = ANY($8::text[])) ELSE '{}'::jsonb END`;

/**
 * A single-statement update taking (owner, table, id, fields, modified, budget, at[, keep]):
 * `base` (an expression over the stored row `r`: all of its data, or the kept fields)
 * with the new fields over it, and the stored id and creation date. Built inside the
 * UPDATE, the expressions see the row's latest version even when a concurrent write got
 * there first (PostgreSQL re-evaluates them on it), so nothing is lost between reading
 * and writing. The size check errs large: `base` in jsonb's text (never shorter than
 * the JSON.stringify of the same values, which is what the limit counts) within a
 * budget the caller has left after the new fields; a row failing it is left alone.
 * Answers (created, modified), or no row when nothing was written.
 */
function updateOf(records: string, lock: string, logPut: string, base: string): string {
  const modified = 'greatest($5::int8, r.modified + 1)';
  return `WITH ${lock}, w AS (UPDATE ${records} AS r SET modified = ${modified},
      data = ${base} || $4::jsonb || jsonb_build_object('_id', r.id, '_date_created', r.created, '_date_modified', ${modified})
      FROM lock WHERE r.owner = $1 AND r.tbl = $2 AND r.id = $3::text AND octet_length((${base})::text) <= $6::int8
      RETURNING r.id, r.created, r.modified),
    c AS (${logPut}) SELECT created, modified FROM w`;
}

/** updateOf for several records (parameters: `updateMergeMany`); the rows' order does not matter, as no two are the same record. */
function updateManyOf(records: string, changes: string, lock: string, base: string): string {
  const modified = 'greatest(v.modified, r.modified + 1)';
  return `WITH ${lock},
    ${writeRows(['modified', 'budget', 'at'], ['$5', '$6', '$7'], 'fields', '$4')},
    w AS (UPDATE ${records} AS r SET modified = ${modified},
        data = ${base} || v.fields || jsonb_build_object('_id', r.id, '_date_created', r.created, '_date_modified', ${modified})
      FROM v, lock WHERE r.owner = $1 AND r.tbl = v.tbl AND r.id = v.id AND octet_length((${base})::text) <= v.budget
      RETURNING r.tbl, r.id, r.created, r.modified),
    i AS (SELECT v.ord, v.tbl, v.id, v.at, w.created, w.modified FROM v JOIN w ON w.tbl = v.tbl AND w.id = v.id),
    ${logPuts(changes)}
    SELECT ord, created, modified FROM i`;
}

/**
 * Several record inserts as one statement: $1 owner, then per record, in order, $2
 * tables, $3 ids, $4 created, $5 modified, $7 times of the change rows, and $6 the
 * records as one JSON array. Returns the position (from 1) of each record written.
 * Rows go in, and their changes are numbered, in the records' order. The queue never
 * puts one (table, id) twice in one (a second would have to see the first).
 */
function insertManyOf(records: string, changes: string, lock: string, onConflict: string): string {
  return `WITH ${lock},
    ${writeRows(['created', 'modified', 'at'], ['$4', '$5', '$7'], 'data', '$6')},
    w AS (INSERT INTO ${records} (owner, tbl, id, created, modified, data)
      SELECT $1::text, v.tbl, v.id, v.created, v.modified, v.data FROM v, lock ORDER BY v.ord
      ${onConflict} RETURNING tbl, id),
    i AS (SELECT v.tbl, v.id, v.at, v.ord FROM v JOIN w ON w.tbl = v.tbl AND w.id = v.id),
    ${logPuts(changes)}
    SELECT i.ord FROM i`;
}

/**
 * The CTE `v` of a statement doing several writes: one row per write, in call order
 * (`ord`, from 1), with its table ($2) and id ($3), `columns` from the int8 array
 * parameters `params`, and `json` from the elements of the JSON array parameter `jsonParam`.
 */
function writeRows(columns: string[], params: string[], json: string, jsonParam: string): string {
  return `v AS (SELECT v.tbl COLLATE "C" AS tbl, v.id COLLATE "C" AS id, ${columns.map((c) => `v.${c}`).join(', ')}, d.${json}, v.ord
      FROM unnest($2::text[], $3::text[], ${params.map((p) => `${p}::int8[]`).join(', ')}) WITH ORDINALITY AS v(tbl, id, ${columns.join(', ')}, ord)
      JOIN jsonb_array_elements(${jsonParam}::jsonb) WITH ORDINALITY AS d(${json}, ord) ON d.ord = v.ord)`;
}

/** The CTE `c`: a `put` change for each write done (the CTE `i`: table, id, `at`, `ord`), numbered in call order. */
function logPuts(changes: string): string {
  return `c AS (INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, i.tbl, i.id, 'put', i.at FROM i ORDER BY i.ord)`;
}
