/**
 * What a file is (code, prose, log, PDF) and whether it is worth folding into memory: by name first, then
 * by its first bytes. Never reads more than HEAD_BYTES of a file.
 */
import { open, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { isBinaryFile } from 'isbinaryfile';
import { openBytes } from './lines.js';
import type { DocKind } from './types.js';

/** How much of a file is read to sniff it (binary, generated, minified). */
export const HEAD_BYTES = 8192;
export const DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024;

/** Version-control metadata: never content, never reported. */
export const VCS_DIRS = new Set(['.git', '.hg', '.svn']);

/** Third-party code and tool caches: not the user's code; folding them would drown it. */
const VENDORED_DIRS = new Set([
  'node_modules', 'bower_components', 'jspm_packages', 'vendor', 'third_party', 'third-party',
  '.venv', 'venv', 'site-packages', '__pycache__', '.tox', '.mypy_cache', '.pytest_cache', '.gradle',
  '.terraform', '.yarn', '.pnpm-store', 'Pods',
]);

const LOCKFILES = new Set([
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'bun.lock',
  'deno.lock', 'Cargo.lock', 'poetry.lock', 'Pipfile.lock', 'uv.lock', 'pdm.lock', 'go.sum',
  'Gemfile.lock', 'composer.lock', 'mix.lock', 'flake.lock', 'packages.lock.json', 'Podfile.lock',
  'pubspec.lock', 'gradle.lockfile', 'Package.resolved', 'paket.lock', 'conan.lock',
]);

const CODE_EXTENSIONS = new Set(
  ('ts tsx mts cts js jsx mjs cjs py pyi rb go rs java kt kts scala groovy gradle c h cc cpp cxx hpp hh hxx ' +
    'cs fs fsx swift m mm php pl pm lua r jl sh bash zsh fish ps1 psm1 bat cmd sql html htm css scss sass ' +
    'less vue svelte astro json jsonc json5 yaml yml toml ini cfg conf properties xml xsd xsl proto ' +
    'graphql gql tf hcl nix el clj cljs edn ex exs erl hrl hs ml mli dart zig v sv vhd vhdl asm s cmake mk ' +
    'ipynb sol cu cuh f f90 pas d nim cr elm purs rkt scm lisp tcl vim awk sed')
    .split(' ')
    .map((e) => `.${e}`),
);
const CODE_NAMES = new Set([
  'Makefile', 'GNUmakefile', 'makefile', 'Dockerfile', 'Containerfile', 'CMakeLists.txt', 'Rakefile',
  'Gemfile', 'Jenkinsfile', 'Procfile', 'Vagrantfile', 'BUILD', 'WORKSPACE', 'Justfile', 'justfile',
]);
const TEXT_EXTENSIONS = new Set(['.md', '.markdown', '.mdx', '.txt', '.rst', '.adoc', '.asciidoc', '.org', '.tex', '.texi']);
const TEXT_NAMES = /^(readme|license|licence|copying|changelog|changes|authors|contributors|notice|contributing|history|news|todo)(\.|$)/i;

/** `app.log`, `app.log.gz`. Rotated members (`app.log.1`) are recognised by the log grouping. */
export const LOG_NAME = /\.log(\.gz)?$/i;

export function isLockfile(name: string): boolean {
  return LOCKFILES.has(name);
}

export function isMinifiedName(name: string): boolean {
  return /\.min\.(js|mjs|cjs|css)$/i.test(name) || /\.(js|mjs|cjs|css)\.map$/i.test(name);
}

/** The kind a file's name implies, or undefined when only its content can tell (then it is prose). */
export function kindByName(name: string): DocKind | undefined {
  const ext = extname(name).toLowerCase();
  if (ext === '.pdf') return 'pdf';
  if (LOG_NAME.test(name)) return 'log';
  if (CODE_NAMES.has(name) || CODE_EXTENSIONS.has(ext)) return 'code';
  if (TEXT_EXTENSIONS.has(ext) || TEXT_NAMES.test(name)) return 'text';
  return undefined;
}

/** Why the directory `name` in `parentDir` (below the ingest root) is not walked (undefined: walk it). */
export async function dirSkipReason(parentDir: string, name: string): Promise<string | undefined> {
  if (VENDORED_DIRS.has(name)) return 'vendored directory';
  if ((name === 'dist' || name === 'build') && (await isDeclaredOutput(parentDir, name))) {
    return 'build output directory';
  }
  return undefined;
}

/**
 * dist/ and build/ are skipped only when the project says it builds into them (package.json entry points
 * or files, tsconfig outDir): a build/ folder of hand-written build scripts must stay.
 */
async function isDeclaredOutput(parentDir: string, name: string): Promise<boolean> {
  const inDir = (p: unknown) => typeof p === 'string' && new RegExp(`^(\\./)?${name}(/|$)`).test(p);
  const pkg = await readFile(join(parentDir, 'package.json'), 'utf8').catch(() => undefined);
  if (pkg !== undefined) {
    try {
      const json = JSON.parse(pkg) as Record<string, unknown>;
      const fields = ['main', 'module', 'types', 'typings', 'browser', 'bin', 'exports', 'files'];
      if (fields.some((f) => stringsIn(json[f]).some(inDir))) return true;
    } catch {
      // not our problem: an invalid package.json just says nothing about outputs
    }
  }
  const tsconfig = await readFile(join(parentDir, 'tsconfig.json'), 'utf8').catch(() => '');
  // A regex, not JSON.parse: tsconfig allows comments and trailing commas.
  return new RegExp(`"outDir"\\s*:\\s*"(\\./)?${name}/?"`).test(tsconfig);
}

function stringsIn(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(stringsIn);
  if (v && typeof v === 'object') return Object.values(v).flatMap(stringsIn);
  return [];
}

/** The first bytes of a file (decompressed for .gz, so a compressed log is sniffed by its text). */
export async function readHead(absPath: string, gzip = false): Promise<Buffer> {
  if (gzip) return readGzipHead(absPath);
  const fh = await open(absPath, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function readGzipHead(absPath: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const gunzip = openBytes(absPath, true);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      n += chunk.length;
      if (n >= HEAD_BYTES) break;
    }
  } catch (e) {
    // A truncated member (a log still being compressed) still has a readable head.
    if (n === 0) throw e;
  } finally {
    gunzip.destroy();
  }
  return Buffer.concat(chunks).subarray(0, HEAD_BYTES);
}

export function isPdfHeader(head: Buffer): boolean {
  return head.subarray(0, 5).toString('latin1') === '%PDF-';
}

export async function isBinary(head: Buffer): Promise<boolean> {
  return head.length > 0 && (await isBinaryFile(head, head.length));
}

/** A header that says the file is produced by a tool (Go's convention, Facebook's @generated, C#). */
const GENERATED_HEADER =
  /@generated\b|\bcode generated\b.*\bdo not edit\b|<auto-generated|\b(auto(matically)?[- ]generated|generated by)\b.*\bdo not (edit|modify)\b/i;

export function hasGeneratedHeader(head: Buffer): boolean {
  const firstLines = head.toString('utf8').split('\n', 5).join('\n');
  return GENERATED_HEADER.test(firstLines);
}

/** Minified or otherwise machine-made text: lines over 1000 characters on average. Judged on the head
 *  (the whole file when it fits), so that a large file is never read just to be rejected. */
export function hasLongLines(head: Buffer, size: number): boolean {
  let newlines = 0;
  for (const byte of head) if (byte === 0x0a) newlines++;
  const complete = head.length >= size;
  const lines = newlines + (complete && head[head.length - 1] !== 0x0a ? 1 : 0);
  return head.length > 1000 && head.length / Math.max(lines, 1) > 1000;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
