/**
 * PDFs: one part per page (text layer via pdf-parse v2 / pdf.js), the metadata title as the title.
 * Memory stays bounded by extracting one page at a time (`getText({ partial: [n] })`, which cleans the page
 * up after) instead of `getText()` on the whole document; pdf.js reads the file itself from its path.
 */
import { pathToFileURL } from 'node:url';
import { PDFParse } from 'pdf-parse';
import type { DocPart, Document, Skipped } from './types.js';

export const DEFAULT_MAX_PDF_PAGES = 20000;

export interface PdfDocument extends Document {
  kind: 'pdf';
  /** Pages in the file. */
  pages: number;
  /** Pages that will be read (the page cap may leave the rest out). */
  readPages: number;
}

export type PdfOpenResult = { doc: PdfDocument } | { skipped: Skipped };

/**
 * Opens a PDF far enough to know it can be ingested: readable, not encrypted, and with a text layer (a
 * scanned PDF is only known after reading pages: pages are read until one has text, which for an ordinary
 * PDF is the first). The parser is closed again; the document's parts() reopens it, so that a Document
 * holds no resources until it is read.
 */
export async function openPdf(absPath: string, path: string, maxPages = DEFAULT_MAX_PDF_PAGES): Promise<PdfOpenResult> {
  const parser = newParser(absPath);
  try {
    const info = await parser.getInfo();
    const pages = info.total;
    const readPages = Math.min(pages, maxPages);
    if (pages === 0) return { skipped: { path, reason: 'PDF has no pages' } };
    if (!(await hasTextLayer(parser, readPages))) return { skipped: { path, reason: 'no text layer (scanned PDF?)' } };
    // The Info dictionary's title, else the XMP one (dc:title), which some producers write instead.
    const title = cleanTitle(info.info?.Title) ?? cleanTitle(info.metadata?.get('dc:title'));
    const doc: PdfDocument = { kind: 'pdf', path, absPath, pages, readPages, parts: () => pdfPages(absPath, readPages) };
    if (title) doc.title = title;
    return { doc };
  } catch (e) {
    return { skipped: { path, reason: pdfFailure(e) } };
  } finally {
    await parser.destroy().catch(() => {});
  }
}

function newParser(absPath: string): PDFParse {
  // A file URL, so that pdf.js streams the file itself (and '#' or '%' in a name stay a path).
  return new PDFParse({ url: pathToFileURL(absPath) });
}

async function hasTextLayer(parser: PDFParse, pages: number): Promise<boolean> {
  for (let n = 1; n <= pages; n++) {
    if ((await pageText(parser, n)).trim() !== '') return true;
  }
  return false;
}

async function pageText(parser: PDFParse, n: number): Promise<string> {
  const result = await parser.getText({ partial: [n] });
  return result.pages[0]?.text ?? '';
}

/** One part per page that has text. A page that fails to parse is left out, the rest still read: one bad
 *  content stream should not lose the document. Each part ends with a newline (parts end at lines). */
async function* pdfPages(absPath: string, pages: number): AsyncGenerator<DocPart> {
  const parser = newParser(absPath);
  try {
    for (let page = 1; page <= pages; page++) {
      const text = await pageText(parser, page).catch(() => '');
      if (text.trim() === '') continue;
      yield { text: text.endsWith('\n') ? text : `${text}\n`, page };
    }
  } finally {
    await parser.destroy().catch(() => {});
  }
}

function cleanTitle(title: unknown): string | undefined {
  if (typeof title !== 'string') return undefined;
  const t = title.replace(/\s+/g, ' ').trim();
  return t || undefined;
}

/** One line that says what is wrong, from pdf-parse's typed exceptions. */
export function pdfFailure(e: unknown): string {
  const err = e as Error;
  if (err?.name === 'PasswordException') return 'encrypted PDF (password required)';
  const message = String(err?.message ?? e).split('\n')[0].trim();
  if (err?.name === 'ResponseException' || /ENOENT|EACCES|EISDIR/.test(message)) return `unreadable PDF: ${message}`;
  return `corrupt or truncated PDF: ${message || err?.name || 'unknown error'}`;
}
