import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appHostname, domainLabel, hashedLabel, isUnderAppsParent, parseAppHostname } from './hostnames.js';

const DOMAIN = 'apps.example.com';

test('local scheme: <app>.<user>.localhost, read from the right', () => {
  assert.equal(appHostname('', 'alice', 'com.freehold.notes'), 'com.freehold.notes.alice.localhost');
  assert.deepEqual(parseAppHostname('', 'com.freehold.notes.alice.localhost'), { kind: 'named', owner: 'alice', app: 'com.freehold.notes' });
  assert.deepEqual(parseAppHostname('', 'COM.Freehold.Notes.ALICE.localhost.'), { kind: 'named', owner: 'alice', app: 'com.freehold.notes' });
  // Upper case in the app name is lost in DNS: the host carries it in lowercase.
  assert.equal(appHostname('', 'bob', 'com.Example.MyApp'), 'com.example.myapp.bob.localhost');
  for (const h of ['localhost', 'alice.localhost', 'notes.alice.localhost', 'a.b.alice.localhost', 'com.x.y.-bad.localhost',
    'com.x.y.alice.example.com', 'com..y.alice.localhost', 'com.x.y.a_b.localhost']) {
    assert.equal(parseAppHostname('', h), null, h);
  }
});

test('domain scheme: one reversible label, `-` as `--`, `.` as `-`, then `---` and the user', () => {
  assert.deepEqual(domainLabel('alice', 'com.free-hold.notes'), { label: 'com-free--hold-notes---alice', hashed: false });
  assert.equal(appHostname(DOMAIN, 'alice', 'com.free-hold.notes'), 'com-free--hold-notes---alice.apps.example.com');
  assert.equal(appHostname('apps.example.com:8443', 'alice', 'com.a.b'), 'com-a-b---alice.apps.example.com');
  const cases: Array<[string, string]> = [
    ['alice', 'com.freehold.notes'], ['b-o-b', 'a-b.c--d.e'], ['al', 'x1.y2.z3'], ['user-with-dash', 'com.example.app-with-dashes'],
  ];
  for (const [owner, app] of cases) {
    const host = appHostname(DOMAIN, owner, app);
    assert.deepEqual(parseAppHostname(DOMAIN, host), { kind: 'named', owner, app }, host);
    assert.ok(host.split('.')[0]!.length <= 63);
  }
  // Non-canonical spellings and other shapes name nothing.
  for (const h of ['com-a-b---alice.other.com', 'com-a-b.apps.example.com', '---alice.apps.example.com', 'com-a-b---.apps.example.com',
    'x.com-a-b---alice.apps.example.com', 'com-a---b---alice.apps.example.com', 'apps.example.com']) {
    assert.equal(parseAppHostname(DOMAIN, h), null, h);
  }
});

test('too long for one label (or punycode-like): a hashed label the host store resolves', () => {
  const app = 'com.example-company.very-long-name';
  const owner = 'a-user-name-that-is-long';
  const { label, hashed } = domainLabel(owner, app);
  assert.equal(hashed, true);
  assert.match(label, /^x[a-z2-7]{20}$/);
  assert.equal(label, hashedLabel(owner, app));
  assert.equal(label, hashedLabel(owner, app.toUpperCase()), 'case does not change the label');
  assert.notEqual(label, hashedLabel('other', app));
  assert.deepEqual(parseAppHostname(DOMAIN, `${label}.${DOMAIN}`), { kind: 'hashed', label });
  assert.equal(domainLabel('alice', 'xn--abc.d.e').hashed, true);
});

test('hosts under the apps parent', () => {
  assert.equal(isUnderAppsParent('', 'x.localhost'), true);
  assert.equal(isUnderAppsParent('', 'localhost'), false);
  assert.equal(isUnderAppsParent(DOMAIN, 'zzz.apps.example.com'), true);
  assert.equal(isUnderAppsParent(DOMAIN, 'example.com'), false);
});
