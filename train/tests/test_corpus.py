"""Folding a corpus export (scripts/export-corpus.ts) into the pool: records like files on disk, the PDF's
pages kept, the same split by package, and a sampler that still works on the enlarged pool. The export is
written here by hand, so no Node is needed."""
import gzip
import json
import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'train'))
import corpus  # noqa: E402
import tasks  # noqa: E402

TOKENIZER = os.path.join(ROOT, 'models', 'ctx-small', 'tokenizer.model')

JS = '''/** Parses query strings into objects. */
export function parseQuery(input) {
  const out = {};
  for (const pair of input.split('&')) {
    const [key, value] = pair.split('=');
    out[decodeURIComponent(key)] = decodeURIComponent(value ?? '');
  }
  return out;
}

export class QueryCache {
  constructor(limit) { this.limit = limit; this.entries = new Map(); }
}
'''
TS = 'export interface RetryPolicy {\n  attempts: number;\n}\n\nexport const defaultRetry: RetryPolicy = { attempts: 3 };\n'
MAN = 'GREP(1)\n\nNAME\n       grep - print lines that match patterns\n\nDESCRIPTION\n       grep searches for PATTERNS.\n'
PAGES = ['Libtasn1 manual\nIntroduction to ASN.1 structures\n', 'Chapter 2\nThe parser reads definitions',
         'Chapter 3\nEncoding with DER\n']
LOG = '127.0.0.1 - - [23/Nov/2026:10:37:01 +0000] "GET /?round=1 HTTP/1.1" 200 615 "-" "curl/7.88.1"\n' * 3

DOCS = [
    dict(group='code', pkg='querystringish', path='querystringish/lib/parse.js', kind='code', parts=[dict(text=JS)]),
    dict(group='code', pkg='retryish', path='retryish/src/retry.ts', kind='code', parts=[dict(text=TS)]),
    dict(group='prose', pkg='grep', path='grep/grep.1.txt', kind='text', parts=[dict(text=MAN)]),
    dict(group='pdf', pkg='libtasn1-doc', path='libtasn1-doc/libtasn1.pdf', kind='pdf', title='GNU Libtasn1',
         parts=[dict(text=t, page=n) for n, t in ((1, PAGES[0]), (2, PAGES[1]), (4, PAGES[2]))]),
    dict(group='logs', pkg='nginx', path='nginx/access.log', kind='log', parts=[dict(text=LOG)]),
    dict(group='code', pkg='empty', path='empty/a.js', kind='code', parts=[dict(text='  \n')]),
]
HELDOUT = ('retryish', 'libtasn1-doc')


def write_export(path, docs):
    with gzip.open(path, 'wt', encoding='utf-8') as f:
        for d in docs:
            f.write(json.dumps(d) + '\n')


@pytest.fixture(scope='module')
def export(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('export') / 'corpus.jsonl.gz')
    write_export(path, DOCS)
    return path


@pytest.fixture(scope='module')
def pool(export):
    return corpus.build_pool([], prose_roots=(), log_roots=(), procs=1, heldout=HELDOUT, exports=[export])


def by_path(pool, group):
    return {r['path']: r for r in pool[group]}


def test_records_have_the_fields_of_files_on_disk(pool):
    code = by_path(pool, 'code')
    assert set(code) == {'querystringish/lib/parse.js', 'retryish/src/retry.ts'}    # the blank file is dropped
    js = code['querystringish/lib/parse.js']
    assert (js['pkg'], js['kind'], js['lang'], js['text']) == ('querystringish', 'code', 'js', JS)
    assert {('parseQuery', 'function'), ('QueryCache', 'class')} <= {(name, kind) for name, kind, *_ in js['defs']}
    assert 'parse' in js['topics'] and 'query' in js['topics']
    name, kind, line, off = next(d for d in js['defs'] if d[0] == 'parseQuery')
    assert JS.splitlines()[line].startswith('export function parseQuery') and JS[off:].startswith('parseQuery')
    ts = code['retryish/src/retry.ts']
    assert ts['lang'] == 'ts' and {d[0] for d in ts['defs']} == {'RetryPolicy', 'defaultRetry'}
    man = by_path(pool, 'prose')['grep/grep.1.txt']
    assert (man['pkg'], man['kind'], man['text']) == ('doc:grep', 'prose', MAN)
    log = pool['logs'][0]
    assert (log['pkg'], log['kind'], log['text'], log['topics']) == ('log:nginx', 'log', LOG, [])
    for r in pool['code'] + pool['prose'] + pool['logs']:
        assert set(r) >= {'pkg', 'path', 'kind', 'lang', 'text', 'defs', 'topics'}


def test_pdf_joins_prose_and_keeps_its_pages(pool):
    pdf = by_path(pool, 'prose')['libtasn1-doc/libtasn1.pdf']
    assert (pdf['pkg'], pdf['kind'], pdf['doc_kind'], pdf['title']) == ('doc:libtasn1-doc', 'prose', 'pdf', 'GNU Libtasn1')
    pages = corpus.page_texts(pdf)
    assert [n for n, _ in pages] == [1, 2, 4]                     # real page numbers, gaps included
    assert [t.rstrip('\n') for _, t in pages] == [t.rstrip('\n') for t in PAGES]
    assert all(t.endswith('\n') for _, t in pages)                # page 2 had no final newline: one was added
    assert pdf['text'] == ''.join(t for _, t in pages)
    assert 'pdf' not in pool                                      # tasks.py knows code, prose and logs only


def test_split_by_package_like_files_on_disk(pool, export):
    split = pool['split']
    assert split['retryish'] == split['doc:libtasn1-doc'] == 'heldout'
    assert split['querystringish'] == split['doc:grep'] == split['log:nginx'] == 'train'
    # Without forcing, the hash rule decides, on the name without its doc:/log: prefix, as for disk files.
    plain = corpus.build_pool([], prose_roots=(), log_roots=(), procs=1, heldout_frac=0.5, exports=[export])
    for pkg, where in plain['split'].items():
        assert where == ('heldout' if corpus.is_heldout(pkg.split(':', 1)[-1], 0.5) else 'train')


def test_max_per_package_applies_to_exports(tmp_path):
    path = str(tmp_path / 'big.jsonl.gz')
    write_export(path, [dict(group='code', pkg='big', path=f'big/f{i}.js', kind='code',
                             parts=[dict(text=f'export const v{i} = {i};\n')]) for i in range(5)])
    pool = corpus.build_pool([], prose_roots=(), log_roots=(), procs=1, max_per_package=3, exports=[path])
    assert [r['path'] for r in pool['code']] == ['big/f0.js', 'big/f1.js', 'big/f2.js']


def test_exports_fold_in_after_files_on_disk_with_several_processes(tmp_path, export):
    src = tmp_path / 'pkgs' / 'mymod.py'
    src.parent.mkdir()
    src.write_text('def handle_request(req):\n    return req\n')
    pool = corpus.build_pool([(str(src.parent), 'site')], prose_roots=(), log_roots=(), procs=2, exports=[export, export])
    assert pool['code'][0]['path'] == 'mymod.py' and pool['code'][0]['pkg'] == 'mymod'
    assert len(pool['code']) == 1 + 2 * 2                          # two exports, each folded in


def test_sampler_uses_exported_code_pdf_and_logs(pool):
    ts = tasks.TaskSampler(pool, TOKENIZER, 64, seed=0, split='train', win=(16, 64))
    assert {ts.files[i]['path'] for i in ts.code} == {'querystringish/lib/parse.js'}
    assert {ts.files[i]['path'] for i in ts.prose} == {'grep/grep.1.txt'}
    assert ts.log_bodies                                          # real nginx lines between generated ones
    held = tasks.TaskSampler(pool, TOKENIZER, 64, seed=0, split='heldout', win=(16, 64))
    assert {held.files[i]['path'] for i in held.prose} == {'libtasn1-doc/libtasn1.pdf'}
    for fam in ('passkey', 'where_defined'):
        s = ts.sample(4, fam)
        assert all(pool['split'][p] == 'train' for p in s.meta['packages'])
    s = held.sample(4, 'passkey')
    assert set(s.meta['packages']) <= {'retryish', 'doc:libtasn1-doc'}
