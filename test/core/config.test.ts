import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commandLogLevel, loadConfig } from '../../src/config.js';

const noFile = { FREEHOLD_CONFIG: '' };

test('a bad setting is refused naming the variable it came from, with what it must be', () => {
  const refused: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ PORT: '99999' }, /^PORT must be an integer from 0 to 65535, got 99999$/],
    [{ PORT: 'eighty' }, /^PORT must be an integer from 0 to 65535, got eighty$/],
    [{ FREEHOLD_PUBLIC_URL: 'notaurl' }, /^FREEHOLD_PUBLIC_URL must be an http\(s\) address such as https:\/\/me\.example\.com, got notaurl$/],
    [{ FREEHOLD_PUBLIC_URL: 'ftp://files.example.com' }, /^FREEHOLD_PUBLIC_URL must be an http\(s\) address, got ftp:/],
    [{ FREEHOLD_LOG_LEVEL: 'verbose' }, /^FREEHOLD_LOG_LEVEL must be fatal, error, warn, info, debug, trace or silent, got verbose$/],
    [{ FREEHOLD_RATE_LIMIT: 'of' }, /^FREEHOLD_RATE_LIMIT must be on or off .*, got of$/],
    [{ FREEHOLD_OWNER_STORAGE: 'maybe' }, /^FREEHOLD_OWNER_STORAGE must be on or off/],
    [{ FREEHOLD_APP_ORIGINS: 'domain' }, /^FREEHOLD_APP_ORIGINS must be subdomain or path, got domain$/],
    [{ FREEHOLD_SQLITE_QUERIES: 'thread' }, /^FREEHOLD_SQLITE_QUERIES must be main or worker, got thread$/],
    [{ FREEHOLD_SQLITE_CHECKPOINT: 'MAIN' }, /^FREEHOLD_SQLITE_CHECKPOINT must be main or worker, got MAIN$/],
  ];
  for (const [env, message] of refused) assert.throws(() => loadConfig({ ...noFile, ...env }), { message }, JSON.stringify(env));
});

test('on/off settings take the usual spellings; empty variables count as unset', () => {
  assert.equal(loadConfig({ ...noFile, FREEHOLD_RATE_LIMIT: 'OFF' }).rateLimit, false);
  assert.equal(loadConfig({ ...noFile, FREEHOLD_RATE_LIMIT: 'yes' }).rateLimit, true);
  assert.equal(loadConfig({ ...noFile, FREEHOLD_RATE_LIMIT: '' }).rateLimit, true);
  assert.equal(loadConfig({ ...noFile, FREEHOLD_LOG_LEVEL: 'Debug' }).logLevel, 'debug');
  assert.equal(loadConfig({ ...noFile, PORT: '0' }).publicUrl, 'http://localhost:0');
  assert.equal(loadConfig({ ...noFile, FREEHOLD_PUBLIC_URL: 'https://me.example.com//' }).publicUrl, 'https://me.example.com');
});

test("a bad value in the config file is named as the file's key, and the environment still wins over the file", () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-config-'));
  try {
    const file = path.join(dir, 'freehold.config.json');
    writeFileSync(file, JSON.stringify({ port: 70000, appOrigins: 'x', trustProxy: 'maybe', logLevel: 'debug' }));
    assert.throws(() => loadConfig({ FREEHOLD_CONFIG: file }), { message: `port in ${file} must be an integer from 0 to 65535, got 70000` });
    assert.throws(() => loadConfig({ FREEHOLD_CONFIG: file, PORT: '8080' }), { message: /^trustProxy in .* must be true, false or a number of proxies, got maybe$/ });
    assert.throws(() => loadConfig({ FREEHOLD_CONFIG: file, PORT: '8080', FREEHOLD_TRUST_PROXY: 'false' }), { message: /^appOrigins in .* must be subdomain or path, got x$/ });
    const ok = loadConfig({ FREEHOLD_CONFIG: file, PORT: '8080', FREEHOLD_APP_ORIGINS: 'path', FREEHOLD_TRUST_PROXY: 'false' });
    assert.deepEqual([ok.port, ok.appOrigins, ok.trustProxy, ok.logLevel], [8080, 'path', 0, 'debug']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one-shot commands log at warn unless a level is configured, in the environment or the file', () => {
  assert.equal(commandLogLevel({ FREEHOLD_CONFIG: '' }), 'warn');
  assert.equal(commandLogLevel({ FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'debug' }), 'debug');
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-config-'));
  try {
    const file = path.join(dir, 'freehold.config.json');
    writeFileSync(file, JSON.stringify({ logLevel: 'error' }));
    assert.equal(commandLogLevel({ FREEHOLD_CONFIG: file }), 'error');
    assert.equal(commandLogLevel({ FREEHOLD_CONFIG: file, FREEHOLD_LOG_LEVEL: 'info' }), 'info');
    writeFileSync(file, JSON.stringify({ logLevel: 'loud' }));
    assert.throws(() => commandLogLevel({ FREEHOLD_CONFIG: file }), { message: /^logLevel in .* must be fatal, error, warn, info, debug, trace or silent, got loud$/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
