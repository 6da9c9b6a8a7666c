/**
 * `git ls-files` for a directory inside a work tree: tracked and untracked-but-not-ignored files, with
 * git's own reading of .gitignore, .git/info/exclude and core.excludesFile.
 */
import { spawn } from 'node:child_process';

/**
 * Paths relative to `dir` ('/' separators), or undefined when `dir` is not in a git work tree, git is not
 * installed, or git fails: the caller then walks the directory itself. The output is parsed as it streams
 * (NUL-separated, so any file name is safe) instead of buffered whole as execFile would.
 */
export function gitListFiles(dir: string): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    const paths: string[] = [];
    let pending = '';
    const child = spawn('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'ignore'],
      // Variables a git hook may have set would point git at another repository than `dir`'s.
      env: { ...process.env, GIT_DIR: undefined, GIT_WORK_TREE: undefined, GIT_INDEX_FILE: undefined },
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const pieces = (pending + chunk).split('\0');
      pending = pieces.pop() ?? '';
      for (const p of pieces) if (p) paths.push(p);
    });
    child.on('error', () => resolve(undefined)); // git not installed (ENOENT) or not runnable
    child.on('close', (code) => resolve(code === 0 ? paths : undefined));
  });
}
