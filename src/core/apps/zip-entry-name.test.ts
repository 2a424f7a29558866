import { test } from 'node:test';
import assert from 'node:assert/strict';
import yauzl from 'yauzl';
import { zipEntryName } from './zip-entry-name.js';

const entry = (raw: Buffer, flag = 0, extraFields: Array<{ id: number; data: Buffer }> = []) =>
  ({ generalPurposeBitFlag: flag, fileNameRaw: raw, extraFields }) as unknown as yauzl.Entry;

test('zip entry names: flagged UTF-8, unflagged UTF-8 (Info-ZIP), and CP437 for bytes that are not UTF-8', () => {
  assert.equal(zipEntryName(yauzl, entry(Buffer.from('pics/été.png'), 0x800)), 'pics/été.png');
  assert.equal(zipEntryName(yauzl, entry(Buffer.from('pics/été.png'))), 'pics/été.png');
  // CP437 0x82 is é; alone it is no UTF-8 sequence.
  assert.equal(zipEntryName(yauzl, entry(Buffer.from([0x72, 0x82, 0x73]))), 'rés');
  assert.equal(zipEntryName(yauzl, entry(Buffer.from('a\\b'))), 'a\\b', 'backslashes stay for the path checks');
});
