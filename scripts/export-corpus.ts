/**
 * Exports real text found offline on this machine as a compact training corpus for train/corpus.py (the GPU
 * machine has no Node and no network, and at most 64 MiB travels to it per call). Every document is read by
 * the product's own ingestors (ingestSources: ignore rules, binary/minified/vendored/generated skips, PDFs
 * page by page, logs line by line), so training sees text exactly as `ctx ingest` would.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/export-corpus.js --out /tmp/corpus-export.jsonl.gz [--max-mb 40]
 *
 * Sources (defaults in parentheses; naming any of --code-root/--man-root/--pdf-root/--log-root uses only
 * the sources named):
 *   --code-root DIR   every top-level folder (and @scope/name) is one package (./node_modules)
 *   --man-root DIR    a sample of --man-pages (1000) pages of man1/5/8 rendered with `man -l | col -bx`,
 *                     package = the Debian package owning the page (dpkg -S), else the page name (/usr/share/man)
 *   --pdf-root DIR    every *.pdf below; package = its first folder (/usr/share/doc)
 *   --log-root DIR    *.log below, rotated sets folded; package = its first folder, else the file's stem
 *                     (fixtures/logs, /var/log without apt, dpkg and alternatives logs: they record this
 *                     machine's own set-up commands)
 *
 * Output: gzip JSONL, one document per line:
 *   {"group": "code"|"prose"|"pdf"|"logs", "pkg", "path", "kind", "title"?, "parts": [{"text", "page"?}]}
 * Groups are capped in bytes of text (--max-mb split code 50% / prose 20% / pdf 20% / logs 10%) and each
 * package to --pkg-share (0.1) of its group, so that no package dominates. Order is deterministic.
 */
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { ingestSources, type Document } from '../src/ingest/index.js';

const run = promisify(execFile);

export type Group = 'code' | 'prose' | 'pdf' | 'logs';
export const GROUPS: Group[] = ['code', 'prose', 'pdf', 'logs'];
const SHARES: Record<Group, number> = { code: 0.5, prose: 0.2, pdf: 0.2, logs: 0.1 };
/** Same bound as train/corpus.py's MAX_BYTES: larger code files are dropped, prose and logs truncated. */
export const MAX_DOC_BYTES = 200_000;
/** Boilerplate repeated in every package: the model would memorise the MIT licence, nothing else. */
const BOILERPLATE = /^(license|licence|copying|notice|authors|contributors)(\.|$)/i;
/** Logs that record this sandbox's own installation (the commands that set it up), not a service's life. */
const PRIVATE_LOGS = /(^|\/)(apt\/|dpkg\.log|alternatives\.log)/;

export interface ExportOptions {
  out: string;
  maxMb?: number;
  pkgShare?: number;
  codeRoots?: string[];
  manRoots?: string[];
  manPages?: number;
  pdfRoots?: string[];
  logRoots?: string[];
  log?: (line: string) => void;
}

export interface GroupCount {
  docs: number;
  packages: number;
  bytes: number;
}

export interface ExportRecord {
  group: Group;
  pkg: string;
  path: string;
  kind: string;
  title?: string;
  parts: { text: string; page?: number }[];
}

/** One source argument for ingestSources: its documents are named relative to `root` and belong to `pkg`
 *  (or, with pkg undefined, to the first folder of that relative path). */
interface Source {
  root: string;
  arg: string;
  pkg?: string;
}

/** Byte budgets and what has been written; a gzip JSONL writer behind it. */
class Sink {
  readonly counts = new Map<Group, { docs: number; bytes: number; pkgs: Map<string, number> }>();
  readonly skipped = new Map<string, number>();
  private readonly gz = createGzip({ level: 9 });
  private readonly file: ReturnType<typeof createWriteStream>;

  constructor(out: string, readonly caps: Record<Group, number>, readonly pkgShare: number) {
    this.file = createWriteStream(out);
    this.gz.pipe(this.file);
    for (const g of GROUPS) this.counts.set(g, { docs: 0, bytes: 0, pkgs: new Map() });
  }

  /** Bytes still allowed for this package in this group (0: full). */
  room(group: Group, pkg: string): number {
    const c = this.counts.get(group)!;
    const pkgCap = Math.max(this.caps[group] * this.pkgShare, 64 * 1024);
    return Math.max(0, Math.min(this.caps[group] - c.bytes, pkgCap - (c.pkgs.get(pkg) ?? 0)));
  }

  groupFull(group: Group): boolean {
    return this.caps[group] - this.counts.get(group)!.bytes < 1024;
  }

  async add(rec: ExportRecord): Promise<boolean> {
    const bytes = rec.parts.reduce((n, p) => n + Buffer.byteLength(p.text), 0);
    if (bytes === 0 || bytes > this.room(rec.group, rec.pkg)) return false;
    const c = this.counts.get(rec.group)!;
    c.docs++;
    c.bytes += bytes;
    c.pkgs.set(rec.pkg, (c.pkgs.get(rec.pkg) ?? 0) + bytes);
    if (!this.gz.write(JSON.stringify(rec) + '\n')) await once(this.gz, 'drain');
    return true;
  }

  skip(reason: string): void {
    const key = reason.replace(/\(.*\)/, '').trim();
    this.skipped.set(key, (this.skipped.get(key) ?? 0) + 1);
  }

  async close(): Promise<void> {
    this.gz.end();
    await once(this.file, 'close');
  }
}

function groupOf(kind: Document['kind']): Group {
  return kind === 'code' ? 'code' : kind === 'pdf' ? 'pdf' : kind === 'log' ? 'logs' : 'prose';
}

/**
 * A document's parts within `limit` bytes: code whole or not at all (a cut file is no longer that file),
 * prose and logs cut at a line end, PDFs at a page end. undefined: nothing usable.
 */
async function readParts(doc: Document, limit: number): Promise<ExportRecord['parts'] | undefined> {
  const parts: ExportRecord['parts'] = [];
  let bytes = 0;
  for await (const part of doc.parts()) {
    const n = Buffer.byteLength(part.text);
    if (bytes + n <= limit) {
      parts.push(part.page === undefined ? { text: part.text } : { text: part.text, page: part.page });
      bytes += n;
      continue;
    }
    if (doc.kind === 'code') return undefined;
    if (doc.kind !== 'pdf') {
      const head = Buffer.from(part.text).subarray(0, limit - bytes).toString();
      const cut = head.lastIndexOf('\n') + 1;
      if (cut > 0) parts.push({ text: head.slice(0, cut) });
    }
    break;
  }
  if (doc.kind !== 'pdf') {
    const text = parts.map((p) => p.text).join('');
    return text.trim() ? [{ text }] : undefined; // one part: the exporter's readers need no log batching
  }
  const pages = parts.filter((p) => p.text.trim() !== '');
  return pages.length > 0 ? pages : undefined;
}

/**
 * Runs one source through the ingestors into the sink; stops early once its package or group is full.
 * Returns the build output folders the walker skipped (relative to src.arg).
 */
async function ingestSource(src: Source, sink: Sink, seen: Set<string>, only?: Group): Promise<string[]> {
  const builds: string[] = [];
  for await (const item of ingestSources([src.arg])) {
    if (item.type === 'skipped') {
      if (item.skipped.reason === 'build output directory') builds.push(item.skipped.path.replace(/\/$/, ''));
      else sink.skip(item.skipped.reason);
      continue;
    }
    const doc = item.doc;
    if (seen.has(doc.absPath) || BOILERPLATE.test(basename(doc.path))) continue;
    seen.add(doc.absPath);
    const group = groupOf(doc.kind);
    if (only && group !== only) continue;
    const path = relative(src.root, resolve(src.arg, doc.path)).split('\\').join('/');
    if (group === 'logs' && PRIVATE_LOGS.test(path)) continue;
    const pkg = src.pkg ?? firstDir(path);
    const room = sink.room(group, pkg);
    if (room === 0) {
      if (src.pkg && GROUPS.every((g) => sink.room(g, pkg) === 0)) return [];
      continue;
    }
    const parts = await readParts(doc, Math.min(room, MAX_DOC_BYTES));
    if (!parts) continue;
    const rec: ExportRecord = { group, pkg, path, kind: doc.kind, parts };
    if (doc.title) rec.title = doc.title;
    await sink.add(rec);
  }
  return builds;
}

function firstDir(path: string): string {
  const parts = path.split('/');
  if (parts.length === 1) return parts[0].replace(/\.log(\.\d+)?(\.gz)?$|\.[^.]*$/i, '');
  return parts[0];
}

function sortedDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** npm packages: `name` and `@scope/name`. */
function codeSources(root: string): Source[] {
  return sortedDirs(root).flatMap((name) => {
    const pkgs = name.startsWith('@') ? sortedDirs(join(root, name)).map((n) => `${name}/${n}`) : [name];
    return pkgs.map((pkg) => ({ root, arg: join(root, pkg), pkg }));
  });
}

/** One package, then the build folders (dist/, build/) its package.json declares: the walker skips them as
 *  a repository's build output, but a published package's code lives there. Ignored folders stay out. */
async function ingestPackage(src: Source, sink: Sink, seen: Set<string>): Promise<void> {
  for (const dir of await ingestSource(src, sink, seen)) {
    await ingestSource({ ...src, arg: join(src.arg, dir) }, sink, seen);
  }
}

/** Every regular file below dir whose name matches, sorted (symlinked duplicates left out). */
function findFiles(dir: string, re: RegExp, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) findFiles(p, re, out);
    else if (e.isFile() && re.test(e.name)) out.push(p);
  }
  return out;
}

/** Debian package of each file (dpkg -S), for those dpkg knows; one call for many files. */
async function debianPackages(files: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < files.length; i += 2000) {
    const { stdout } = await run('dpkg', ['-S', ...files.slice(i, i + 2000)], { maxBuffer: 1 << 24 }).catch(
      (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }), // unknown files make dpkg exit 1; the rest is still printed
    );
    for (const line of stdout.split('\n')) {
      const at = line.lastIndexOf(': /');
      if (at < 0 || line.startsWith('diversion')) continue;
      const pkg = line.slice(0, at).split(',')[0].trim().split(':')[0];
      out.set(line.slice(at + 2), pkg);
    }
  }
  return out;
}

/**
 * Renders a sample of man pages to `<tmp>/<package>/<page>.txt`, in parallel. The sample takes pages from
 * each owning package in turn: one package can own most pages (google-cloud-cli ships 16K of 18K here).
 */
async function renderManPages(roots: string[], count: number, tmp: string): Promise<void> {
  const all = roots.flatMap((r) => ['man1', 'man5', 'man8'].flatMap((s) => findFiles(join(r, s), /\.gz$/)));
  const pages = all.filter((p) => !lstatSync(p).isSymbolicLink());
  const owner = await debianPackages(pages);
  const pkgOf = (page: string) => owner.get(page) ?? basename(page).replace(/\.[^.]+\.gz$/, '');
  const byPkg = new Map<string, string[]>();
  for (const page of pages) {
    const list = byPkg.get(pkgOf(page)) ?? byPkg.set(pkgOf(page), []).get(pkgOf(page))!;
    list.push(page);
  }
  const lists = [...byPkg.keys()].sort().map((k) => byPkg.get(k)!);
  const sample: string[] = [];
  for (let round = 0; sample.length < count && lists.some((l) => l.length > round); round++) {
    for (const l of lists) if (round < l.length && sample.length < count) sample.push(l[round]);
  }
  let next = 0;
  const worker = async () => {
    while (next < sample.length) {
      const page = sample[next++];
      const name = basename(page).replace(/\.gz$/, '');
      const { stdout } = await run('sh', ['-c', 'man -l "$1" 2>/dev/null | col -bx', 'sh', page], {
        maxBuffer: 1 << 26,
        env: { ...process.env, MANWIDTH: '80', MAN_KEEP_FORMATTING: '', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
      }).catch(() => ({ stdout: '' }));
      if (stdout.trim().length < 200) continue; // .so redirects and pages man cannot render
      const dir = join(tmp, pkgOf(page));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${name}.txt`), stdout);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

export async function exportCorpus(opts: ExportOptions): Promise<Record<Group, GroupCount> & { skipped: Map<string, number> }> {
  const log = opts.log ?? (() => {});
  const total = (opts.maxMb ?? 40) * 1024 * 1024;
  const caps = Object.fromEntries(GROUPS.map((g) => [g, Math.floor(total * SHARES[g])])) as Record<Group, number>;
  const sink = new Sink(opts.out, caps, opts.pkgShare ?? 0.1);
  const seen = new Set<string>();
  const tmp = mkdtempSync(join(tmpdir(), 'ctx-man-'));
  try {
    for (const root of opts.codeRoots ?? []) {
      for (const src of codeSources(resolve(root))) {
        if (!(sink.groupFull('code') && sink.groupFull('prose'))) await ingestPackage(src, sink, seen);
      }
      log(`code roots done: ${fmt(sink, 'code')}`);
    }
    if ((opts.manPages ?? 0) > 0 && (opts.manRoots ?? []).length > 0) {
      await renderManPages(opts.manRoots!.map((r) => resolve(r)), opts.manPages!, tmp);
      for (const pkg of sortedDirs(tmp)) await ingestSource({ root: tmp, arg: join(tmp, pkg), pkg }, sink, seen, 'prose');
      log(`man pages done: ${fmt(sink, 'prose')}`);
    }
    for (const root of (opts.pdfRoots ?? []).map((r) => resolve(r))) {
      for (const pdf of findFiles(root, /\.pdf$/i)) await ingestSource({ root, arg: pdf }, sink, seen, 'pdf');
      log(`pdfs done: ${fmt(sink, 'pdf')}`);
    }
    for (const root of (opts.logRoots ?? []).map((r) => resolve(r))) {
      if (existsSync(root)) await ingestSource({ root, arg: root }, sink, seen, 'logs');
    }
  } finally {
    await sink.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  const out = Object.fromEntries(
    GROUPS.map((g) => {
      const c = sink.counts.get(g)!;
      return [g, { docs: c.docs, packages: c.pkgs.size, bytes: c.bytes }];
    }),
  ) as Record<Group, GroupCount>;
  return Object.assign(out, { skipped: sink.skipped });
}

function fmt(sink: Sink, g: Group): string {
  const c = sink.counts.get(g)!;
  return `${g} ${c.docs} docs, ${c.pkgs.size} packages, ${(c.bytes / 1e6).toFixed(1)} MB`;
}

function parseArgs(argv: string[]): ExportOptions {
  const opts: ExportOptions & Record<string, unknown> = { out: '' };
  const lists = { '--code-root': 'codeRoots', '--man-root': 'manRoots', '--pdf-root': 'pdfRoots', '--log-root': 'logRoots' } as const;
  let named = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a}: missing value`);
    if (a in lists) {
      const key = lists[a as keyof typeof lists];
      opts[key] = [...((opts[key] as string[] | undefined) ?? []), v];
      named = true;
    } else if (a === '--out') opts.out = v;
    else if (a === '--max-mb') opts.maxMb = Number(v);
    else if (a === '--pkg-share') opts.pkgShare = Number(v);
    else if (a === '--man-pages') opts.manPages = Number(v);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.out) throw new Error('--out FILE is required');
  if (!named) {
    const repo = resolve(fileURLToPath(import.meta.url), '../../..');
    Object.assign(opts, {
      codeRoots: [join(repo, 'node_modules')],
      manRoots: ['/usr/share/man'],
      pdfRoots: ['/usr/share/doc'],
      logRoots: [join(repo, 'fixtures', 'logs'), '/var/log'],
    });
  }
  opts.manPages ??= 1000;
  return opts;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const opts = parseArgs(process.argv.slice(2));
  const counts = await exportCorpus({ ...opts, log: (l) => console.error(l) });
  for (const g of GROUPS) {
    const c = counts[g];
    console.log(`${g.padEnd(6)} ${String(c.docs).padStart(6)} docs ${String(c.packages).padStart(5)} packages ${(c.bytes / 1e6).toFixed(1).padStart(6)} MB`);
  }
  const skips = [...counts.skipped].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`);
  console.log(`skipped by the ingestors: ${skips.join(', ') || 'none'}`);
  const { size } = statSync(opts.out);
  console.log(`${opts.out}: ${(size / 1e6).toFixed(1)} MB gzip, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
