import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { evaluateTargets, figuresOf, findRow, renderMarkdown, type BenchResult } from '../../bench/report.js';

/** The committed full run, as a realistic result to vary one figure of. */
function latest(): BenchResult {
  return JSON.parse(readFileSync(new URL('../../bench/results/latest.json', import.meta.url), 'utf8')) as BenchResult;
}

/** Sets CEPS read by id at 8 connections to `percent` of its ceiling row and reads the target back. */
function readTargetAt(percent: number) {
  const r = latest();
  const ceiling = findRow(r.ceiling.http, 'Fastify + SQLite read by id', 'ceiling', 8)!;
  const ceps = findRow(r.backends.find((b) => b.label === 'sqlite+fs')!.rows, 'CEPS read by id', 'sqlite+fs', 8)!;
  ceiling.reqPerSec = 20_000;
  ceps.reqPerSec = 200 * percent;
  const t = evaluateTargets(r).find((x) => x.target.startsWith('CEPS read by id ≥ 50% of the ceiling'))!;
  return { measured: t.measured, at8: /([\d.]+)% @8/.exec(t.measured)![1], met: t.met };
}

test('a ceiling share just under 50% is printed with its decimal, so the table never reads "50%" beside "no"', () => {
  const under = readTargetAt(49.51);
  assert.equal(under.at8, '49.5');
  assert.equal(under.met, false);
  assert.equal(readTargetAt(55.4).at8, '55', 'whole percents otherwise');
  assert.equal(readTargetAt(50.2).at8, '50', 'a figure at or over the line that rounds to 50 stays whole');
});

test('the report says which PostgreSQL served its rows, and when its commits were not durable', () => {
  const r = latest();
  r.postgresServer = 'PostgreSQL 15.14 from scripts/pg-dev.sh: fsync=off, synchronous_commit=off';
  const dev = renderMarkdown(r, {}).split('\n').find((l) => l.startsWith('postgres+s3 rows:'));
  assert.equal(dev, 'postgres+s3 rows: PostgreSQL 15.14 from scripts/pg-dev.sh: fsync=off, synchronous_commit=off (commits are not flushed to disk before they are acknowledged)');
  r.postgresServer = 'PostgreSQL 16.4 from DATABASE_URL: fsync=on, synchronous_commit=on';
  const durable = renderMarkdown(r, {}).split('\n').find((l) => l.startsWith('postgres+s3 rows:'));
  assert.equal(durable, 'postgres+s3 rows: PostgreSQL 16.4 from DATABASE_URL: fsync=on, synchronous_commit=on');
  delete r.postgresServer;
  assert.ok(!renderMarkdown(r, {}).includes('postgres+s3 rows:'), 'a run without PostgreSQL (or from before session 9) says nothing');
});

test('the report says what filesystem the data directories were on', () => {
  const r = latest();
  r.dataFilesystem = 'ext4 on /dev/vda at /, no journal, discard';
  assert.ok(renderMarkdown(r, {}).split('\n').includes('data directories (sqlite+fs, flatfile+fs): ext4 on /dev/vda at /, no journal, discard'));
  delete r.dataFilesystem;
  assert.ok(!renderMarkdown(r, {}).includes('data directories'), 'a run from before session 10 says nothing');
});

test("the requests table gives each row's CPU per request, the database's beside the server's, and the previous run's", () => {
  const r = latest();
  const pg = findRow(r.backends.find((b) => b.label === 'postgres+s3')!.rows, 'CEPS write', 'postgres+s3', 32)!;
  pg.cpuUs = 142;
  pg.dbCpuUs = 61;
  const bare = findRow(r.ceiling.http, 'bare Fastify GET', 'ceiling', 32)!;
  bare.cpuUs = 18;
  delete bare.dbCpuUs;
  const sqlite = findRow(r.backends.find((b) => b.label === 'sqlite+fs')!.rows, 'CEPS write', 'sqlite+fs', 32)!;
  delete sqlite.cpuUs;
  const prev = { 'CEPS write | postgres+s3 | 32 | cpu µs': 150, 'CEPS write | postgres+s3 | 32 | db cpu µs': 70, 'bare Fastify GET | ceiling | 32 | cpu µs': 20 };
  const lines = renderMarkdown(r, prev).split('\n');
  const split = (line: string) => line.split('|').slice(1, -1).map((c) => c.trim());
  const cells = (name: string, backend: string) => split(lines.find((l) => l.startsWith(`| ${name} | ${backend} | 32 |`))!);
  const header = split(lines.find((l) => l.startsWith('| row |'))!);
  const at = (what: string) => header.indexOf(what);
  assert.equal(cells('CEPS write', 'postgres+s3')[at('CPU µs/req')], '142 + 61');
  assert.equal(cells('CEPS write', 'postgres+s3')[at('previous CPU')], '150 + 70');
  assert.equal(cells('bare Fastify GET', 'ceiling')[at('previous CPU')], '20');
  assert.equal(cells('bare Fastify GET', 'ceiling')[at('CPU µs/req')], '18');
  assert.equal(cells('CEPS write', 'sqlite+fs')[at('CPU µs/req')], '–', 'a row measured without it (older runs) shows a dash');
  const figures = figuresOf(r);
  assert.equal(figures['CEPS write | postgres+s3 | 32 | cpu µs'], 142);
  assert.equal(figures['CEPS write | postgres+s3 | 32 | db cpu µs'], 61);
});
