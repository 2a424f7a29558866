/**
 * The storage ceiling on this machine: raw better-sqlite3 with the same pragmas and a
 * similar table, one insert per transaction (what one CEPS write costs at least) and
 * point selects by primary key.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface CeilingResult {
  insertPerSec: number;
  selectPerSec: number;
}

export function measureSqliteCeiling(n = 20000): CeilingResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-bench-sqlite-'));
  const db = new Database(path.join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (owner TEXT, tbl TEXT, id TEXT, created INTEGER, modified INTEGER, data TEXT, PRIMARY KEY (owner, tbl, id)) WITHOUT ROWID');
  const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)');
  const select = db.prepare('SELECT data FROM t WHERE owner = ? AND tbl = ? AND id = ?');
  const body = JSON.stringify({ title: 'hello', text: 'lorem ipsum dolor sit amet', n: 1 });
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) insert.run('bench', 'com.freehold.bench', `id${i}`, i, i, body);
  const insertPerSec = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) JSON.parse((select.get('bench', 'com.freehold.bench', `id${(i * 7919) % n}`) as { data: string }).data);
  const selectPerSec = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { insertPerSec, selectPerSec };
}
