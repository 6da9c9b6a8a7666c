"""Source pools for training and held-out evaluation, split by source package.

A pool holds real files found offline on the machine:
  code   Python's standard library and site-/dist-packages of the running interpreter (plus --extra_root dirs,
         e.g. node_modules for JS/TS); per file: definitions and topic words
  prose  README/changelog/NEWS text under /usr/share/doc
  logs   the machine's own logs under /var/log (few or none on the GPU machine: tasks.py generates lines then)
--export FILE folds in documents exported elsewhere by scripts/export-corpus.ts (read by the product's own
ingestors: npm packages, man pages, PDFs page by page, real logs): code joins code, prose and PDFs join prose
(a PDF keeps `pages`: [(page number, start, end)] character offsets into its text), logs join logs.
Held-out is chosen per package (a hash of its name, ~15%), never per file: answers that occur in training are
memorised by the weights, so held-out accuracy is only meaningful on packages never trained on.

  python3 train/corpus.py --out /tmp/pool.pkl.gz [--extra_root node_modules] [--no_site] [--export corpus.jsonl.gz]

A second run with the same arguments loads the cached file instead of walking the disk again.
"""
import argparse
import bisect
import collections
import gzip
import hashlib
import json
import lzma
import multiprocessing as mp
import os
import pickle
import re
import site
import sys
import sysconfig
import time

VERSION = 1
MAX_BYTES = 200_000
LANG = {'.py': 'python', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'js', '.ts': 'ts', '.tsx': 'ts', '.mts': 'ts',
        '.cts': 'ts', '.c': 'c', '.h': 'c', '.cc': 'cpp', '.cpp': 'cpp', '.hpp': 'cpp', '.go': 'go', '.rs': 'rust',
        '.java': 'java', '.sh': 'shell', '.rb': 'ruby', '.pl': 'perl', '.lua': 'lua'}
SKIP_DIRS = {'__pycache__', '.git', '.hg', '.svn', '.tox', '.mypy_cache'}
DOC_NAMES = re.compile(r'(README|NEWS|CHANGES|changelog|HISTORY|TODO|FAQ|USAGE|INSTALL|AUTHORS|THANKS|BUGS)'
                       r'[^/]*$|\.(txt|md|rst)(\.gz)?$', re.I)

STOPWORDS = set('''
a about above after again against all also although always among an and another any are around as at away
back be because been before being below between both but by can cannot could did do does doing done down
during each either else enough etc even ever every few for from further get gets given got had has have
having he her here hers him his how however if in into is it its itself just last least less let like
made make makes many may maybe me might more most much must my need needs never new next no nor not now
of off often on once one only or other others otherwise our out over own per rather really same see seen
several shall she should since so some such than that the their them then there these they this those
though through thus to too under until up upon us use used uses using very via was we well were what
whatever when where whether which while who whom whose why will with within without would yet you your
self cls def class return returns import from none true false null undefined elif pass raise try except
finally lambda yield async await global nonlocal assert break continue del print function var let const
new this typeof instanceof void delete throw catch switch case default export require module exports
extends super static public private protected interface type enum implements package args kwargs arg
param params value values data name names item items obj object objects list dict tuple str string int
float bool len key keys result results index idx tmp val func fn cb callback error err argument arguments
number num count size init main test tests todo note see example examples http https www com org
license copyright version file files line lines text true false todo fixme xxx else endif ifdef define
include struct unsigned char long short double sizeof return_value method methods attribute attributes
instance instances first second third used call calls called option options default defaults info
want wants like likes know take takes give gives keep keeps think look looks come comes going goes still
good better best sure thing things something nothing anything everything way ways right left just only
work works working done said says case cases part parts kind kinds point points place set sets put puts
'''.split())

PY_DEF = re.compile(r'^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(|^([ \t]*)class[ \t]+([A-Za-z_]\w*)'
                    r'|^([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)', re.M)
JS_DEF = re.compile(r'^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:declare[ \t]+)?(?:abstract[ \t]+)?'
                    r'(?:(?:async[ \t]+)?function\*?[ \t]*([A-Za-z_$][\w$]*)|class[ \t]+([A-Za-z_$][\w$]*)'
                    r'|(?:const|let|var)[ \t]+([A-Za-z_$][\w$]*)[ \t]*(?::[^=\n]*)?=|interface[ \t]+([A-Za-z_$][\w$]*)'
                    r'|type[ \t]+([A-Za-z_$][\w$]*)[ \t]*(?:<[^=\n]*>)?[ \t]*=|enum[ \t]+([A-Za-z_$][\w$]*))', re.M)
JS_KINDS = ('function', 'class', 'var', 'interface', 'type', 'enum')
PY_DOC = re.compile(r'\A(?:[ \t]*(?:#[^\n]*)?\n)*[ \t]*[rRuU]?("""|\'\'\')(.*?)\1', re.S)
LEAD_COMMENT = re.compile(r'\A(?:#![^\n]*\n)?\s*(/\*.*?\*/|(?:[ \t]*(?://|#)[^\n]*\n)+)', re.S)
IDENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
WORD = re.compile(r'[A-Z]?[a-z]+|[A-Z]+(?![a-z])')


def split_words(s):
    """'parseHTTPHeader_value' -> ['parse', 'http', 'header', 'value']"""
    return [w.lower() for w in WORD.findall(s)]


def definitions(text, lang):
    """[(name, kind, line, char offset of the name)], kinds: function, method, class, var (+ TS kinds)."""
    out = []
    line_at = _line_index(text)
    if lang == 'python':
        for m in PY_DEF.finditer(text):
            if m.group(2):
                kind, g = ('method' if m.group(1) else 'function'), 2
            elif m.group(4):
                kind, g = 'class', 4
            else:
                kind, g = 'var', 5
            out.append((m.group(g), kind, line_at(m.start(g)), m.start(g)))
    elif lang in ('js', 'ts'):
        for m in JS_DEF.finditer(text):
            g = next(i for i in range(1, 7) if m.group(i))
            out.append((m.group(g), JS_KINDS[g - 1], line_at(m.start(g)), m.start(g)))
    return out


def _line_index(text):
    starts = [0] + [m.end() for m in re.finditer('\n', text)]
    return lambda off: bisect.bisect_right(starts, off) - 1


def topic_words(text, lang, defs, limit=24):
    """Words that say what a file is about: its docstring / leading comment weigh most, then the names it
    defines, then all its identifiers. Stopwords and very short or long words are dropped."""
    head = text[:8000]
    m = PY_DOC.match(head) if lang == 'python' else None
    m = m or LEAD_COMMENT.match(head)
    doc = (m.group(2) if m and m.re is PY_DOC else m.group(1) if m else '') or ''
    score = collections.Counter()
    for w in split_words(doc):
        score[w] += 3
    for name, *_ in defs:
        for w in split_words(name):
            score[w] += 2
    for ident, n in collections.Counter(IDENT.findall(text)).items():
        for w in split_words(ident):
            score[w] += min(n, 3) * 0.25
    words = [w for w, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))
             if 4 <= len(w) <= 16 and w not in STOPWORDS]
    return words[:limit]


def read_text(path, truncate=False):
    """UTF-8 text of a file (.gz/.xz decompressed), or None: too large, binary, not UTF-8, unreadable.
    truncate: keep the first MAX_BYTES up to a line end instead (logs and prose are read line by line)."""
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rb') as f:
                b = f.read(MAX_BYTES + 1)
        elif path.endswith('.xz'):
            with lzma.open(path, 'rb') as f:
                b = f.read(MAX_BYTES + 1)
        else:
            if os.path.getsize(path) > MAX_BYTES and not truncate:
                return None
            with open(path, 'rb') as f:
                b = f.read(MAX_BYTES + 1)
        if len(b) > MAX_BYTES:
            if not truncate:
                return None
            b = b[:b.rfind(b'\n', 0, MAX_BYTES) + 1]
        if b'\0' in b:
            return None
        text = b.decode('utf-8')
    except (OSError, UnicodeDecodeError, EOFError, lzma.LZMAError):
        return None
    if not text.strip() or (not truncate and len(text) / (text.count('\n') + 1) > 200):
        return None                                     # code: minified / generated / data blobs
    return text


def package_of(rel, scheme):
    """The unit of the train/held-out split for a file at `rel` (relative to its root)."""
    parts = rel.split('/')
    if 'node_modules' in parts:                       # node: the innermost package (scoped: @scope/name)
        i = len(parts) - 1 - parts[::-1].index('node_modules')
        rest = parts[i + 1:]
        return '/'.join(rest[:2]) if rest and rest[0].startswith('@') else rest[0]
    if scheme in ('stdlib', 'site') and len(parts) == 1:
        return parts[0].split('.')[0]                 # a top-level module: json.py -> json
    return '/'.join(parts[:2]) if parts[0].startswith('@') and len(parts) > 2 else parts[0]


def is_heldout(pkg, frac):
    return int(hashlib.sha1(pkg.encode()).hexdigest()[:8], 16) / 2**32 < frac


def walk(root, scheme, want):
    """Yields (abs path, rel path) of wanted files under root."""
    for dp, dn, fn in os.walk(root):
        rel_dir = os.path.relpath(dp, root)
        dn[:] = sorted(d for d in dn if d not in SKIP_DIRS and not d.endswith(('.dist-info', '.egg-info'))
                       and not (scheme == 'stdlib' and d in ('site-packages', 'dist-packages')))
        for f in sorted(fn):
            p = os.path.join(dp, f)
            rel = f if rel_dir == '.' else f'{rel_dir}/{f}'.replace(os.sep, '/')
            if want(f, rel) and os.path.isfile(p):
                yield p, rel


def _record(job):
    path, rel, scheme, kind = job
    text = read_text(path, truncate=kind != 'code')
    if text is None:
        return None
    lang = LANG.get(os.path.splitext(path)[1], 'text') if kind == 'code' else kind
    defs = definitions(text, lang)
    rec = dict(pkg=package_of(rel, scheme), path=rel, kind=kind, lang=lang, text=text, defs=defs,
               topics=topic_words(text, lang, defs) if kind != 'log' else [])
    if kind == 'prose':
        rec['pkg'] = 'doc:' + rec['pkg']
    elif kind == 'log':
        rec['pkg'] = 'log:' + rel.split('/')[-1].split('.')[0]
    return rec


def _export_record(doc):
    """A record of one exported document (see scripts/export-corpus.ts), with the fields _record gives a file.
    Package names get the same prefixes as on-disk prose and logs, so a package's split is the same wherever
    its text comes from."""
    group, pkg, path = doc['group'], doc['pkg'], doc['path']
    if group == 'pdf':
        text, pages = _join_pages(doc['parts'])
    else:
        text, pages = ''.join(p['text'] for p in doc['parts']), None
    if not text.strip():
        return None
    kind = {'code': 'code', 'prose': 'prose', 'pdf': 'prose', 'logs': 'log'}[group]
    lang = LANG.get(os.path.splitext(path)[1], 'text') if kind == 'code' else kind
    defs = definitions(text, lang)
    rec = dict(pkg={'prose': 'doc:', 'log': 'log:'}.get(kind, '') + pkg, path=path, kind=kind, lang=lang, text=text,
               defs=defs, topics=topic_words(text, lang, defs) if kind != 'log' else [])
    if pages is not None:
        rec['pages'], rec['doc_kind'] = pages, 'pdf'
        if doc.get('title'):
            rec['title'] = doc['title']
    return rec


def _join_pages(parts):
    """One text of a PDF's pages, each ending with a newline (a window never glues two pages' lines), and
    [(page, start, end)] offsets: rec['text'][start:end] is that page's text."""
    text, pages = [], []
    off = 0
    for p in parts:
        t = p['text'] if p['text'].endswith('\n') else p['text'] + '\n'
        pages.append((p.get('page', len(pages) + 1), off, off + len(t)))
        text.append(t)
        off += len(t)
    return ''.join(text), pages


def page_texts(rec):
    """[(page number, text)] of a PDF record."""
    return [(n, rec['text'][a:b]) for n, a, b in rec.get('pages', ())]


def read_export(path):
    """The documents of an export file (gzip JSONL), in order."""
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def default_code_roots():
    roots = [(sysconfig.get_paths()['stdlib'], 'stdlib')]
    sites = list(site.getsitepackages()) + [sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']]
    if os.path.isdir('/usr/lib/python3/dist-packages'):
        sites.append('/usr/lib/python3/dist-packages')
    roots += [(d, 'site') for d in sites]
    seen, out = set(), []
    for d, s in roots:
        r = os.path.realpath(d)
        if os.path.isdir(r) and r not in seen:
            seen.add(r)
            out.append((r, s))
    return out


def build_pool(code_roots, prose_roots=('/usr/share/doc',), log_roots=('/var/log',), heldout_frac=0.15,
               procs=None, max_per_package=3000, heldout=(), exports=()):
    """code_roots: [(dir, scheme)] with scheme 'stdlib' | 'site' | 'other'. heldout: package names forced
    into held-out (tests). exports: files written by scripts/export-corpus.ts, folded in after the files on
    disk. Returns the pool dict (see module docstring)."""
    jobs = []
    for root, scheme in code_roots:
        jobs += [(p, rel, scheme, 'code') for p, rel in walk(root, scheme, lambda f, rel: os.path.splitext(f)[1] in LANG)]
    for root in prose_roots:
        if os.path.isdir(root):
            jobs += [(p, rel, 'doc', 'prose') for p, rel in walk(root, 'doc', lambda f, rel: DOC_NAMES.search(f)
                                                                    and 'copyright' not in f)]
    for root in log_roots:
        if os.path.isdir(root):
            jobs += [(p, rel, 'log', 'log') for p, rel in walk(root, 'log', lambda f, rel: re.search(r'\.log(\.\d+)?(\.gz|\.xz)?$', f))]
    procs = procs or min(16, os.cpu_count() or 1)
    docs = [d for path in exports for d in read_export(path)]
    if procs > 1:
        with mp.Pool(procs) as pool:
            recs = pool.map(_record, jobs, chunksize=64) + pool.map(_export_record, docs, chunksize=16)
    else:
        recs = list(map(_record, jobs)) + list(map(_export_record, docs))
    per_pkg = collections.Counter()
    out = dict(version=VERSION, heldout_frac=heldout_frac, code=[], prose=[], logs=[], split={})
    for r in recs:
        if r is None:
            continue
        per_pkg[r['pkg']] += 1
        if per_pkg[r['pkg']] > max_per_package:     # one huge package (torch) must not be the whole pool
            continue
        out[{'code': 'code', 'prose': 'prose', 'log': 'logs'}[r['kind']]].append(r)
        name = r['pkg'].split(':', 1)[-1]
        out['split'][r['pkg']] = 'heldout' if (name in heldout or is_heldout(name, heldout_frac)) else 'train'
    return out


def save_pool(pool, path):
    tmp = path + '.tmp'
    with gzip.open(tmp, 'wb', compresslevel=3) as f:
        pickle.dump(pool, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load_pool(path):
    with gzip.open(path, 'rb') as f:
        pool = pickle.load(f)
    assert pool.get('version') == VERSION, f'{path}: pool version {pool.get("version")} != {VERSION}'
    return pool


def counts(pool):
    """{(group, split): (files, packages, MB)}"""
    out = {}
    for group in ('code', 'prose', 'logs'):
        for split in ('train', 'heldout'):
            rs = [r for r in pool[group] if pool['split'][r['pkg']] == split]
            out[group, split] = (len(rs), len({r['pkg'] for r in rs}), sum(len(r['text']) for r in rs) / 1e6)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--roots', nargs='*', help='code roots instead of stdlib + site-packages (scheme "site")')
    ap.add_argument('--extra_root', action='append', default=[], help='more code roots, e.g. node_modules')
    ap.add_argument('--no_site', action='store_true', help='stdlib only (no site-/dist-packages)')
    ap.add_argument('--prose_root', action='append', default=None)
    ap.add_argument('--log_root', action='append', default=None)
    ap.add_argument('--heldout_frac', type=float, default=0.15)
    ap.add_argument('--max_per_package', type=int, default=3000)
    ap.add_argument('--procs', type=int, default=0)
    ap.add_argument('--export', action='append', default=[], help='a corpus export (scripts/export-corpus.ts)')
    ap.add_argument('--rebuild', action='store_true')
    a = ap.parse_args()
    roots = [(os.path.realpath(r), 'site') for r in a.roots] if a.roots else default_code_roots()
    if a.no_site:
        roots = [r for r in roots if r[1] == 'stdlib']
    roots += [(os.path.realpath(r), 'other') for r in a.extra_root]
    config = dict(roots=roots, prose=a.prose_root or ['/usr/share/doc'], logs=a.log_root or ['/var/log'],
                  heldout_frac=a.heldout_frac, max_per_package=a.max_per_package)
    if a.export:      # only then: caches built before --export existed stay valid
        config['exports'] = [(os.path.realpath(p), os.path.getsize(p)) for p in a.export]
    t0 = time.time()
    pool = None
    if os.path.exists(a.out) and not a.rebuild:
        pool = load_pool(a.out)
        if pool.get('config') != config:
            print(f'{a.out} was built with other arguments: rebuilding', file=sys.stderr)
            pool = None
    if pool is None:
        pool = build_pool(roots, config['prose'], config['logs'], a.heldout_frac, a.procs or None, a.max_per_package,
                          exports=a.export)
        pool['config'] = config
        save_pool(pool, a.out)
    for (group, split), (n, p, mb) in counts(pool).items():
        print(f'{group:6s} {split:8s} {n:6d} files {p:5d} packages {mb:8.1f} MB')
    print(f'{a.out}: {os.path.getsize(a.out) / 1e6:.1f} MB, {time.time() - t0:.1f} s')


if __name__ == '__main__':
    main()
