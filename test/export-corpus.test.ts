/**
 * The training-corpus exporter (scripts/export-corpus.ts) on the fixtures: groups, a PDF's pages as parts,
 * the ingestors' skips honoured, byte caps, deterministic output, the command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { exportCorpus, GROUPS, type ExportRecord, type Group } from '../scripts/export-corpus.js';
import { ROOT, tempDir } from './helpers.js';

const FIXTURES = join(ROOT, 'fixtures');

/** fixtures/repo as one package of a code root, its `gitignore` files renamed to `.gitignore` (see
 *  fixtures/README.md: stored without the dot so that they do not apply to this checkout). */
function codeRoot(): string {
  const root = join(tempDir('ctx-export-'), 'packages');
  cpSync(join(FIXTURES, 'repo'), join(root, 'repo'), { recursive: true });
  const rename = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) rename(join(dir, e.name));
      else if (e.name === 'gitignore') renameSync(join(dir, e.name), join(dir, '.gitignore'));
    }
  };
  rename(root);
  return root;
}

function read(file: string): ExportRecord[] {
  return gunzipSync(readFileSync(file)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as ExportRecord);
}

const codeRoots = [codeRoot()];
const sources = { codeRoots, pdfRoots: [join(FIXTURES, 'pdf')], logRoots: [join(FIXTURES, 'logs')] };

test('groups, packages and paths of the fixtures', async () => {
  const out = join(tempDir(), 'corpus.jsonl.gz');
  const counts = await exportCorpus({ out, ...sources, maxMb: 4 });
  const recs = read(out);
  const paths = (g: Group) => recs.filter((r) => r.group === g).map((r) => r.path);
  assert.ok(paths('code').includes('repo/src/auth.ts'));
  assert.ok(paths('prose').includes('repo/README.md'));
  assert.deepEqual(paths('logs').sort(), ['bulk/access.log.gz', 'nginx/access.log', 'nginx/error.log', 'repo/app/debug.log', 'repo/logs/keep.log'].sort());
  assert.ok(recs.every((r) => (r.path.startsWith('repo/') ? r.pkg === 'repo' : true)));
  assert.equal(recs.find((r) => r.path === 'nginx/access.log')?.pkg, 'nginx');
  // A rotated set is one document, oldest member first (round=1 lines are in access.log.3.gz).
  const access = recs.find((r) => r.path === 'nginx/access.log')!.parts[0].text;
  assert.ok(access.indexOf('round=1') < access.indexOf('round=4'));
  for (const g of GROUPS) {
    assert.equal(counts[g].docs, recs.filter((r) => r.group === g).length);
    assert.equal(counts[g].bytes, recs.filter((r) => r.group === g).reduce((n, r) => n + r.parts.reduce((m, p) => m + Buffer.byteLength(p.text), 0), 0));
  }
});

test('skipped files are absent: ignore rules, binary, minified, generated, lockfile, vendored, unreadable PDFs', async () => {
  const out = join(tempDir(), 'corpus.jsonl.gz');
  await exportCorpus({ out, ...sources, maxMb: 4 });
  const paths = new Set(read(out).map((r) => r.path));
  for (const p of [
    'repo/logs/server.log', 'repo/app/local_settings.py', 'repo/secrets.env', 'repo/docs/drafts/notes.md',
    'repo/src/router.test.snap', 'repo/assets/logo.txt', 'repo/public/clipboard.min.js', 'repo/public/mark.bundle.js',
    'repo/src/generated/api-types.ts', 'repo/package-lock.json', 'repo/vendor/leftpad/index.js',
    'encrypted.pdf', 'scanned.pdf',
  ]) {
    assert.ok(!paths.has(p), `${p} should be skipped`);
  }
  assert.ok(![...paths].some((p) => p.startsWith('repo/build/')), 'gitignored build/ stays out');
  assert.ok(paths.has('repo/config/secrets.env') && paths.has('repo/docs/build') && paths.has('repo/logs/keep.log'));
});

test('a PDF is one record with one part per page, its title and real page numbers', async () => {
  const out = join(tempDir(), 'corpus.jsonl.gz');
  await exportCorpus({ out, pdfRoots: [join(FIXTURES, 'pdf')], maxMb: 4 });
  const recs = read(out);
  assert.ok(recs.every((r) => r.group === 'pdf' && r.kind === 'pdf'));
  const spec = recs.find((r) => r.path === 'shared-mime-info-spec.pdf')!;
  assert.equal(spec.pkg, 'shared-mime-info-spec'); // a PDF at the root: its own name
  assert.equal(spec.title, 'Shared MIME-info Database');
  assert.deepEqual(spec.parts.map((p) => p.page), Array.from({ length: 17 }, (_, i) => i + 1));
  assert.match(spec.parts[0].text, /Shared MIME-info Database/);
  // mixed.pdf: page 2 is a scan without text: absent, and page 3 keeps its number.
  assert.deepEqual(recs.find((r) => r.path === 'mixed.pdf')!.parts.map((p) => p.page), [1, 3]);
});

test('caps: per group and per package, whole code files only', async () => {
  const out = join(tempDir(), 'corpus.jsonl.gz');
  const maxMb = 0.2; // code 100 KiB of text, logs 20 KiB: the 200 KB bulk log cannot fit whole
  const counts = await exportCorpus({ out, ...sources, maxMb, pkgShare: 0.1 });
  const caps = { code: 0.5, prose: 0.2, pdf: 0.2, logs: 0.1 };
  for (const g of GROUPS) assert.ok(counts[g].bytes <= maxMb * 1024 * 1024 * caps[g], g);
  const recs = read(out);
  const bulk = recs.find((r) => r.path === 'bulk/access.log.gz')!.parts[0].text;
  assert.ok(bulk.length > 10_000 && bulk.endsWith('\n') && bulk.startsWith('127.0.0.1'), 'truncated at a line end');
  const auth = readFileSync(join(codeRoots[0], 'repo/src/auth.ts'), 'utf8');
  assert.equal(recs.find((r) => r.path === 'repo/src/auth.ts')!.parts[0].text, auth);
});

test('deterministic output, and the command line', async () => {
  const a = join(tempDir(), 'a.jsonl.gz');
  await exportCorpus({ out: a, ...sources, maxMb: 4 });
  const b = join(tempDir(), 'b.jsonl.gz');
  const script = join(ROOT, 'dist', 'scripts', 'export-corpus.js');
  const args = ['--out', b, '--max-mb', '4', '--code-root', codeRoots[0], '--pdf-root', join(FIXTURES, 'pdf'), '--log-root', join(FIXTURES, 'logs')];
  const stdout = execFileSync(process.execPath, [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(stdout, /^pdf +3 docs +3 packages/m);
  assert.match(stdout, /skipped by the ingestors: .*binary/);
  assert.deepEqual(readFileSync(a), readFileSync(b));
});

test('man pages are rendered to text, packaged by their owner', { skip: !hasMan() && 'man, col or a man page missing' }, async () => {
  const man = join(tempDir(), 'man');
  mkdirSync(join(man, 'man1'), { recursive: true });
  cpSync('/usr/share/man/man1/ls.1.gz', join(man, 'man1', 'ls.1.gz'));
  const out = join(tempDir(), 'corpus.jsonl.gz');
  await exportCorpus({ out, manRoots: [man], manPages: 5, maxMb: 1 });
  const [rec] = read(out);
  assert.equal(rec.group, 'prose');
  assert.equal(rec.path, 'ls/ls.1.txt'); // a copy dpkg does not know: the page's name
  assert.match(rec.parts[0].text, /^NAME\n +ls - list directory contents/m);
  assert.ok(!rec.parts[0].text.includes('\b'), 'col -bx removed overstrikes');
});

function hasMan(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v man && command -v col'], { stdio: 'ignore' });
    return existsSync('/usr/share/man/man1/ls.1.gz');
  } catch {
    return false;
  }
}
