import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeDirs } from '../../src/storage/make-dirs.js';

test('makeDirs makes every missing level, accepts what exists, and throws where a level cannot be made', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'freehold-mkdirs-'));
  try {
    const deep = path.join(root, 'a', 'b', 'c');
    makeDirs(deep, 0o750);
    assert.equal(statSync(deep).isDirectory(), true);
    assert.equal(statSync(deep).mode & 0o777, 0o750 & ~process.umask());
    makeDirs(deep); // there already
    writeFileSync(path.join(root, 'file'), 'x');
    assert.throws(() => makeDirs(path.join(root, 'file', 'sub')), { code: 'ENOTDIR' });
    assert.throws(() => makeDirs(path.join(root, 'file')), { code: 'ENOTDIR' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// Node's mkdir({ recursive: true }) spins for ever here (a parent refusing entries with ENOENT).
test('makeDirs under /proc fails at once instead of spinning', { skip: !existsSync('/proc/self') && 'no /proc on this system' }, () => {
  assert.throws(() => makeDirs('/proc/no-such-entry/x'), { code: 'ENOENT' });
});
