"""The stream format, mirrored exactly from src/stream/format.ts and src/stream/segmenter.ts.

The TypeScript side is the single definition; this file copies it line for line so that training data has
the very tokens the product will fold. Both sides are pinned to test/golden/stream.json
(train/tests/test_stream.py and test/stream-golden.test.ts), so any drift fails a test.

  document      <doc>{kind} {path}\n            then, for a PDF with a title, "title: {title}\n"
  page          <page>{n}\n                     before each page of a PDF
  continuation  <cont>{kind} {path}\n           first tokens of a segment that begins mid-document;
                <cont>{kind} {path}<page>{n}\n  ... and inside a PDF page, that page's number
  question      <q>{question}<a>                the answer follows, ended by </s>

JavaScript strings are UTF-16: String.length and .slice count UTF-16 code units, so the title cap does the
same here (js_slice).
"""
import os
import re

import numpy as np
import sentencepiece as spm

SPECIAL = dict(pad=0, unk=1, eos=2, doc=3, cont=4, page=5, q=6, a=7)
MAX_HEADER_TOKENS = 48
SHIPPED_TOKENIZER = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models', 'ctx-small', 'tokenizer.model')

# JavaScript's \s (and the set String.prototype.trim removes); Python's \s differs (\x1c-\x1f, \x85, \ufeff).
_JS_WS = '\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff'
_JS_WS_RUN = re.compile(f'[{_JS_WS}]+')
_JS_TRIM = re.compile(f'^[{_JS_WS}]+|[{_JS_WS}]+$')


def js_slice(s, start, end=None):
    """s.slice(start, end) for non-negative indices, in UTF-16 code units. A cut inside a surrogate pair
    leaves a lone surrogate in JS; here it becomes U+FFFD (such paths are not expected in practice)."""
    b = s.encode('utf-16-le')
    end = len(b) // 2 if end is None else end
    return b[2 * start:2 * end].decode('utf-16-le', 'replace')


def js_collapse(s):
    """s.replace(/\\s+/g, ' ').trim()"""
    return _JS_TRIM.sub('', _JS_WS_RUN.sub(' ', s))


class Tokenizer:
    """sentencepiece with the TS Tokenizer's encode: '' -> [] (see src/tokenizer/index.ts)."""

    def __init__(self, path):
        self.sp = spm.SentencePieceProcessor(model_file=path)
        for piece, i in (('<doc>', 3), ('<cont>', 4), ('<page>', 5), ('<q>', 6), ('<a>', 7)):
            assert self.sp.piece_to_id(piece) == i, f'{path} is not a ctx tokenizer ({piece} is not {i})'
        self.nl = self.sp.encode('\n')
        assert len(self.nl) == 1, 'a newline must be one token'

    def encode(self, text):
        return self.sp.encode(text) if text else []

    def decode(self, ids):
        return self.sp.decode([int(i) for i in ids])


def _header_body(tok, kind, path):
    room = MAX_HEADER_TOKENS - 2
    ids = tok.encode(f'{kind} {path}')
    if len(ids) <= room:
        return ids
    path_ids = tok.encode(path)
    for keep in range(room - 4, 0, -1):
        ids = tok.encode(f'{kind} \u2026{tok.decode(path_ids[-keep:])}')
        if len(ids) <= room:
            return ids
    return ids[:room]


def document_header(tok, kind, path, title=None):
    ids = [SPECIAL['doc'], *_header_body(tok, kind, path), *tok.nl]
    if title:
        ids += tok.encode(f'title: {js_slice(js_collapse(title), 0, 200)}\n')
    return ids


def continuation_header(tok, kind, path, page=None):
    ids = [SPECIAL['cont'], *_header_body(tok, kind, path)]
    if page is not None:
        ids += [SPECIAL['page'], *tok.encode(str(page))]
    return ids + tok.nl


def page_marker(tok, page):
    return [SPECIAL['page'], *tok.encode(f'{page}\n')]


def question_prompt(tok, question):
    return [SPECIAL['q'], *tok.encode(js_collapse(question)), SPECIAL['a']]


def answer_tokens(tok, answer):
    return [*tok.encode(answer), SPECIAL['eos']]


class Segmenter:
    """Cuts the token stream of a sequence of documents into segments of exactly seg_len tokens (the last
    may be shorter). A segment that begins inside a document starts with that document's continuation header.
    Every method returns the list of segments completed on the way (np.int32 arrays of seg_len).

    tokens(ids) is text() with the ids already encoded: training caches each file's ids and pushes slices
    of them, which equals text() on the same slices' text."""

    def __init__(self, tok, seg_len):
        self.tok, self.seg_len = tok, seg_len
        self.buf = np.zeros(seg_len, np.int32)
        self.fill = 0
        self.doc = None        # (kind, path) of the current document
        self.page = None
        self.cont = []
        self.text_tokens = 0

    def begin_document(self, kind, path, title=None):
        self.doc = (kind, path)
        self.page = None
        self.cont = continuation_header(self.tok, kind, path)
        return self._push(document_header(self.tok, kind, path, title), False)

    def begin_page(self, page):
        self.page = page
        self.cont = continuation_header(self.tok, *self.doc, page)
        # At a segment start the continuation header already names the page.
        if self.fill == 0:
            return self._push(self.cont, False)
        return self._push(page_marker(self.tok, page), True)

    def text(self, s):
        return self.tokens(self.tok.encode(s))

    def tokens(self, ids):
        self.text_tokens += len(ids)
        return self._push(ids, True)

    def flush(self):
        if self.fill == 0:
            return None
        last = self.buf[:self.fill].copy()
        self.fill = 0
        return last

    def _push(self, ids, mid_document):
        out, i, L = [], 0, len(ids)
        while i < L:
            if self.fill == 0 and mid_document and self.doc is not None:
                self._write(self.cont)
            n = min(L - i, self.seg_len - self.fill)
            self.buf[self.fill:self.fill + n] = ids[i:i + n]
            self.fill += n
            i += n
            if self.fill == self.seg_len:
                out.append(self.buf)
                self.buf = np.zeros(self.seg_len, np.int32)
                self.fill = 0
                mid_document = self.doc is not None
        return out

    def _write(self, ids):
        # A continuation header never takes more than half a segment.
        n = min(len(ids), self.seg_len >> 1)
        self.buf[:n] = ids[:n]
        self.fill = n
