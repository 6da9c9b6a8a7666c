/**
 * Repository evaluation: questions generated from the repository itself, answered from its snapshot.
 *   identifier  "where is X defined?"      X defined in exactly one file     -> that file's path
 *   topic       "which file handles W?"    W a word of one file's identifiers, in no other file -> that path
 * Scored as exact path match of the top answer (top-1) and of any of the top 3 (top-3).
 */
import { ingestSources } from '../ingest/index.js';
import { rng } from './passkey.js';

export interface RepoQuestion {
  kind: 'identifier' | 'topic';
  question: string;
  path: string;
}

const DEFINITIONS: [RegExp, RegExp[]][] = [
  [/\.py$/, [/^\s*(?:async\s+)?def\s+([A-Za-z_]\w{3,})\s*\(/gm, /^\s*class\s+([A-Za-z_]\w{3,})/gm]],
  [/\.(?:[cm]?[jt]sx?)$/, [/\bfunction\s*\*?\s*([A-Za-z_$][\w$]{3,})\s*\(/g, /\bclass\s+([A-Za-z_$][\w$]{3,})/g,
    /\b(?:const|let|var)\s+([A-Za-z_$][\w$]{3,})\s*=\s*(?:async\s*)?(?:\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>/g]],
  [/\.go$/, [/^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w{3,})\s*\(/gm]],
  [/\.rs$/, [/\bfn\s+([a-z_]\w{3,})/g, /\b(?:struct|enum|trait)\s+([A-Z]\w{3,})/g]],
];

export function definitionsIn(path: string, text: string): string[] {
  const found = new Set<string>();
  for (const [ext, patterns] of DEFINITIONS) {
    if (!ext.test(path)) continue;
    for (const p of patterns) for (const m of text.matchAll(p)) found.add(m[1]);
  }
  return [...found];
}

function words(identifier: string): string[] {
  return identifier.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z]+/).filter((w) => w.length >= 5);
}

/** Reads the repository through the same ingestors as `ctx ingest`, and makes up to `n` questions. */
export async function repoQuestions(path: string, n: number, seed = 1): Promise<{ questions: RepoQuestion[]; files: number }> {
  const texts = new Map<string, string>();
  for await (const item of ingestSources([path])) {
    if (item.type !== 'document' || item.doc.kind !== 'code') continue;
    let text = '';
    for await (const part of item.doc.parts()) text += part.text;
    texts.set(item.doc.path, text);
  }
  const definedIn = new Map<string, string[]>();
  for (const [p, text] of texts) for (const d of definitionsIn(p, text)) definedIn.set(d, [...(definedIn.get(d) ?? []), p]);
  const identifiers = [...definedIn].filter(([, ps]) => ps.length === 1).map(([name, [p]]) => ({ kind: 'identifier' as const, question: `where is ${name} defined?`, path: p }));
  const topics: RepoQuestion[] = [];
  for (const [p, text] of texts) {
    const own = new Set(definitionsIn(p, text).flatMap(words));
    for (const w of own) {
      const elsewhere = [...texts].some(([q, t]) => q !== p && t.toLowerCase().includes(w));
      if (!elsewhere) topics.push({ kind: 'topic', question: `which file handles ${w}?`, path: p });
    }
  }
  const r = rng(seed);
  const pick = (xs: RepoQuestion[], k: number) => xs.map((x) => [r(), x] as const).sort((a, b) => a[0] - b[0]).slice(0, k).map(([, x]) => x);
  const nTopic = Math.min(topics.length, Math.floor(n / 3));
  const chosen = [...pick(identifiers, n - nTopic), ...pick(topics, nTopic)];
  return { questions: chosen.length < n ? [...chosen, ...pick(topics.filter((t) => !chosen.includes(t)), n - chosen.length)] : chosen, files: texts.size };
}

export interface AnswerSpread {
  distinctAnswers: number;
  distinctPaths: number;
  commonestShare: number;
  /** Questions whose right path is not the model's commonest answer, and how many of them it ranks right first. */
  othersAsked: number;
  othersRight: number;
}

/**
 * How much the top-1 answers move with the question: a model that ranks the same path first whatever it is asked
 * scores the share of questions whose answer that path is (RUNS.md run 18: the shipped model answered one path per
 * held-out repository, so its top-1 there was that share, not recall from memory). What it gets right about the
 * other files (othersRight of othersAsked) is what naming one file cannot give (RUNS.md run 26: the shipped model 0
 * of 94 on the held-out repositories).
 */
export function answerSpread(rs: { answer: string; path: string; top1: boolean }[]): AnswerSpread {
  const counts = new Map<string, number>();
  for (const r of rs) counts.set(r.answer, (counts.get(r.answer) ?? 0) + 1);
  let commonest: string | undefined;
  let most = 0;
  for (const [answer, c] of counts) if (c > most) [commonest, most] = [answer, c];
  const others = rs.filter((r) => r.path !== commonest);
  return {
    distinctAnswers: counts.size,
    distinctPaths: new Set(rs.map((r) => r.path)).size,
    commonestShare: rs.length ? most / rs.length : NaN,
    othersAsked: others.length,
    othersRight: others.filter((r) => r.top1).length,
  };
}
