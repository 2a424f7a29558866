import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifest } from '../../src/core/apps/manifest.js';
import { FreeholdError } from '../../src/core/errors.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'apps');
const read = (p: string) => readFileSync(path.join(fixtures, p), 'utf8');

/** The problems of a refused manifest, or a failure if it was accepted. */
function problemsOf(files: Parameters<typeof parseManifest>[0], opts?: Parameters<typeof parseManifest>[1]): string[] {
  try {
    parseManifest(files, opts);
  } catch (err) {
    assert.ok(err instanceof FreeholdError);
    assert.equal(err.code, 'invalid_manifest');
    assert.ok(Array.isArray(err.details));
    return err.details as string[];
  }
  assert.fail('manifest was accepted');
}

const minimal = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ identifier: 'com.example.app', version: '1', pages: { index: { html_file: 'index.html' } }, ...extra });

test('manifest.json form is normalised', () => {
  const { manifest, raw } = parseManifest({ manifestJson: read('com.example.notes/manifest.json') });
  assert.equal(manifest.identifier, 'com.example.notes');
  assert.equal(manifest.displayName, 'Notes');
  assert.equal(manifest.version, '1.0.0');
  assert.equal(manifest.source, 'manifest.json');
  assert.deepEqual(manifest.pages.index, {
    title: 'Notes', htmlFile: 'index.html', cssFiles: ['static/notes.css'], scriptFiles: ['notes.js'], modules: ['static/main.mjs'],
  });
  // One string where a list is expected, as freezr allows.
  assert.deepEqual(manifest.pages.settings!.cssFiles, ['static/notes.css']);
  assert.deepEqual(manifest.appTables['com.example.notes.posts'], { indexes: [['title'], ['meta.tag', 'created']] });
  assert.deepEqual(manifest.permissions, [{
    name: 'publish_posts', type: 'share_records', table_id: ['com.example.notes.posts'],
    description: 'Share posts with friends or publish them', requestor_app: 'com.example.notes', return_fields: ['title', 'body'],
  }]);
  assert.equal((raw as { x_unknown_key: unknown }).x_unknown_key !== undefined, true);
});

test('app_config.json form (with comments and trailing commas) is normalised', () => {
  const { manifest } = parseManifest({ appConfigJson: read('com.example.legacy/app_config.json') });
  assert.equal(manifest.identifier, 'com.example.legacy');
  assert.equal(manifest.displayName, 'Legacy');
  assert.equal(manifest.version, '0.01 August 2016');
  assert.equal(manifest.source, 'app_config.json');
  assert.deepEqual(manifest.pages.index!.cssFiles, ['main.css']);
  assert.deepEqual(Object.keys(manifest.appTables), ['com.example.legacy.posts']);
  assert.deepEqual(manifest.permissions, [{
    name: 'my_logs', type: 'read_all', table_id: ['com.example.legacy.posts'], description: 'Read all posts',
    requestor_app: 'com.example.legacy', return_fields: ['title'],
  }]);
});

test('manifest.json wins when both are present', () => {
  const { manifest } = parseManifest({ manifestJson: minimal(), appConfigJson: '{"meta":{"app_name":"com.other.app"}}' });
  assert.equal(manifest.identifier, 'com.example.app');
});

test('no manifest at all is refused', () => {
  assert.match(problemsOf({})[0]!, /no manifest\.json/);
});

test('malformed JSON and non-object JSON are refused', () => {
  assert.match(problemsOf({ manifestJson: '{"identifier": ' })[0]!, /not valid JSON/);
  assert.match(problemsOf({ manifestJson: '[1,2]' })[0]!, /must hold a JSON object/);
  assert.match(problemsOf({ manifestJson: ' '.repeat(300 * 1024) + '{}' })[0]!, /larger than/);
});

test('every problem is listed, each with its path', () => {
  const problems = problemsOf({
    manifestJson: JSON.stringify({
      identifier: 'bad_name',
      display_name: 42,
      version: { v: 1 },
      pages: {
        index: { html_file: '../index.html', css_files: ['/etc/passwd'], script_files: ['a\\b.js', 7], modules: 'C:/x.mjs' },
        'bad name': { html_file: 'x.html' },
        nohtml: {},
      },
      app_tables: { posts: { indexes: 'title' }, 'files': {}, other: { indexes: [['a..b'], []] } },
      permissions: [
        { name: 'p1', type: 'root_access', table_id: 'com.x.y' },
        { name: 'p1', type: 'read_all', table_id: ['bad table!'] },
        { type: 'read_all' },
        { name: 'p4', type: 'root access!', table_id: 'com.x.y' },
      ],
    }),
  });
  const expect = [
    /^identifier: Invalid app name/,
    /^display_name: must be a string/,
    /^version: must be a string/,
    /^pages\.index\.html_file: path escapes the app/,
    /^pages\.index\.script_files\[0\]: backslash in path/,
    /^pages\.index\.script_files\[1\]: must be a string/,
    /^pages\.index\.modules\[0\]: drive letter/,
    /^pages\.bad name: page names use/,
    /^pages\.nohtml\.html_file: is required/,
    /^app_tables\.posts\.indexes: must be an array/,
    /^app_tables\.files: Collection name files is reserved/,
    /^app_tables\.other\.indexes\[0\]\[0\]: is not a field path/,
    /^app_tables\.other\.indexes\[1\]: must be a field path or an array/,
    /^permissions\[3\]\.type: must be one of share_records/,
    /^permissions\[1\]: repeats the permission name/,
    /^permissions\[1\]\.table_id\[0\]: Invalid app table name/,
    /^permissions\[2\]\.name: is required/,
  ];
  for (const re of expect) assert.ok(problems.some((p) => re.test(p)), `expected a problem matching ${re}\n${problems.join('\n')}`);
});

test("what freezr tolerates installs, left out and said: addresses elsewhere, missing assets, unknown permission types, ./ paths", () => {
  const { manifest, warnings } = parseManifest({
    manifestJson: minimal({
      pages: {
        index: {
          html_file: './index.html',
          css_files: ['./a.css', '/app/info.freezr.public/public/freezr_style.css', 'missing.css'],
          script_files: ['https://cdn.example.com/lib.js', 'javascript:alert(1)', 'b.js', 'pell.js'],
        },
      },
      permissions: [{ name: 'ask_llm', type: 'use_llm' }, { name: 'r', type: 'read_all', table_id: 'com.example.app' },
        { name: 'theirs', type: 'read_all', table_id: ['com.other.app', 'com.other.app.files'] }, { name: 'mine', type: 'read_all', table_id: 'com.example.app.files' },
        { name: 'share', type: 'share_records', table_id: 'com.other.app.files' }],
    }),
  }, { files: new Set(['index.html', 'a.css', 'b.js']) });
  assert.deepEqual(manifest.pages.index, { title: 'com.example.app', htmlFile: 'index.html', cssFiles: ['a.css'], scriptFiles: ['b.js'], modules: [] });
  assert.deepEqual(manifest.permissions.map((p) => p.name), ['r', 'theirs', 'mine', 'share']);
  const expect = [
    /^pages\.index\.css_files\[1\]: not a file of the app, left out/,
    /^pages\.index\.css_files\[2\]: no such file in the package, left out/,
    /^pages\.index\.script_files\[0\]: not a file of the app/,
    /^pages\.index\.script_files\[1\]: not a file of the app/,
    /^pages\.index\.script_files\[3\]: no such file in the package/,
    /^permissions\[0\]\.type: "use_llm" is not a permission type this server offers/,
    // Offered to the owner, who is told it would reach nothing there.
    /^permissions\[2\]\.table_id: com\.other\.app\.files is kept by the server .*no grant reaches it/,
  ];
  assert.equal(warnings.length, expect.length, warnings.join('\n'));
  for (const re of expect) assert.ok(warnings.some((w) => re.test(w)), `expected a warning matching ${re}\n${warnings.join('\n')}`);
  // Still refused: a page that cannot be served, and paths that try to leave the app.
  assert.match(problemsOf({ manifestJson: minimal({ pages: { index: { html_file: 'nope.html', css_files: ['../x.css'] } } }) }, { files: new Set(['index.html']) }).join('\n'),
    /html_file: no such file[\s\S]*css_files\[0\]: path escapes/);
});

test("app_config.json's collection_name names a permission's table", () => {
  const { manifest } = parseManifest({
    appConfigJson: JSON.stringify({ meta: { app_name: 'com.example.old' }, permissions: { publish_favorites: { type: 'object_delegate', collection_name: 'marks' } } }),
  });
  assert.deepEqual(manifest.permissions.map((p) => [p.name, p.type, p.table_id]), [['publish_favorites', 'share_records', ['com.example.old.marks']]]);
});

test('reserved and mismatched app names are refused', () => {
  assert.match(problemsOf({ manifestJson: minimal({ identifier: 'info.freezr.notes' }) })[0]!, /reserved.*To install it here, give the app a name of its own in its manifest/);
  // freezr's own demo apps have names longer than CEPS allows: the same way out is said.
  assert.match(problemsOf({ manifestJson: minimal({ identifier: 'info.freezr.demo.clickOnCheese3.GreenCheesePermit' }) })[0]!, /at most 35 characters.*give the app a name of its own/);
  assert.match(problemsOf({ manifestJson: minimal({ identifier: 'system.x.y' }) })[0]!, /reserved/);
  assert.match(problemsOf({ manifestJson: minimal() }, { expectedName: 'com.example.other' })[0]!, /package is for com\.example\.other/);
  assert.match(problemsOf({ manifestJson: minimal({ identifier: undefined }) })[0]!, /^identifier: the app name is required/);
});

test('files a page names must be in the package when the listing is known', () => {
  const problems = problemsOf({ manifestJson: minimal() }, { files: new Set(['other.html']) });
  assert.deepEqual(problems, ['pages.index.html_file: no such file in the package: "index.html"']);
  assert.doesNotThrow(() => parseManifest({ manifestJson: minimal() }, { files: new Set(['index.html']) }));
});

test("public pages' files are in the package's public/ folder, as freezr keeps them", () => {
  const publicPages = { public_pages: { post: { html_file: 'post.html', css_files: ['pages.css'], script_files: ['./post.js', 'elsewhere.js'] } } };
  const files = new Set(['index.html', 'public/post.html', 'public/pages.css', 'public/post.js', 'elsewhere.js']);
  const { manifest, warnings } = parseManifest({ manifestJson: minimal(publicPages) }, { files });
  assert.deepEqual(manifest.publicPages.post, { title: 'com.example.app', htmlFile: 'public/post.html', cssFiles: ['public/pages.css'], scriptFiles: ['public/post.js'], modules: [] });
  assert.deepEqual(warnings, ['public_pages.post.script_files[1]: no such file in the package, left out of the page: "elsewhere.js"']);
  const atRoot = problemsOf({ manifestJson: minimal(publicPages) }, { files: new Set(['index.html', 'post.html']) });
  assert.deepEqual(atRoot, ['public_pages.post.html_file: no such file in the package: "post.html" (looked for "public/post.html": a public page\'s files go in the package\'s public/ folder)']);
  assert.match(problemsOf({ manifestJson: minimal({ public_pages: { p: { html_file: '../index.html' } } }) })[0]!, /^public_pages\.p\.html_file: /);
});

test('app tables belong to the app; permissions may name other apps\' tables', () => {
  const problems = problemsOf({ manifestJson: minimal({ app_tables: { 'com.example.app.posts': {}, 'com.other.app.x': {} } }) });
  // Said for what it is: another app's table, which is asked for with a permission.
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^app_tables\.com\.other\.app\.x: names another app's table: an app declares only its own tables .* with a permission$/);
  assert.match(problemsOf({ manifestJson: minimal({ app_tables: { 'com.other.app': {} } }) })[0]!, /^app_tables\.com\.other\.app: names another app's table/);
  // A collection with a dot in it is still just a bad collection name.
  assert.match(problemsOf({ manifestJson: minimal({ app_tables: { 'a.b': {} } }) })[0]!, /^app_tables\.a\.b: Invalid collection name/);
  const { manifest } = parseManifest({ manifestJson: minimal({ permissions: [{ name: 'r', type: 'read_all', table_id: 'com.other.app' }] }) });
  assert.deepEqual(manifest.permissions[0]!.table_id, ['com.other.app']);
});

test('requestor_app other than the app itself is refused', () => {
  const problems = problemsOf({ manifestJson: minimal({ permissions: [{ name: 'r', type: 'read_all', requestor_app: 'com.evil.app' }] }) });
  assert.match(problems[0]!, /requestor_app: must be the app itself/);
});

test('numbers are accepted as versions, missing version is empty', () => {
  assert.equal(parseManifest({ manifestJson: minimal({ version: 3 }) }).manifest.version, '3');
  assert.equal(parseManifest({ manifestJson: minimal({ version: undefined }) }).manifest.version, '');
});
