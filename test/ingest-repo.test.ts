/**
 * Repositories and folders: ignore rules (walker and git ls-files), binary sniffing, size cap, vendored,
 * generated, minified and lockfiles, symlinks, unreadable and vanishing entries, order, dry-run plan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ingestSources, planSources, type IngestOptions } from '../src/ingest/index.js';
import { IgnoreRules } from '../src/ingest/ignore-rules.js';
import { listTree, treeOrder } from '../src/ingest/walker.js';
import type { IngestItem } from '../src/ingest/types.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/repo/', import.meta.url));
const isRoot = process.getuid?.() === 0;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ctx-ingest-'));
}

/** The fixture repository in a temp dir, its `gitignore` files renamed to `.gitignore` (they are stored
 *  under another name so that they do not apply to this project's own git checkout). */
function materializeRepo(): string {
  const dest = join(tempDir(), 'repo');
  cpSync(FIXTURE, dest, { recursive: true });
  const rename = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) rename(join(dir, e.name));
      else if (e.name === 'gitignore') renameSync(join(dir, e.name), join(dir, '.gitignore'));
    }
  };
  rename(dest);
  return dest;
}

async function collect(paths: string[], opts?: IngestOptions): Promise<{ docs: Map<string, string>; skipped: Map<string, string>; order: string[] }> {
  const docs = new Map<string, string>();
  const skipped = new Map<string, string>();
  const order: string[] = [];
  for await (const item of ingestSources(paths, opts) as AsyncIterable<IngestItem>) {
    if (item.type === 'document') {
      docs.set(item.doc.path, item.doc.kind);
      order.push(item.doc.path);
    } else {
      skipped.set(item.skipped.path, item.skipped.reason);
    }
  }
  return { docs, skipped, order };
}

async function textOf(path: string, docPath: string): Promise<string> {
  for await (const item of ingestSources([path])) {
    if (item.type === 'document' && item.doc.path === docPath) {
      let text = '';
      for await (const p of item.doc.parts()) text += p.text;
      return text;
    }
  }
  throw new Error(`${docPath} not ingested`);
}

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd, stdio: 'ignore' });
}

/** What every ignore rule of the fixture implies, whichever lister (walker or git) produced `docs`. */
function assertFixtureRules(docs: Map<string, string>, skipped: Map<string, string>): void {
  // kept, with their kinds
  assert.equal(docs.get('src/auth.ts'), 'code');
  assert.equal(docs.get('src/middleware/requireSession.ts'), 'code');
  assert.equal(docs.get('app/auth.py'), 'code');
  assert.equal(docs.get('README.md'), 'text');
  assert.equal(docs.get('docs/guide.md'), 'text');
  assert.equal(docs.get('logs/keep.log'), 'log', 'negation !keep.log re-includes it');
  assert.equal(docs.get('app/debug.log'), 'log', "a nested .gitignore's negation overrides the root *.log");
  assert.equal(docs.get('docs/build'), 'text', 'build/ matches directories only, not a file named build');
  assert.equal(docs.get('config/secrets.env'), 'text', '/secrets.env is anchored to the root');
  // ignored silently
  for (const p of ['logs/server.log', 'build/bundle.js', 'secrets.env', 'app/local_settings.py', 'docs/drafts/notes.md', 'src/router.test.snap']) {
    assert.ok(!docs.has(p), `${p} must be ignored`);
    assert.ok(!skipped.has(p), `${p} is ignored, not reported`);
  }
  // skipped with a reason
  assert.equal(skipped.get('assets/logo.txt'), 'binary');
  assert.equal(skipped.get('package-lock.json'), 'lockfile');
  assert.equal(skipped.get('public/clipboard.min.js'), 'minified');
  assert.match(skipped.get('public/mark.bundle.js') ?? '', /minified \(lines over 1000/);
  assert.match(skipped.get('src/generated/api-types.ts') ?? '', /^generated/);
  assert.equal(skipped.get('vendor/'), 'vendored directory');
  assert.ok(![...docs.keys()].some((p) => p.startsWith('vendor/')));
}

test('walker: .gitignore (nested, negation, directory patterns, anchors) and .ctxignore', async () => {
  const repo = materializeRepo();
  const { docs, skipped } = await collect([repo]);
  assertFixtureRules(docs, skipped);
});

test('git ls-files path: same rules from git; tracked files stay even when ignored; fallback without git', async () => {
  const repo = materializeRepo();
  git(repo, 'init', '-q');
  git(repo, 'add', 'README.md', 'src', 'app');
  git(repo, 'add', '-f', 'logs/server.log'); // tracked although *.log ignores it: git lists it, as git does
  git(repo, 'commit', '-qm', 'init');
  writeFileSync(join(repo, 'src', 'untracked.ts'), 'export const untracked = true;\n');
  mkdirSync(join(repo, 'plugins', 'nested'), { recursive: true }); // an untracked repository inside
  git(join(repo, 'plugins', 'nested'), 'init', '-q');
  writeFileSync(join(repo, 'plugins', 'nested', 'plugin.ts'), 'export const plugin = 1;\n');

  const viaGit = await collect([repo]);
  assertFixtureRules(new Map([...viaGit.docs].filter(([p]) => p !== 'logs/server.log')), viaGit.skipped);
  assert.equal(viaGit.docs.get('logs/server.log'), 'log', 'only git knows the file is tracked: proves git was used');
  assert.equal(viaGit.docs.get('src/untracked.ts'), 'code', 'untracked, not ignored files are listed (-o)');
  assert.equal(viaGit.docs.get('plugins/nested/plugin.ts'), 'code', 'a nested repository is listed too');
  assert.ok(![...viaGit.docs.keys()].some((p) => p.startsWith('.git/')));

  const savedPath = process.env.PATH;
  process.env.PATH = ''; // git cannot be spawned: the walker takes over
  try {
    const viaWalker = await collect([repo]);
    assert.ok(!viaWalker.docs.has('logs/server.log'));
    assert.equal(viaWalker.docs.get('src/untracked.ts'), 'code');
    assertFixtureRules(viaWalker.docs, viaWalker.skipped);
  } finally {
    process.env.PATH = savedPath;
  }
});

test('IgnoreRules: nothing inside an ignored directory comes back, whatever deeper files say', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'out', 'keep'), { recursive: true });
  writeFileSync(join(dir, '.gitignore'), 'out/\n');
  writeFileSync(join(dir, 'out', '.gitignore'), '!*\n');
  writeFileSync(join(dir, 'out', 'keep', 'a.ts'), '');
  const rules = await IgnoreRules.create(dir, { files: ['.gitignore'], gitExclude: false });
  assert.equal(await rules.ignored(join(dir, 'out', 'keep', 'a.ts'), false), true);
  assert.equal(await rules.ignored(join(dir, 'out', 'keep'), true), true);
  assert.equal(await rules.ignored(join(dir, 'src.ts'), false), false);
});

test('git path applies .ctxignore, including in a subdirectory argument', async () => {
  const repo = materializeRepo();
  git(repo, 'init', '-q');
  const { docs } = await collect([join(repo, 'docs')]);
  assert.deepEqual([...docs.keys()].sort(), ['build', 'guide.md'], 'docs/drafts/ excluded by the root .ctxignore');
});

test('a directory argument that an ancestor .gitignore ignores is still ingested (the user named it)', async () => {
  const repo = tempDir();
  git(repo, 'init', '-q');
  writeFileSync(join(repo, '.gitignore'), 'generated-docs/\n');
  mkdirSync(join(repo, 'generated-docs'));
  writeFileSync(join(repo, 'generated-docs', 'api.md'), '# API\n');
  const { docs } = await collect([join(repo, 'generated-docs')]);
  assert.deepEqual([...docs.keys()], ['api.md']);
});

test('.git/info/exclude applies in the walker, and .git itself is never listed', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, '.git', 'info'), { recursive: true }); // not a valid repository: git fails, the walker runs
  writeFileSync(join(dir, '.git', 'info', 'exclude'), 'scratch.txt\n');
  writeFileSync(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(dir, 'scratch.txt'), 'local notes\n');
  writeFileSync(join(dir, 'main.py'), 'print("hi")\n');
  const { docs, skipped } = await collect([dir]);
  assert.deepEqual([...docs.keys()], ['main.py']);
  assert.equal(skipped.size, 0);
});

test('binary detection sniffs content, not extensions', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'data.bin'), 'plain text after all\n');
  writeFileSync(join(dir, 'notes.md'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]));
  writeFileSync(join(dir, 'utf8.txt'), 'naïve café — 日本語 ✓\n');
  const { docs, skipped } = await collect([dir]);
  assert.equal(docs.get('data.bin'), 'text');
  assert.equal(docs.get('utf8.txt'), 'text');
  assert.equal(skipped.get('notes.md'), 'binary');
});

test('size cap: skipped with the size in the reason; logs are exempt', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'big.ts'), `${'export const x = 1;\n'.repeat(160_000)}`); // 3.2 MB
  writeFileSync(join(dir, 'big.log'), `${'2024-01-01 info ok\n'.repeat(160_000)}`);
  writeFileSync(join(dir, 'small.ts'), 'export const y = 2;\n');
  const { docs, skipped } = await collect([dir]);
  assert.match(skipped.get('big.ts') ?? '', /^too large \(3\.1 MiB > 2\.0 MiB cap\)$/);
  assert.equal(docs.get('big.log'), 'log');
  assert.equal(docs.get('small.ts'), 'code');
  const capped = await collect([dir], { maxFileBytes: 10 });
  assert.match(capped.skipped.get('small.ts') ?? '', /too large \(20 B > 10 B cap\)/);
});

test('vendored, build output, generated, minified and lockfiles: skipped by default, taken on request', async () => {
  const repo = materializeRepo();
  mkdirSync(join(repo, 'dist'));
  writeFileSync(join(repo, 'dist', 'server.js'), 'console.log("built");\n'); // package.json main points here
  mkdirSync(join(repo, 'tools', 'dist'), { recursive: true }); // (build/ is git-ignored in the fixture)
  writeFileSync(join(repo, 'tools', 'dist', 'release.sh'), '#!/bin/sh\nnpm pack\n'); // no project builds here: kept
  mkdirSync(join(repo, 'node_modules', 'left-pad'), { recursive: true });
  writeFileSync(join(repo, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 1;\n');
  writeFileSync(join(repo, 'yarn.lock'), '# yarn lockfile v1\n');
  writeFileSync(join(repo, 'go.sum'), 'golang.org/x/text v0.3.0 h1:abc=\n');
  writeFileSync(join(repo, 'schema_pb.py'), '# @generated by protoc-gen-py\nx = 1\n');

  const plain = await collect([repo]);
  assert.equal(plain.skipped.get('dist/'), 'build output directory');
  assert.equal(plain.docs.get('tools/dist/release.sh'), 'code');
  assert.equal(plain.skipped.get('node_modules/'), 'vendored directory');
  assert.equal(plain.skipped.get('yarn.lock'), 'lockfile');
  assert.equal(plain.skipped.get('go.sum'), 'lockfile');
  assert.match(plain.skipped.get('schema_pb.py') ?? '', /^generated/);

  const lockfiles = await collect([repo], { includeLockfiles: true });
  assert.equal(lockfiles.docs.get('yarn.lock'), 'text');
  assert.equal(lockfiles.docs.get('package-lock.json'), 'code');
  assert.equal(lockfiles.skipped.get('vendor/'), 'vendored directory');

  const all = await collect([repo], { includeVendored: true });
  for (const p of ['vendor/leftpad/index.js', 'node_modules/left-pad/index.js', 'dist/server.js', 'public/clipboard.min.js',
    'public/mark.bundle.js', 'src/generated/api-types.ts', 'schema_pb.py', 'package-lock.json', 'go.sum']) {
    assert.ok(all.docs.has(p), `${p} taken with includeVendored`);
  }
  assert.equal(all.skipped.get('assets/logo.txt'), 'binary', 'binaries stay out whatever the flags');

  const noLocks = await collect([repo], { includeVendored: true, includeLockfiles: false });
  assert.equal(noLocks.skipped.get('package-lock.json'), 'lockfile');
});

test('a file named as an argument is taken as given (path as given), even a lockfile', async () => {
  const repo = materializeRepo();
  const given = join(repo, 'package-lock.json');
  const { docs } = await collect([given, join(repo, 'src', 'auth.ts')]);
  assert.equal(docs.get(given), 'code');
  assert.equal(docs.get(join(repo, 'src', 'auth.ts')), 'code');
  const missing = await collect([join(repo, 'nope.ts')]);
  assert.equal(missing.skipped.get(join(repo, 'nope.ts')), 'not found');
});

test('symlinks: not followed by default; followed on request; loops never hang', { timeout: 20_000 }, async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'a', 'b'), { recursive: true });
  writeFileSync(join(dir, 'a', 'b', 'deep.ts'), 'export const deep = 1;\n');
  writeFileSync(join(dir, 'target.md'), '# target\n');
  symlinkSync(dir, join(dir, 'a', 'b', 'up')); // a loop back to the root
  symlinkSync('self', join(dir, 'self')); // a link to itself: ELOOP
  symlinkSync('missing.txt', join(dir, 'dangling'));
  symlinkSync('target.md', join(dir, 'link.md'));

  const plain = await collect([dir]);
  assert.equal(plain.skipped.get('link.md'), 'symlink (not followed)');
  assert.equal(plain.skipped.get('a/b/up'), 'symlink (not followed)');
  assert.ok(!plain.docs.has('link.md'));

  const followed = await collect([dir], { followSymlinks: true });
  assert.equal(followed.docs.get('link.md'), 'text');
  assert.equal(followed.docs.get('a/b/deep.ts'), 'code');
  assert.equal(followed.skipped.get('a/b/up/'), 'symlink loop');
  assert.equal(followed.skipped.get('self'), 'symlink loop');
  assert.equal(followed.skipped.get('dangling'), 'broken symlink');
  assert.ok(![...followed.docs.keys()].some((p) => p.includes('up/')), 'nothing walked twice through the loop');

  // Outside the root: x/ links to y/, y/ links back to x/.
  const outside = tempDir();
  mkdirSync(join(outside, 'x'));
  mkdirSync(join(outside, 'y'));
  writeFileSync(join(outside, 'x', 'x.md'), 'x\n');
  writeFileSync(join(outside, 'y', 'y.md'), 'y\n');
  symlinkSync(join(outside, 'y'), join(outside, 'x', 'to-y'));
  symlinkSync(join(outside, 'x'), join(outside, 'y', 'to-x'));
  const root = tempDir();
  symlinkSync(join(outside, 'x'), join(root, 'ext'));
  const far = await collect([root], { followSymlinks: true });
  assert.deepEqual([...far.docs.keys()], ['ext/x.md', 'ext/to-y/y.md']);
  assert.equal(far.skipped.get('ext/to-y/to-x/'), 'symlink loop (directory already walked)');
});

test('symlinks inside a git work tree: a link back to the root is a loop, a linked folder is walked once', { timeout: 20_000 }, async () => {
  const repo = tempDir();
  git(repo, 'init', '-q');
  mkdirSync(join(repo, 'lib'));
  writeFileSync(join(repo, 'lib', 'util.py'), 'def util():\n    return 1\n');
  symlinkSync('.', join(repo, 'loop'));
  symlinkSync('lib', join(repo, 'lib-link'));
  const { docs, skipped } = await collect([repo], { followSymlinks: true });
  assert.equal(skipped.get('loop/'), 'symlink loop');
  assert.deepEqual([...docs.keys()], ['lib/util.py'], 'lib-link sorts before lib/, yet lib/ keeps its own path');
  assert.equal(skipped.get('lib-link/'), 'symlink to a directory inside the tree (walked under its own path)');
  const plain = await collect([repo]);
  assert.equal(plain.skipped.get('loop'), 'symlink (not followed)');
});

test('unreadable and vanishing files and directories are reported and the walk goes on', { timeout: 20_000 }, async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'gone'));
  writeFileSync(join(dir, 'gone', 'x.ts'), 'export {};\n');
  writeFileSync(join(dir, 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(dir, 'b.ts'), 'export const b = 1;\n');
  writeFileSync(join(dir, 'c.log.gz'), gzipSync('2024-05-02 info started\n'));
  mkdirSync(join(dir, 'z'));
  writeFileSync(join(dir, 'z', 'last.ts'), 'export const last = 1;\n');

  const docs: string[] = [];
  const skipped = new Map<string, string>();
  for await (const item of ingestSources([dir])) {
    if (item.type === 'document') {
      docs.push(item.doc.path);
      // The walk is lazy: remove a file listed but not judged yet, and a directory not read yet.
      if (item.doc.path === 'a.ts') {
        rmSync(join(dir, 'b.ts'));
        rmSync(join(dir, 'c.log.gz')); // (a gzip stream must pass the file's error on, not wait forever)
        rmSync(join(dir, 'gone'), { recursive: true });
      }
    } else {
      skipped.set(item.skipped.path, item.skipped.reason);
    }
  }
  assert.equal(skipped.get('b.ts'), 'vanished while reading (ENOENT)');
  assert.equal(skipped.get('c.log.gz'), 'vanished while reading (ENOENT)');
  assert.equal(skipped.get('gone/'), 'vanished while reading (ENOENT)');
  assert.deepEqual(docs, ['a.ts', 'z/last.ts']);

  if (isRoot) return; // root reads through chmod 000: the EACCES assertions cannot hold
  const locked = tempDir();
  writeFileSync(join(locked, 'secret.ts'), 'export {};\n');
  mkdirSync(join(locked, 'private'));
  writeFileSync(join(locked, 'private', 'x.ts'), 'export {};\n');
  writeFileSync(join(locked, 'open.ts'), 'export {};\n');
  chmodSync(join(locked, 'secret.ts'), 0o000);
  chmodSync(join(locked, 'private'), 0o000);
  try {
    const r = await collect([locked]);
    assert.equal(r.skipped.get('secret.ts'), 'unreadable (EACCES)');
    assert.equal(r.skipped.get('private/'), 'unreadable (EACCES)');
    assert.equal(r.docs.get('open.ts'), 'code');
  } finally {
    chmodSync(join(locked, 'private'), 0o755);
  }
});

test('order is deterministic: files before subdirectories, names sorted', async () => {
  const repo = materializeRepo();
  const first = await collect([repo]);
  const second = await collect([repo]);
  assert.deepEqual(first.order, second.order);
  assert.deepEqual(first.order.slice(0, 5), ['.ctxignore', '.gitignore', 'README.md', 'package.json', 'tsconfig.json']);
  const batches: string[] = [];
  for await (const b of listTree(repo, { useGit: false })) batches.push(b.relDir);
  assert.deepEqual(batches.slice(0, 4), ['', 'app', 'assets', 'config']);
  assert.deepEqual(['b/c', 'a.ts', 'b.ts', 'a/z', 'a/b/c'].sort(treeOrder), ['a.ts', 'b.ts', 'a/z', 'a/b/c', 'b/c']);
});

test('planSources lists what ingest would take, without reading files whole', { timeout: 20_000 }, async () => {
  const repo = materializeRepo();
  mkdirSync(join(repo, 'data'));
  const sparse = join(repo, 'data', 'keep.log');
  writeFileSync(sparse, '2024-05-02 10:14:03 info started\n'.repeat(1000));
  truncateSync(sparse, 8 * 1024 ** 3); // then 8 GiB of holes: reading it whole would take far longer than the test
  const plan = await planSources([repo]);
  const byPath = new Map(plan.documents.map((d) => [d.path, d]));
  assert.equal(byPath.get('data/keep.log')?.bytes, 8 * 1024 ** 3);
  assert.equal(byPath.get('src/auth.ts')?.kind, 'code');
  assert.equal(plan.skipped.find((s) => s.path === 'package-lock.json')?.reason, 'lockfile');
  rmSync(sparse);
  const ingested = await collect([repo]);
  const again = await planSources([repo]);
  assert.deepEqual(again.documents.map((d) => d.path), ingested.order);
});

test('document text is the file text, streamed in parts that end at line boundaries', async () => {
  const repo = materializeRepo();
  assert.equal(await textOf(repo, 'src/router.ts'), (await import('node:fs')).readFileSync(join(repo, 'src', 'router.ts'), 'utf8'));
  const dir = tempDir();
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`).join('\n');
  writeFileSync(join(dir, 'long.txt'), lines); // no final newline
  const parts: string[] = [];
  for await (const item of ingestSources([join(dir, 'long.txt')])) {
    assert.equal(item.type, 'document');
    if (item.type === 'document') for await (const p of item.doc.parts()) parts.push(p.text);
  }
  assert.ok(parts.length > 1);
  assert.equal(parts.join(''), lines);
  for (const p of parts.slice(0, -1)) {
    assert.ok(p.endsWith('\n'));
    assert.ok(p.length <= 64 * 1024);
  }
});

test('progress is reported per source', async () => {
  const repo = materializeRepo();
  const events: { files: number; bytes: number; path?: string }[] = [];
  const { docs, skipped } = await collect([repo], { onProgress: (e) => events.push(e) });
  assert.equal(events.length, docs.size + skipped.size);
  assert.equal(events.at(-1)?.files, docs.size + skipped.size);
  assert.ok((events.at(-1)?.bytes ?? 0) > 5000);
});
