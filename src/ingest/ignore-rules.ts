/**
 * .gitignore semantics, applied per directory as git does, with the `ignore` package doing the pattern
 * matching: each ignore file's patterns are relative to its own directory; a deeper file overrides a
 * shallower one; within one directory the last matching rule wins (so `!keep.log` re-includes); nothing
 * inside an ignored directory can be re-included; .git/info/exclude has the lowest precedence.
 * `.ctxignore` (same syntax) is read after .gitignore in the same directory, so it has the last word there.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

export const CTXIGNORE = '.ctxignore';
export const GITIGNORE = '.gitignore';

export interface RulesOptions {
  /** Ignore files read in each directory, in precedence order (later wins). */
  files: string[];
  /** Read <repo>/.git/info/exclude too (the walker does; `git ls-files` already applied it). */
  gitExclude: boolean;
}

export class IgnoreRules {
  private readonly levels = new Map<string, Promise<Ignore | undefined>>();
  private readonly dirs = new Map<string, Promise<boolean>>();

  private constructor(
    /** Ignore files are read from every directory from `top` down (the repository top when there is one). */
    private readonly top: string,
    private readonly root: string,
    private readonly opts: RulesOptions,
    private readonly exclude: Ignore | undefined,
  ) {}

  static async create(root: string, opts: RulesOptions): Promise<IgnoreRules> {
    const repo = await findRepoTop(root);
    const exclude = repo && opts.gitExclude ? await readRules(join(repo, '.git', 'info', 'exclude')) : undefined;
    const rules = new IgnoreRules(repo ?? root, root, opts, exclude);
    // The user named this directory: if the rules above it ignore it (say, ingesting node_modules/x), the
    // user wins and only the rules inside it apply.
    if (repo && repo !== root && (await rules.matches(root, true))) {
      return new IgnoreRules(root, root, opts, undefined);
    }
    return rules;
  }

  /** Whether a path below the root is ignored (by its own rule or by an ignored parent directory). */
  async ignored(absPath: string, isDir: boolean): Promise<boolean> {
    const parent = dirname(absPath);
    if (parent !== this.root && (await this.ignoredDir(parent))) return true;
    return this.matches(absPath, isDir);
  }

  private ignoredDir(absDir: string): Promise<boolean> {
    let decision = this.dirs.get(absDir);
    if (!decision) {
      decision = this.ignored(absDir, true);
      this.dirs.set(absDir, decision);
    }
    return decision;
  }

  /** The deepest ignore file with an opinion on the path decides; then .git/info/exclude. */
  private async matches(absPath: string, isDir: boolean): Promise<boolean> {
    for (let dir = dirname(absPath); ; dir = dirname(dir)) {
      const verdict = test(await this.level(dir), dir, absPath, isDir);
      if (verdict !== undefined) return verdict;
      if (dir === this.top || dir === dirname(dir)) break;
    }
    return test(this.exclude, this.top, absPath, isDir) ?? false;
  }

  private level(dir: string): Promise<Ignore | undefined> {
    let rules = this.levels.get(dir);
    if (!rules) {
      rules = readLevel(dir, this.opts.files);
      this.levels.set(dir, rules);
    }
    return rules;
  }
}

function test(rules: Ignore | undefined, dir: string, absPath: string, isDir: boolean): boolean | undefined {
  if (!rules) return undefined;
  const rel = relative(dir, absPath).split(sep).join('/') + (isDir ? '/' : '');
  const r = rules.test(rel);
  if (r.ignored) return true;
  if (r.unignored) return false;
  return undefined;
}

async function readLevel(dir: string, files: string[]): Promise<Ignore | undefined> {
  const texts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8').catch(() => undefined)));
  const present = texts.filter((t): t is string => t !== undefined);
  // An unreadable ignore file counts as absent: the walk goes on, as git's does. Joined into one text:
  // `ignore` splits a string into lines, but takes each element of an array as a single pattern.
  return present.length ? ignore().add(present.join('\n')) : undefined;
}

async function readRules(file: string): Promise<Ignore | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : ignore().add(text);
}

/** The work tree top above `dir` (a directory holding `.git`, a folder or a worktree/submodule file). */
export async function findRepoTop(dir: string): Promise<string | undefined> {
  for (let d = dir; ; d = dirname(d)) {
    if (await stat(join(d, '.git')).then(() => true, () => false)) return d;
    if (d === dirname(d)) return undefined;
  }
}
