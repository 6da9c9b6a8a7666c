"""Corpus pool and task sampler, on a tiny pool of stdlib files (no prose, no logs: both must be optional), and
the same pool with PDFs exported page by page (Python's own reference prose) for the document questions."""
import gzip
import json
import os
import re
import shutil
import sys
import sysconfig

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'train'))
import corpus  # noqa: E402
import tasks  # noqa: E402
from stream import SPECIAL  # noqa: E402

TOKENIZER = os.path.join(ROOT, 'models', 'ctx-small', 'tokenizer.model')
STDLIB = sysconfig.get_paths()['stdlib']
MODULES = ['json', 'http', 'email', 'logging', 'urllib', 'concurrent', 'argparse.py', 'textwrap.py', 'shutil.py',
           'csv.py', 'calendar.py', 'difflib.py', 'heapq.py', 'fractions.py', 'statistics.py', 'string.py',
           'gettext.py', 'netrc.py', 'shlex.py', 'sched.py', 'queue.py', 'tempfile.py', 'glob.py', 'fnmatch.py']
HELDOUT = ('json', 'http', 'csv', 'calendar', 'difflib', 'heapq', 'netrc', 'shlex', 'glob')
PDF_HELDOUT = ('manual-0', 'manual-1', 'manual-2', 'manual-3')
L = 128


@pytest.fixture(scope='module')
def stdlib_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('stdlib')
    for m in MODULES:
        src = os.path.join(STDLIB, m)
        if os.path.isdir(src):
            shutil.copytree(src, d / m, ignore=shutil.ignore_patterns('__pycache__'))
        elif os.path.exists(src):
            shutil.copy(src, d / m)
    return str(d)


@pytest.fixture(scope='module')
def pool(stdlib_dir):
    return corpus.build_pool([(stdlib_dir, 'stdlib')], prose_roots=(), log_roots=(), procs=1, heldout=HELDOUT)


@pytest.fixture(scope='module')
def pdf_pool(stdlib_dir, tmp_path_factory):
    """The stdlib pool and 12 PDFs of 6 pages each, as scripts/export-corpus.ts writes them."""
    topics = pytest.importorskip('pydoc_data.topics').topics
    names = sorted(topics)[:72]
    path = tmp_path_factory.mktemp('export') / 'corpus.jsonl.gz'
    with gzip.open(path, 'wt', encoding='utf-8') as f:
        for k in range(12):
            parts = [{'text': topics[n][:topics[n].rfind('\n', 0, 1500) + 1] or topics[n][:1500], 'page': p + 1}
                     for p, n in enumerate(names[6 * k:6 * k + 6])]
            f.write(json.dumps(dict(group='pdf', pkg=f'manual-{k}', path=f'manual-{k}.pdf', kind='pdf',
                                    title=f'Manual {k}', parts=parts)) + '\n')
    return corpus.build_pool([(stdlib_dir, 'stdlib')], prose_roots=(), log_roots=(), procs=1,
                             heldout=HELDOUT + PDF_HELDOUT, exports=[str(path)])


@pytest.fixture(scope='module')
def train(pool):
    return tasks.TaskSampler(pool, TOKENIZER, L, seed=0, split='train', win=(32, 256))


@pytest.fixture(scope='module')
def heldout(pool):
    return tasks.TaskSampler(pool, TOKENIZER, L, seed=0, split='heldout', win=(32, 256))


@pytest.fixture(scope='module')
def pdf_train(pdf_pool):
    return tasks.TaskSampler(pdf_pool, TOKENIZER, L, seed=0, split='train', win=(32, 256))


@pytest.fixture(scope='module')
def pdf_heldout(pdf_pool):
    return tasks.TaskSampler(pdf_pool, TOKENIZER, L, seed=0, split='heldout', win=(32, 256))


def test_pool_is_split_by_package(pool, train, heldout):
    split = pool['split']
    assert {split[r['pkg']] for r in pool['code']} == {'train', 'heldout'}
    assert all(split[p] == 'heldout' for p in HELDOUT if p in split)
    assert not set(train.packages) & set(heldout.packages)
    assert {r['pkg'] for r in pool['code'] if r['path'].startswith('json/')} == {'json'}
    assert corpus.package_of('node_modules/@scope/pkg/lib/a.js', 'other') == '@scope/pkg'
    assert corpus.package_of('a/node_modules/left-pad/index.js', 'other') == 'left-pad'
    for fam in ('passkey', 'where_defined', 'which_file_topic', 'which_page', 'verbatim'):    # logs: generated
        s = heldout.sample(4, fam)
        assert s.meta['packages'] and all(split[p] == 'heldout' for p in s.meta['packages'])


def test_definitions_and_topics():
    py = 'X_MAX = 3\nclass Foo(Base):\n    def bar(self):\n        pass\nasync def baz():\n    y = 2\n'
    defs = corpus.definitions(py, 'python')
    assert [(n, k, ln) for n, k, ln, _ in defs] == [('X_MAX', 'var', 0), ('Foo', 'class', 1), ('bar', 'method', 2),
                                                    ('baz', 'function', 4)]
    assert all(py[off:off + len(n)] == n for n, _, _, off in defs)
    js = 'export function parseUrl(s) {}\nclass Router {}\nconst maxSize = 4;\nexport interface Opts {}\n'
    assert [(n, k) for n, k, *_ in corpus.definitions(js, 'ts')] == [
        ('parseUrl', 'function'), ('Router', 'class'), ('maxSize', 'var'), ('Opts', 'interface')]
    topics = corpus.topic_words('"""Parse HTTP cookies."""\ndef parse_cookie_header(s):\n    return s\n', 'python',
                                [('parse_cookie_header', 'function', 1, 0)])
    assert topics[:2] == ['cookie', 'parse'] or set(topics[:3]) >= {'cookie', 'parse'}
    assert 'return' not in topics and 'self' not in topics


@pytest.mark.parametrize('family', tasks.FAMILIES)
def test_segments_shape_and_headers(train, family):
    for nseg in (1, 3):
        s = train.sample(nseg, family)
        assert s.segments.shape == (nseg, L) and s.segments.dtype == np.int32
        assert s.segments[0, 0] == SPECIAL['doc']
        assert all(seg[0] in (SPECIAL['doc'], SPECIAL['cont']) for seg in s.segments)
        assert s.question[0] == SPECIAL['q'] and s.question[-1] == SPECIAL['a']
        assert s.answer[-1] == SPECIAL['eos'] and train.tok.decode(s.answer[:-1]) == s.meta['answer']
        assert 0 <= s.meta['depth'] < 1


def test_where_defined_answer_is_in_the_stream(heldout):
    for _ in range(10):
        s = heldout.sample(4, 'where_defined')
        name, path = s.meta['name'], s.meta['answer']
        docs = tasks.decode_stream(heldout.tok, s.segments)
        target = [text for head, text in docs if head == f'code {path}']
        assert len(target) == 1, 'the answer path heads exactly one document'
        assert re.search(rf'(def|class)\s+{name}\b|^{name}\s*[:=]', target[0], re.M), 'the definition is in it'
        assert sum(name in head + text for head, text in docs) == 1, 'no other file mentions the name'
        assert name in s.meta['question']
        heads = [head.split(' ', 1)[1] for head, _ in docs if head.startswith(('code ', 'text ', 'pdf '))]
        paths = s.meta['paths']   # every document of the stream, as the product ranks them (the last header may be cut)
        assert len(paths) == len(heads) and paths[:-1] == heads[:-1] and paths[-1].startswith(heads[-1])


def test_max_defs_bounds_the_renamed_definitions(pool):
    one = tasks.TaskSampler(pool, TOKENIZER, L, seed=5, split='train', win=(32, 256), max_defs=1)
    for _ in range(5):
        st, wins, _ = one._code_stream(6)
        assert len(wins) <= 1 and len(st.paths) >= 2, 'one renamed definition among filler files'


def test_share_dir_puts_files_of_a_stream_into_shared_directories(pool):
    """share_dir 1: every code or text file after the first with a directory goes into one a file before it is in
    (or a subdirectory of it), so a repository stream's files share directories as a repository's do; share_dir 0:
    rarely (directories are drawn afresh per file)."""
    def shared_fraction(share_dir):
        ts = tasks.TaskSampler(pool, TOKENIZER, L, seed=3, split='train', win=(32, 256), share_dir=share_dir)
        hits = n = 0
        for _ in range(8):
            st, _, _ = ts._code_stream(8)
            dirs = [p.rsplit('/', 1)[0] for p in st.paths if '/' in p]
            n += len(dirs)
            hits += sum(d in dirs[:i] or any(d.startswith(e + '/') for e in dirs[:i]) for i, d in enumerate(dirs))
        assert n >= 8
        return hits / n
    assert shared_fraction(1.0) > 0.6 and shared_fraction(0.0) < 0.2


def test_share_dir_0_draws_the_paths_of_a_sampler_without_shared_directories(pool):
    """share_dir 0 takes no random draw, so a seed gives the streams it gave before shared directories existed:
    the six training-like streams of BENCHMARKS (stream_repo.py --share_dir 0) stay reproducible. With earlier
    paths or without, fresh_path draws the same paths."""
    def paths(used):
        ts = tasks.TaskSampler(pool, TOKENIZER, L, seed=5, split='train', share_dir=0.0)
        return [ts.fresh_path(kind, 'py', used=used) for kind in ('code', 'text') * 10]
    assert paths(('kernel/x.py', 'docs/guide/y.md')) == paths(())


def test_near_miss_lines_share_a_word_with_an_earlier_name_but_are_not_it(pool):
    """near 1: later code files begin by assigning a name that shares a word with a fresh name defined before them
    (and is not that name), so the fresh names themselves still occur in their own files only."""
    ts = tasks.TaskSampler(pool, TOKENIZER, L, seed=11, split='train', win=(32, 256), near=1.0)
    split = lambda n: set(corpus.split_words(n))
    found = 0
    for _ in range(6):
        st, wins, defined = ts._code_stream(8)
        for w, _, _ in wins:
            first = w.text.split('\n', 1)[0]
            m = re.match(r'(?:const )?([A-Za-z_][A-Za-z0-9_]*) = ', first)
            if m and m.group(1) not in defined and any(split(m.group(1)) & split(n) for n in defined):
                found += 1
        for name in defined:
            assert sum(name in t for t in st.texts) == 1 + defined[name][1], 'a fresh name only in its own file'
    assert found > 0


def test_keep_names_asks_definitions_under_their_own_names(pool):
    """keep_names 1: every asked definition keeps the name its pool file gives it (what `ctx eval repo` asks of a
    real repository), defined in the file that answers; keep_names 0 (the default) renames every one."""
    kept = tasks.TaskSampler(pool, TOKENIZER, L, seed=13, split='train', win=(32, 256), keep_names=1.0)
    asked = 0
    for _ in range(8):
        st, wins, defined = kept._code_stream(8)
        for w, path, ti in wins:
            if not w.name:
                continue
            assert w.name in {d[0] for d in kept.files[w.file]['defs']}, 'a name of the pool file, not a fresh one'
            assert w.text.split('\n')[w.def_line].find(w.name) >= 0, 'def_line is the definition\'s line'
            assert defined[w.name][0] == path
            asked += 1
    assert asked >= 8
    fresh = tasks.TaskSampler(pool, TOKENIZER, L, seed=13, split='train', win=(32, 256), keep_names=0.0)
    for _ in range(4):
        _, wins, _ = fresh._code_stream(8)
        assert all(w.name not in {d[0] for d in fresh.files[w.file]['defs']} for w, _, _ in wins if w.name)


def test_names_per_file_asks_several_names_of_one_file(pool):
    """names_per_file 3: a stream may ask several names of one file (a real repository asks many per file), each
    written in that file only, under its own name."""
    many = tasks.TaskSampler(pool, TOKENIZER, L, seed=5, split='train', win=(128, 512), ask_all=True, keep_names=1.0,
                             names_per_file=3)
    name_of = re.compile(r'(?:where is the \w+|which file has the \w+|definition of|which file defines|[Ww]here is|file is) '
                         r'(\S+?)(?: defined)?\?')
    shared = 0
    for _ in range(12):
        s = many.sample(8, 'where_defined')
        docs = dict(tasks.decode_stream(many.tok, s.segments))
        asked = [(s.question, s.answer)] + s.more
        assert len(asked) <= 4
        paths = [many.tok.decode(a[:-1]) for _, a in asked]
        shared += len(paths) - len(set(paths))
        names = [name_of.search(many.tok.decode(q)).group(1) for q, _ in asked]
        assert len(set(names)) == len(names), f'a name asked twice: {names}'
        for name, path in zip(names, paths):
            holders = [head for head, text in docs.items() if re.search(r'\b' + re.escape(name) + r'\b', text)]
            assert len(holders) == 1 and holders[0].endswith(path), (name, path, holders)
    assert shared > 0, 'some streams ask two names of one file'


def test_ask_all_asks_every_renamed_definition_of_the_stream(pool):
    every = tasks.TaskSampler(pool, TOKENIZER, L, seed=7, split='train', win=(32, 256), ask_all=True)
    more = 0
    for _ in range(10):
        s = every.sample(4, 'where_defined')
        docs = dict(tasks.decode_stream(every.tok, s.segments))
        asked = [(s.question, s.answer)] + s.more
        assert len(asked) <= 4 and len({tuple(a) for _, a in asked}) == len(asked), 'different files'
        for q, a in asked:
            path = every.tok.decode(a[:-1])
            assert any(head.endswith(path) for head in docs), path
        more += len(s.more)
    assert more > 0, 'some streams have more than one renamed definition to ask about'
    S, Q, Y, owner = every.batch(6, 4, families=['where_defined'])
    assert Q.shape[0] == len(owner) >= 6 and owner.tolist() == sorted(owner.tolist())
    assert set(owner.tolist()) == set(range(6)), 'every stream is asked at least once'


def test_which_file_topic_word_is_unique_to_the_answer(heldout):
    for _ in range(10):
        s = heldout.sample(4, 'which_file_topic')
        word, path = s.meta['word'], s.meta['answer']
        docs = tasks.decode_stream(heldout.tok, s.segments)
        hits = [head for head, text in docs if word in (head + '\n' + text).lower()]
        assert hits == [f'code {path}']
        assert s.meta['topic'] in s.meta['question']


def test_passkey_is_in_the_stream_at_the_asked_depth(train):
    for depth in ('start', 'middle', 'end', 0.3):
        s = train.sample(6, 'passkey', depth=depth)
        text = ''.join(t for _, t in tasks.decode_stream(train.tok, s.segments))   # a header may split it
        assert f'The pass key is {s.meta["answer"]}.' in text
        want = {'start': 0.0, 'middle': 0.5, 'end': 0.95, 0.3: 0.3}[depth]
        assert abs(s.meta['depth'] - want) < 0.12


def test_log_first_answer_is_the_first_occurrence(train):
    for ask in ('when', 'service', 'when', 'service'):
        s = train.sample(4, 'log_first', ask=ask)
        m = s.meta
        lines = [x for _, text in tasks.decode_stream(train.tok, s.segments) for x in text.splitlines()]
        first = next(x for x in lines if m['event'] in x)
        assert m['time'] in first and m['service'] in first
        assert m['answer'] == (m['time'] if ask == 'when' else m['service'])
        assert all(m['service'] in x for x in lines if m['event'] in x), 'only one service logs the event'


def _page_texts(tok, segments):
    """{(document index, page): text} of a stream; page numbers read from page markers and continuation headers
    (a page that begins a segment is named only in its continuation header)."""
    nl, chunks, doc, page, state, num = tok.nl[0], {}, -1, None, 'text', []
    for seg in segments.tolist():
        if seg[0] == SPECIAL['cont']:
            n = seg.index(nl) + 1
            if SPECIAL['page'] in seg[:n]:
                page = int(tok.decode(seg[seg.index(SPECIAL['page']) + 1:n - 1]))
            seg = seg[n:]
        for t in seg:
            if state == 'head':
                state = 'text' if t == nl else state
            elif state == 'page':
                if t == nl:
                    page, state = int(tok.decode(num)), 'text'
                else:
                    num.append(t)
            elif t == SPECIAL['doc']:
                doc, page, state = doc + 1, None, 'head'
            elif t == SPECIAL['page']:
                state, num = 'page', []
            else:
                chunks.setdefault((doc, page), []).append(t)
    return {k: tok.decode(v) for k, v in chunks.items()}


def test_which_page_answer_is_the_page_of_the_phrase(train, pdf_train):
    near = 0
    for ts in (train, pdf_train):
        for depth in ('start', 'middle', 'end', None, None):
            s = ts.sample(4, 'which_page', depth=depth)
            x, pages = s.meta['phrase'].lower(), _page_texts(ts.tok, s.segments)
            hits = [k for k, text in pages.items() if x in text.lower()]
            assert len(hits) == 1 and sum(text.lower().count(x) for text in pages.values()) == 1
            assert hits[0][1] == int(s.meta['answer']), 'the answer is the number of the page that mentions it'
            heads = [head for head, _ in tasks.decode_stream(ts.tok, s.segments)]
            assert heads[hits[0][0]] == f'pdf {s.meta["path"]}'
            assert s.meta['phrase'] in s.meta['question']
            near += sum(y.lower() in text.lower() for y in s.meta['near'] for text in pages.values())
    assert near > 0, 'near-miss phrases reach the stream'


def test_pdf_hosts_keep_the_real_page_breaks(pdf_train):
    ts = pdf_train
    i = ts.prose[0]
    ids = ts.lines(i)[0]
    w = ts.window(i, len(ids))                      # the whole document
    starts = np.concatenate([[0], np.flatnonzero(w.ids[:-1] == ts.NL) + 1])
    pages = ts._pages(w, starts)
    offs = sorted(pages) + [len(w.ids)]
    assert [ts.tok.decode(w.ids[a:b]) for a, b in zip(offs, offs[1:])] == [t for _, t in corpus.page_texts(ts.files[i])]
    nums = [pages[a] for a in offs[:-1]]
    assert nums == list(range(nums[0], nums[0] + len(nums)))


def test_verbatim_answer_is_quoted_from_the_stream(train, pdf_train):
    for ts in (train, pdf_train):
        for ask in ('after', 'mentions', 'after', 'mentions', 'after'):
            s = ts.sample(4, 'verbatim', ask=ask)
            m, docs = s.meta, tasks.decode_stream(ts.tok, s.segments)
            assert len(ts.tok.encode(m['answer'])) <= 14, 'about 12: the shortest of up to 10 drawn notes'
            assert m['phrase'] in m['answer']
            assert sum(text.count(m['answer']) for _, text in docs) == 1
            if ask == 'after':
                quoted = tasks.js_collapse(m['prev'])
                assert f'"{quoted}"' in m['question']
                assert sum((head + '\n' + text).count(quoted) for head, text in docs) == 1
                assert sum(text.count(f'{m["prev"]}\n{m["answer"]}\n') for _, text in docs) == 1, 'the line after it'
            else:
                assert m['phrase'] in m['question']
                assert sum((head + '\n' + text).lower().count(m['phrase'].lower()) for head, text in docs) == 1


_SERVICE = {'iso': r'^\S+ \w+ +\[([^\]]+)\] ', 'py': r'^\S+ \S+ \w+ ([^:\s]+): ',
            'syslog': r'^\w+ +\d+ \S+ \S+ ([^\[\s]+)\[\d+\]: ', 'clf': r'^\[[^\]]*\] ([^.\s]+)\.\w+: '}


def test_log_service_event_is_logged_once_among_near_misses(train):
    near = 0
    for _ in range(8):
        s = train.sample(4, 'log_service')
        m = s.meta
        lines = [x for _, text in tasks.decode_stream(train.tok, s.segments) for x in text.splitlines()]
        service = lambda line: re.match(_SERVICE[m['format']], line).group(1)
        hits = [x for x in lines if m['event'] in x]
        assert len(hits) == 1 and m['time'] in hits[0] and service(hits[0]) == m['service'] == m['answer']
        parts = tasks._FIELD.split(m['template'])
        same = re.compile(''.join(re.escape(p) if k % 2 == 0 else '.+?' for k, p in enumerate(parts)))
        misses = [x for x in lines if same.search(x) and m['event'] not in x]
        assert all(service(x) != m['service'] for x in misses), 'near misses come from other services'
        near += len(misses)
    assert near > 0


@pytest.mark.parametrize('family', ('which_page', 'verbatim', 'log_service'))
def test_new_families_follow_the_asked_depth(pdf_train, family):
    for depth in ('start', 'middle', 'end', 0.3):
        s = pdf_train.sample(6, family, depth=depth)
        want = {'start': 0.0, 'middle': 0.5, 'end': 0.95, 0.3: 0.3}[depth]
        assert abs(s.meta['depth'] - want) < 0.12


@pytest.mark.parametrize('family', ('which_page', 'verbatim'))
def test_document_questions_use_the_split_of_their_pdfs(pdf_pool, pdf_train, pdf_heldout, family):
    split = pdf_pool['split']
    for ts, want in ((pdf_train, 'train'), (pdf_heldout, 'heldout')):
        pkgs = set()
        for _ in range(6):
            s = ts.sample(3, family)
            assert all(split[p] == want for p in s.meta['packages'])
            pkgs |= set(s.meta['packages'])
        assert any(p.startswith('doc:manual-') for p in pkgs), 'the hosts are the PDFs'
    assert {p.split(':')[1] for p in pdf_heldout.packages if p.startswith('doc:')} >= set(PDF_HELDOUT)


@pytest.mark.parametrize('family', ('which_page', 'verbatim', 'log_service'))
def test_new_families_shape_with_pdfs(pdf_train, family):
    for nseg in (1, 2, 5):
        s = pdf_train.sample(nseg, family)
        assert s.segments.shape == (nseg, L) and s.segments[0, 0] == SPECIAL['doc']
        assert all(seg[0] in (SPECIAL['doc'], SPECIAL['cont']) for seg in s.segments)
        assert pdf_train.tok.decode(s.answer[:-1]) == s.meta['answer']


@pytest.mark.parametrize('family', tasks.FAMILIES)
def test_answers_are_randomised(train, family):
    answers = [train.sample(2, family).meta['answer'] for _ in range(12)]
    assert len(set(answers)) >= 10


def test_deterministic_given_the_seed(pool):
    a = tasks.TaskSampler(pool, TOKENIZER, L, seed=7, win=(32, 256))
    b = tasks.TaskSampler(pool, TOKENIZER, L, seed=7, win=(32, 256))
    c = tasks.TaskSampler(pool, TOKENIZER, L, seed=8, win=(32, 256))
    for fam in tasks.FAMILIES:
        x, y, z = a.sample(3, fam), b.sample(3, fam), c.sample(3, fam)
        assert np.array_equal(x.segments, y.segments) and x.question == y.question and x.answer == y.answer
        assert not np.array_equal(x.segments, z.segments)


def test_windows_equal_their_text(train):
    for _ in range(20):
        i = train.rng.choice(train.with_defs)
        d = train.rng.choice(train.eligible[i])
        w = train.window(i, 100, around=d[2])
        assert train.tok.decode(w.ids) == w.text and w.l0 <= d[2] < w.l1
        r = train.rename(w, d)
        assert train.tok.decode(r.ids) == r.text and d[0] not in re.findall(r'\w+', r.text.splitlines()[d[2] - w.l0])


def test_def_lead_keeps_definitions_near_their_files_start(pool, train):
    near = tasks.TaskSampler(pool, TOKENIZER, L, seed=4, split='train', win=(32, 256), def_lead=0)
    before = 0
    for _ in range(20):
        i = near.rng.choice(near.with_defs)
        d = near.rng.choice(near.eligible[i])
        assert near.window(i, 200, around=d[2]).l0 == d[2], 'no lead allowed: the window starts at the definition'
        before += train.window(i, 200, around=d[2]).l0 < d[2]
    assert before > 0, 'without def_lead, windows also start before the definition'


def test_batch_targets_align_with_answers(train):
    S, Q, Y, owner = train.batch(4, 2, qlen=64)
    assert S.shape == (4, 2, L) and Q.shape == (4, 64) and Y.shape == (4, 64) and owner.tolist() == [0, 1, 2, 3]
    for q, y in zip(Q.tolist(), Y.tolist()):
        t = [i for i, v in enumerate(y) if v != -100]
        assert t == list(range(t[0], t[-1] + 1))
        assert q[t[0]] == SPECIAL['a'], 'the first answer token is predicted at <a>'
        assert all(y[i] == q[i + 1] for i in t)
        assert y[t[-1]] == SPECIAL['eos'] and q[t[-1] + 2:] == [0] * (64 - t[-1] - 2)


def test_batches_and_eval_set(train, heldout):
    import multiprocessing as mp
    import torch
    nseg = mp.Value('i', 1)
    it = tasks.make_batches(train, 2, nseg, families={'passkey': 1, 'where_defined': 2})
    assert next(it)[0].shape == (2, 1, L)
    nseg.value = 2
    assert next(it)[0].shape == (2, 2, L)
    dl = torch.utils.data.DataLoader(tasks.batch_dataset(train, 2, 1, ['passkey'], seed=3), batch_size=None)
    assert next(iter(dl))[0].shape == (2, 1, L)
    state = heldout.rng.getstate()
    e1, e2 = heldout.eval_set(3, 2, 'where_defined', seed=5), heldout.eval_set(3, 2, 'where_defined', seed=5)
    assert [s.meta['answer'] for s in e1] == [s.meta['answer'] for s in e2]
    assert heldout.rng.getstate() == state


def test_stream_repo_writes_every_document_of_the_stream(pool, tmp_path):
    """train/stream_repo.py: a where_defined stream as a directory for `ctx eval repo`; the asked name is defined
    in the answer's file and occurs in no other."""
    import stream_repo
    s = stream_repo.KeepStream(pool, TOKENIZER, L, seed=3, split='heldout', win=(32, 256))
    smp = s.sample(8, 'where_defined')
    stream_repo.write_repo(s.last, str(tmp_path / 'r'))
    written = sorted(str(p.relative_to(tmp_path / 'r')) for p in (tmp_path / 'r').rglob('*') if p.is_file())
    assert written == sorted(smp.meta['paths']) and len(written) == smp.meta['docs']
    name = smp.meta['name']
    holding = [p for p in written if name in (tmp_path / 'r' / p).read_text(encoding='utf-8')]
    assert holding == [smp.meta['answer']]


def test_stream_repo_split_scores_fresh_and_kept_names_apart(pool, tmp_path):
    """stream_repo.py --split: the stream's fresh names are recorded, and an eval's identifier questions are counted
    under fresh or kept by the name they ask; topic questions under neither."""
    import stream_repo
    s = stream_repo.KeepStream(pool, TOKENIZER, L, seed=3, split='heldout', win=(32, 256))
    smp = s.sample(8, 'where_defined')
    assert smp.meta['name'] in s.fresh
    rows = [{'kind': 'identifier', 'question': f'where is {smp.meta["name"]} defined?', 'top1': True, 'top3': True},
            {'kind': 'identifier', 'question': 'where is parse_args defined?', 'top1': False, 'top3': True},
            {'kind': 'topic', 'question': 'which file handles json?', 'top1': True, 'top3': True}]
    (tmp_path / 'e.json').write_text(json.dumps({'results': rows}))
    score = {'fresh': [0, 0, 0], 'kept': [0, 0, 0]}
    stream_repo.split_scores(str(tmp_path / 'e.json'), set(s.fresh), score)
    assert score == {'fresh': [1, 1, 1], 'kept': [0, 1, 1]}


def test_mentions_import_or_call_a_name_after_its_definition(pool):
    """mentions=1: later code files import or call the renamed names (as a repository's files do); the answer is
    still the one file that defines the asked name, and every other occurrence is a mention line after it."""
    s = tasks.TaskSampler(pool, TOKENIZER, L, seed=7, split='heldout', win=(32, 256), mentions=1.0)
    mentioned = 0
    for _ in range(12):
        smp = s.sample(8, 'where_defined')
        name, path = smp.meta['name'], smp.meta['answer']
        docs = tasks.decode_stream(s.tok, smp.segments)
        heads = [head.split(' ', 1)[1] for head, _ in docs]
        at = [i for i, (head, text) in enumerate(docs) if name in text]
        assert heads[at[0]] == path and re.search(rf'(def|class|function)\s+{name}\b|^{name}\s*[:=]', docs[at[0]][1], re.M)
        others = [docs[i][1] for i in at[1:] if heads[i] != path]
        assert sum(t.count(name) for t in others) == smp.meta['mentions']
        for t in others:
            line = next(x for x in t.split('\n') if name in x)
            assert re.fullmatch(rf"from \.\w+ import {name}|\w+ = {name}\(\w+\)|import \{{ {name} \}} from '\./[\w-]+';|"
                                rf"const \w+ = {name}\(\w+\);|{name}\(\w+\);", line), line
        mentioned += smp.meta['mentions'] > 0
    assert mentioned >= 4, 'most asked names are mentioned elsewhere'


def test_repo_defined_streams_one_packages_whole_files_and_asks_names_defined_once(pool):
    """Every document before the filler is a whole file of the asked package, in path order (from some file on,
    wrapping), under a fresh path; each asked name is defined in its answer's file and in no other document."""
    s_ = tasks.TaskSampler(pool, TOKENIZER, L, seed=3, split='heldout', ask_all=True, names_per_file=2)
    code = pool['code']
    for _ in range(6):
        s = s_.sample(100, 'repo_defined')
        docs = tasks.decode_stream(s_.tok, s.segments)
        texts = {head.split(' ', 1)[1]: text for head, text in docs}
        pkgs, seen = set(), []
        for head, text in docs:
            recs = [r for r in code if r['text'] == text or (head == docs[-1][0] and r['text'].startswith(text))]
            if not recs:
                break    # the filler from here on
            pkgs.add(recs[0]['pkg'])
            seen.append(recs[0]['path'])
            assert head.split(' ', 1)[1] != recs[0]['path'], 'a fresh path'
        assert len(pkgs) == 1 and seen, 'the stream opens with whole files of one package'
        order = sorted(r['path'] for r in pool['code'] if r['pkg'] in pkgs)
        k = order.index(seen[0])
        assert seen == (order[k:] + order[:k])[:len(seen)]
        questions = [s.question] + [q for q, _ in s.more]
        answers = [s.meta['answer']] + [s_.tok.decode(a[:-1]) for _, a in s.more]
        assert len(questions) <= 4 and all(answers.count(a) <= 2 for a in answers)
        for q, path in zip(questions, answers):
            name = re.sub(r'( defined)?\?$', '', s_.tok.decode(q[1:-1]).strip()).split()[-1]
            defined = [p for p, t in texts.items() if re.search(rf'(def|class)\s+{name}\b|^\s*{name}\s*[:=]', t, re.M)]
            assert defined == [path], (name, defined, path)


@pytest.mark.parametrize('family', ['where_defined', 'repo_defined'])
def test_absent_asks_names_no_file_defines_and_answers_none(pool, family):
    """With absent, some questions ask a name that no file of the stream defines, answered 'none' (in repo_defined
    some of them names the stream's files use); the others are answered by a path of the stream. Without it (the
    default) no answer is 'none'."""
    kw = dict(ask_all=True, names_per_file=2, keep_names=0.5)
    s_ = tasks.TaskSampler(pool, TOKENIZER, L, seed=4, split='train', absent=0.5, **kw)
    nones = paths = used = 0
    for _ in range(12):
        s = s_.sample(8, family)
        text = '\n'.join(t for _, t in tasks.decode_stream(s_.tok, s.segments))
        for q, a in [(s.question, s.answer)] + s.more:
            answer = s_.tok.decode(a[:-1])
            if answer == tasks.NONE_ANSWER:
                name = re.sub(r'( defined)?\?$', '', s_.tok.decode(q[1:-1]).strip()).split()[-1]
                assert not tasks._defines(text, name), name
                nones += 1
                used += bool(tasks._find_word(text, name))
            else:
                assert answer in s.meta['paths']
                paths += 1
    assert nones >= 6 and paths >= 6, (nones, paths)
    assert (used > 0) == (family == 'repo_defined'), used
    plain = tasks.TaskSampler(pool, TOKENIZER, L, seed=4, split='train', **kw)
    for _ in range(6):
        s = plain.sample(8, family)
        assert all(plain.tok.decode(a[:-1]) != tasks.NONE_ANSWER for _, a in [(s.question, s.answer)] + s.more)


def test_defines_tells_a_definition_from_a_use():
    assert tasks._defines('x = 1\ndef load_all(a):\n    pass', 'load_all')
    assert tasks._defines('class Foo {\n  render(x) {\n  }\n}', 'render')
    assert tasks._defines('MAX_SIZE = 10', 'MAX_SIZE')
    assert not tasks._defines('from .base import load_all\ny = load_all(x)', 'load_all')
    assert not tasks._defines('return render(x) + other.render', 'render')
