/**
 * PDFs: one part per page with its number, the metadata title, and a clear skip (never a crash) for
 * encrypted, corrupt, truncated and scanned PDFs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ingestSources, planSources, type DocPart, type IngestItem } from '../src/ingest/index.js';
import { openPdf } from '../src/ingest/pdf.js';

const PDFS = fileURLToPath(new URL('../../fixtures/pdf/', import.meta.url));

async function items(paths: string[], opts = {}): Promise<IngestItem[]> {
  const out: IngestItem[] = [];
  for await (const item of ingestSources(paths, opts)) out.push(item);
  return out;
}

async function parts(item: IngestItem): Promise<DocPart[]> {
  assert.equal(item.type, 'document');
  const out: DocPart[] = [];
  if (item.type === 'document') for await (const p of item.doc.parts()) out.push(p);
  return out;
}

test('a good PDF: one part per page, numbered from 1, with the metadata title', async () => {
  const [item, ...rest] = await items([join(PDFS, 'shared-mime-info-spec.pdf')]);
  assert.equal(rest.length, 0);
  assert.equal(item.type, 'document');
  if (item.type !== 'document') return;
  assert.equal(item.doc.kind, 'pdf');
  assert.equal(item.doc.title, 'Shared MIME-info Database');
  const pages = await parts(item);
  assert.deepEqual(pages.map((p) => p.page), Array.from({ length: 17 }, (_, i) => i + 1));
  assert.match(pages[0].text, /Shared MIME-info Database/);
  assert.match(pages[0].text, /Thomas Leonard/);
  for (const p of pages) assert.ok(p.text.endsWith('\n'), 'each page ends at a line boundary');
  // parts() can be read again (the document holds no open parser between reads)
  assert.equal((await parts(item)).length, 17);
});

test('a PDF without a title has no title', async () => {
  const [item] = await items([join(PDFS, 'libtasn1.pdf')]);
  assert.equal(item.type, 'document');
  if (item.type !== 'document') return;
  assert.equal(item.doc.title, undefined);
  const pages = await parts(item);
  assert.equal(pages.length, 36);
  assert.match(pages.map((p) => p.text).join(''), /asn1_array2tree/);
});

test('bad PDFs are skipped with a one-line reason, and the rest of the folder is still ingested', async () => {
  const all = await items([PDFS]);
  const skipped = new Map(all.flatMap((i) => (i.type === 'skipped' ? [[i.skipped.path, i.skipped.reason]] : [])));
  const docs = all.flatMap((i) => (i.type === 'document' ? [i.doc.path] : []));
  assert.equal(skipped.get('encrypted.pdf'), 'encrypted PDF (password required)');
  assert.match(skipped.get('truncated.pdf') ?? '', /^corrupt or truncated PDF: \S/);
  assert.equal(skipped.get('scanned.pdf'), 'no text layer (scanned PDF?)');
  for (const reason of skipped.values()) assert.ok(!reason.includes('\n'));
  assert.deepEqual(docs, ['libtasn1.pdf', 'mixed.pdf', 'shared-mime-info-spec.pdf']);
});

test('a page without text (a scanned page in a text PDF) is left out; the numbering stays true', async () => {
  const [item] = await items([join(PDFS, 'mixed.pdf')]);
  const pages = await parts(item);
  assert.deepEqual(pages.map((p) => p.page), [1, 3]);
  assert.match(pages[1].text, /Language used in this specification/);
});

test('a file that only claims to be a PDF is reported as corrupt', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-pdf-'));
  writeFileSync(join(dir, 'notes.pdf'), 'this was saved with the wrong extension\n');
  const r = await openPdf(join(dir, 'notes.pdf'), 'notes.pdf');
  assert.ok('skipped' in r);
  if ('skipped' in r) assert.match(r.skipped.reason, /^corrupt or truncated PDF: /);
});

test('a PDF is recognised by its header even without the .pdf extension', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-pdf-'));
  copyFileSync(join(PDFS, 'shared-mime-info-spec.pdf'), join(dir, 'spec.download'));
  const [item] = await items([dir]);
  assert.equal(item.type === 'document' && item.doc.kind, 'pdf');
});

test('the page cap reads the first pages and reports the rest', async () => {
  const all = await items([join(PDFS, 'libtasn1.pdf')], { maxPdfPages: 3 });
  assert.equal(all.length, 2);
  assert.deepEqual((await parts(all[0])).map((p) => p.page), [1, 2, 3]);
  assert.equal(all[1].type === 'skipped' && all[1].skipped.reason, 'pages 4-36 not ingested (page cap 3)');
});

test('the dry-run plan lists PDFs without opening them', async () => {
  const plan = await planSources([PDFS]);
  assert.deepEqual(plan.documents.map((d) => d.path), ['encrypted.pdf', 'libtasn1.pdf', 'mixed.pdf', 'scanned.pdf', 'shared-mime-info-spec.pdf', 'truncated.pdf']);
  assert.ok(plan.documents.every((d) => d.kind === 'pdf' && d.bytes > 0));
});
