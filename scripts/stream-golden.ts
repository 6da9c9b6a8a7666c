/**
 * Golden vectors of the stream format: a fixed list of small documents run through the TypeScript Segmenter
 * (segLen 64, so segments split often), plus questions and answers. test/stream-golden.test.ts checks that
 * this still reproduces test/golden/stream.json, and train/tests/test_stream.py checks that the Python mirror
 * (train/stream.py) produces the same ids from the same inputs, so training and use cannot drift apart.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/stream-golden.js > test/golden/stream.json
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DocKind } from '../src/ingest/types.js';
import { answerTokens, questionPrompt } from '../src/stream/format.js';
import { Segmenter } from '../src/stream/segmenter.js';
import { Tokenizer } from '../src/tokenizer/index.js';

export const SEG_LEN = 64;
export const TOKENIZER = fileURLToPath(new URL('../../models/ctx-small/tokenizer.model', import.meta.url));

export interface GoldenDoc {
  kind: DocKind;
  path: string;
  title?: string;
  parts: { text: string; page?: number }[];
}

const CODE = [
  '# -*- coding: utf-8 -*-\n',
  'def grüße(name):\n\t"""Say hello — 你好, Привет 👋"""\n\treturn f"hi {name}\\t!"\n\n',
  'class Ünïcode:\r\n\tπ = 3.14159  # ≈ π\r\n    \t  mixed = "tabs\tand   spaces"\n',
];

const LONG_LOG = Array.from({ length: 14 }, (_, i) =>
  `2024-03-0${1 + (i % 9)}T12:${String(i).padStart(2, '0')}:07Z INFO [svc-${i % 3}] request ${1000 + i * 37} done in ${i * 3} ms\n`);

const BASE_DOCS: GoldenDoc[] = [
  { kind: 'code', path: 'src/ünï/módulo.py', parts: CODE.map((text) => ({ text })) },
  {
    kind: 'pdf',
    path: 'docs/Annual Report 2023.pdf',
    title: '  Annual\n Report\t 2023 \u00a0— Ünïcode  ',
    parts: [
      { text: 'Introduction\nThis report covers the year.\n', page: 1 },
      { text: 'Revenue grew by 12% to €4.2M.\nCosts fell.\n', page: 2 },
      { text: '', page: 3 },
      { text: 'Appendix A: tables\n', page: 4 },
    ],
  },
  { kind: 'log', path: 'var/log/app/server.log', parts: [LONG_LOG.slice(0, 8).join(''), LONG_LOG.slice(8).join('')].map((text) => ({ text })) },
  // Truncated to a header of 40 tokens: the segmenter caps its continuation header at segLen / 2.
  {
    kind: 'code',
    path: 'a/'.repeat(20) + 'ЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯжзийклмнопрстуфхцчшщ.ts',
    parts: [{ text: 'export const answer = 42;\n' }, { text: 'export function f(x: number): number {\n  return x * 2;\n}\n'.repeat(2) }],
  },
  {
    kind: 'code',
    path: 'very/deeply/nested/directory/structure/that/goes/on/and/on/for/quite/a/while/until/it/finally/reaches/the/file/named/extraordinarily_long_module_name_for_testing_header_truncation.ts',
    parts: [{ text: 'export const answer = 42;\n' }, { text: 'export function f(x: number): number {\n  return x * 2;\n}\n'.repeat(3) }],
  },
  { kind: 'text', path: 'EMPTY.md', parts: [] },
  { kind: 'text', path: 'empty-part.txt', parts: [{ text: '' }] },
  { kind: 'pdf', path: 'untitled.pdf', title: '', parts: [{ text: 'one\n', page: 1 }, { text: 'two\n', page: 2 }] },
];

export const QUESTIONS = [
  'where is grüße defined?',
  '  which file\thandles\n\nrevenue?  ',
  'What is the pass key?',
  'when did error E-4821 first occur?\u00a0',
  '',
];

export const ANSWERS = ['src/ünï/módulo.py', '48213', '2024-03-01T12:05:07Z', 'svc-1', ''];

export function feed(tok: Tokenizer, segLen: number, docs: GoldenDoc[]): Int32Array[] {
  const seg = new Segmenter(tok, segLen);
  const out: Int32Array[] = [];
  for (const doc of docs) {
    out.push(...seg.beginDocument({ kind: doc.kind, path: doc.path, title: doc.title }));
    for (const part of doc.parts) {
      if (part.page !== undefined) out.push(...seg.beginPage(part.page));
      out.push(...seg.text(part.text));
    }
  }
  const last = seg.flush();
  if (last) out.push(last);
  return out;
}

/** A PDF whose page 2 begins exactly at a segment start (the Segmenter's special case): pad page 1 until
 *  the stream so far fills whole segments. */
function pageAtSegmentStart(tok: Tokenizer, before: GoldenDoc[]): GoldenDoc {
  for (let k = 0; k < 4 * SEG_LEN; k++) {
    const doc: GoldenDoc = {
      kind: 'pdf',
      path: 'boundary.pdf',
      parts: [{ text: 'pad '.repeat(k) + 'end\n', page: 1 }, { text: 'second page\n', page: 2 }],
    };
    const probe = new Segmenter(tok, SEG_LEN);
    const trial = [...before, { ...doc, parts: doc.parts.slice(0, 1) }];
    for (const d of trial) {
      probe.beginDocument(d);
      for (const p of d.parts) {
        if (p.page !== undefined) probe.beginPage(p.page);
        probe.text(p.text);
      }
    }
    if (probe.flush() === null) return doc;
  }
  throw new Error('no padding puts a page at a segment start');
}

export async function golden() {
  const tok = await Tokenizer.load(TOKENIZER);
  const docs = [...BASE_DOCS];
  docs.push(pageAtSegmentStart(tok, docs));
  return {
    segLen: SEG_LEN,
    docs,
    segments: feed(tok, SEG_LEN, docs).map((s) => Array.from(s)),
    questions: QUESTIONS.map((q) => ({ q, ids: questionPrompt(tok, q) })),
    answers: ANSWERS.map((a) => ({ a, ids: answerTokens(tok, a) })),
  };
}

/** JSON with every id array on one line, so the golden file stays readable in diffs. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 1).replace(/\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]/g, (_, inner: string) => `[${inner.split(/,\s*/).join(',')}]`) + '\n';
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(toJson(await golden()));
}
