"""The Python mirror of the stream format must produce exactly the ids of the TypeScript side, pinned in
test/golden/stream.json (written by scripts/stream-golden.ts, checked on the TS side by test/stream-golden.test.ts)."""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'train'))
from stream import (SPECIAL, Segmenter, Tokenizer, answer_tokens, continuation_header, document_header,  # noqa: E402
                    js_collapse, js_slice, question_prompt)

GOLDEN = json.load(open(os.path.join(ROOT, 'test', 'golden', 'stream.json'), encoding='utf-8'))


@pytest.fixture(scope='module')
def tok():
    return Tokenizer(os.path.join(ROOT, 'models', 'ctx-small', 'tokenizer.model'))


def feed(tok, seg_len, docs, pretokenized=False):
    seg, out = Segmenter(tok, seg_len), []
    for d in docs:
        out += seg.begin_document(d['kind'], d['path'], d.get('title'))
        for p in d['parts']:
            if p.get('page') is not None:
                out += seg.begin_page(p['page'])
            out += seg.tokens(tok.encode(p['text'])) if pretokenized else seg.text(p['text'])
    last = seg.flush()
    return out + ([last] if last is not None else [])


@pytest.mark.parametrize('pretokenized', [False, True])
def test_segments_match_golden(tok, pretokenized):
    got = feed(tok, GOLDEN['segLen'], GOLDEN['docs'], pretokenized)
    want = GOLDEN['segments']
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == np.int32
        assert g.tolist() == w, f'segment {i}: {tok.sp.id_to_piece(g.tolist())} != {tok.sp.id_to_piece(w)}'


def test_questions_and_answers_match_golden(tok):
    for q in GOLDEN['questions']:
        assert question_prompt(tok, q['q']) == q['ids']
    for a in GOLDEN['answers']:
        assert answer_tokens(tok, a['a']) == a['ids']
        assert a['ids'][-1] == SPECIAL['eos']


def test_headers(tok):
    h = document_header(tok, 'code', 'a/b.py')
    assert h[0] == SPECIAL['doc'] and tok.decode(h) == 'code a/b.py\n'
    c = continuation_header(tok, 'pdf', 'x.pdf', 3)
    assert c[0] == SPECIAL['cont'] and SPECIAL['page'] in c and c[-1] == tok.nl[0]
    long = continuation_header(tok, 'code', '/'.join(['directory'] * 60) + '/file.py')
    assert len(long) <= 48 + 1 and tok.decode(long).startswith('code \u2026')


def test_js_string_semantics():
    assert js_collapse(' a\u00a0\n b\ufeff ') == 'a b'
    assert js_collapse('a\x1cb') == 'a\x1cb'          # not whitespace in JS
    assert js_slice('a😀b', 0, 3) == 'a😀'             # the emoji is two UTF-16 code units
