"""Task sampler: streams of real documents, formatted by the stream format (stream.py), with one question.

Every sample is a stream of exactly nseg full segments (documents cut into windows at line boundaries, each
under a fresh random path) and a question whose answer lies somewhere in it. Families:

  passkey           real filler, one "The pass key is N." line at a controlled depth   -> the digits
  where_defined     code windows, one definition per window renamed to a fresh name      -> the file's path
  which_file_topic  "which file handles <topic>?", topic words unique to one file        -> the file's path
  log_first         generated log lines (real message bodies when the pool has logs)    -> timestamp / service
  which_page        a PDF with a note naming a fresh phrase on one page, near misses    -> the page number
  verbatim          a note with random fields in a document, near misses elsewhere     -> the note, quoted
                    (asked by the line before it, or by its phrase)
  log_service       one event among near misses (one field differs) of other services  -> its service

Answer-bearing strings (paths, identifiers, keys, timestamps, services, event ids, page numbers, notes) are
random per sample: answers that recur across samples are memorised by the weights and say nothing about the
memory. Filler and definitions are real text from the pool's split, and held-out packages never reach a
training sample.

Speed: each file is tokenized once (lazily, or all at once with pretokenize) and windows are slices of its
ids at line boundaries (a newline is always one token, so a slice equals encoding the slice's text, but for
rare float ties between equal-score splits of whitespace runs); only the lines touched by a rename are encoded
again. Everything is deterministic given the seed.
"""
import hashlib
import multiprocessing as mp
import os
import random
import re
from dataclasses import dataclass, field

import numpy as np

from corpus import STOPWORDS, load_pool, split_words
from stream import SHIPPED_TOKENIZER, SPECIAL, Segmenter, Tokenizer, answer_tokens, js_collapse, page_marker, question_prompt

FAMILIES = ('passkey', 'where_defined', 'which_file_topic', 'log_first', 'which_page', 'verbatim', 'log_service',
            'repo_defined')
CODE_EXT = {'python': ['.py'], 'js': ['.js', '.mjs', '.jsx', '.cjs'], 'ts': ['.ts', '.tsx'], 'c': ['.c', '.h'],
            'cpp': ['.cc', '.cpp', '.hpp'], 'go': ['.go'], 'rust': ['.rs'], 'java': ['.java'], 'shell': ['.sh'],
            'ruby': ['.rb'], 'perl': ['.pl'], 'lua': ['.lua']}
NONE_ANSWER = 'none'   # absent: the answer to "where is X defined?" when no file of the stream defines X
DIR_WORDS = ['src', 'lib', 'app', 'core', 'utils', 'internal', 'pkg', 'common', 'server', 'client', 'api',
             'services', 'tools', 'scripts', 'modules', 'components', 'handlers', 'models', 'tests', 'docs']


@dataclass
class Sample:
    segments: np.ndarray          # int32 [nseg, seg_len]
    question: list                # question_prompt ids: <q> ... <a>
    answer: list                  # answer_tokens ids: ... </s>
    family: str
    meta: dict = field(default_factory=dict)
    more: list = field(default_factory=list)   # further (question, answer) ids about the same stream (ask_all)


@dataclass
class Window:
    """Lines [l0, l1) of one pool file, possibly with a definition renamed."""
    file: int
    l0: int
    l1: int
    ids: np.ndarray
    text: str
    def_line: int = -1            # line (relative to l0) of the renamed definition
    name: str = ''                # its fresh name
    def_kind: str = ''


@dataclass
class _Log:
    """One timeline of log files: line format, host, services, clock; the asked event and its service."""
    fmt: str
    host: str
    services: list
    t: float
    event: str = ''
    svc: str = ''

    def stamp(self):
        return _LOG_FORMATS[self.fmt](self.t)

    def line(self, ts, svc, lvl, msg, r):
        return _log_line(self.fmt, ts, self.host, svc, lvl, msg, r)


class _Stream:
    """Feeds documents to the mirror Segmenter until nseg segments are complete; records where tagged parts
    end up (token positions in the flattened stream) and the text of every document (header included)."""

    def __init__(self, tok, seg_len, nseg):
        self.seg, self.L, self.nseg = Segmenter(tok, seg_len), seg_len, nseg
        self.out, self.marks, self.texts, self.pkgs, self.paths = [], {}, [], set(), []

    @property
    def pos(self):
        return len(self.out) * self.L + self.seg.fill

    @property
    def full(self):
        return len(self.out) >= self.nseg

    def begin(self, kind, path, title=None):
        if not self.full:       # every document the stream folds: what the product ranks for a 'where' question
            self.paths.append(path)
        self.out += self.seg.begin_document(kind, path, title)
        # The header is text too: a topic word or a fresh name must not occur in any other document's header.
        self.texts.append(f'{kind} {path}\n' + (f'title: {title}\n' if title else ''))

    def part(self, ids, tag=None, page=None):
        """Text of the current document. A tagged part is 'in' the stream when its end <= nseg*L."""
        if self.full:
            return
        if page is not None:
            self.out += self.seg.begin_page(page)
        start = self.pos
        self.out += self.seg.tokens(ids)
        if tag is not None:
            self.marks[tag] = (start, self.pos)

    def add(self, kind, path, parts, title=None):
        """parts: [(page or None, ids, tag or None)]"""
        self.begin(kind, path, title)
        for page, ids, tag in parts:
            self.part(ids, tag, page)

    def predict(self, n):
        """Stream position after n more text tokens of the current document (continuation headers included),
        so a fact can be put at an exact depth."""
        L, fill, pos = self.L, self.seg.fill, self.pos
        c = min(len(self.seg.cont), L >> 1)
        while n > 0:
            if fill == 0:
                fill, pos = c, pos + c
            k = min(n, L - fill)
            n, fill, pos = n - k, fill + k, pos + k
            fill %= L
        return pos

    def nearest(self, starts, target, limit):
        """The j whose position predict(starts[j]) is nearest to target and <= limit (starts ascending from 0)."""
        j = 0
        while j + 1 < len(starts) and self.predict(int(starts[j + 1])) <= min(target, limit):
            j += 1
        if j + 1 < len(starts):
            nxt = self.predict(int(starts[j + 1]))
            if nxt <= limit and nxt - target < target - self.predict(int(starts[j])):
                j += 1
        return j

    def inside(self, tag):
        return tag in self.marks and self.marks[tag][1] <= self.nseg * self.L

    def segments(self):
        return np.stack(self.out[:self.nseg])


def _tok_init(path):
    global _TOK
    _TOK = Tokenizer(path)


def _tok_encode(text):
    return np.asarray(_TOK.encode(text), np.int32)


def passkey_line(key):
    """The line that hides a pass key in the passkey family's filler (src/eval/passkey.ts writes the same one)."""
    return f'The pass key is {key}. Remember it. {key} is the pass key.\n'


class TaskSampler:
    def __init__(self, pool, tokenizer_path, seg_len=512, seed=0, split='train', win=(64, 768), def_lead=None,
                 max_defs=None, ask_all=False, mentions=0.0, share_dir=0.5, near=0.0, keep_names=0.0, names_per_file=1,
                 absent=0.0):
        """def_lead: at most this many tokens of a file before the definition a question asks about (None: any),
        a curriculum knob for where_defined: with a small lead the path in the file's header and the renamed name
        sit a few lines apart, so the model can bind them within one segment before it must across segments.
        max_defs: at most this many files with a renamed definition per repository stream (None: ~80 % of its
        files), the rest filler: another knob, from one name-to-path binding to remember up to many.
        ask_all: where_defined asks about every renamed definition it can (up to 4, in Sample.more), all answered
        from the one memory state: "a, not b, for this name" in one step, where one question per stream lets the
        model settle at "one of the renamed files" (RUNS.md, run 4).
        mentions: how often a code file of a where_defined stream imports or calls a name defined in an earlier file
        (see mention). 0 keeps every fresh name in its own file.
        share_dir: how often a code or text file goes into a directory an earlier file of its stream is in (see
        fresh_path).
        near: how often a code file of a where_defined stream assigns a name that shares a word with a name defined
        in an earlier file (see near_miss). 0 keeps streams as before.
        keep_names: how often a where_defined definition keeps its own name instead of a fresh one (see named). The
        answer, a fresh path, is drawn per sample either way, so nothing can be memorised; what a kept name adds is
        that the asked name looks like every other name in the file, as in a real repository.
        names_per_file: with ask_all, up to this many names of one window are asked (its marked definition, then
        other definitions of the file inside it under their own names): a real repository asks about many names of
        one file, and a model asked one name per file learnt to name one large file for all of them (RUNS.md run 26).
        absent: how often a where_defined or repo_defined question is replaced by one about a name that no file of
        the stream defines, answered NONE_ANSWER (see _absent): what lets scores from different memories be compared,
        when a repository is folded into several (RUNS.md run 37)."""
        self.absent = absent
        self.def_lead, self.max_defs, self.ask_all, self.mentions = def_lead, max_defs, ask_all, mentions
        self.share_dir, self.near, self.keep_names, self.names_per_file = share_dir, near, keep_names, names_per_file
        if isinstance(pool, str):
            pool = load_pool(pool)
        assert split in ('train', 'heldout')
        self.tokenizer_path, self.L, self.split, self.win = tokenizer_path, seg_len, split, win
        self.tok = Tokenizer(tokenizer_path)
        self.NL = self.tok.nl[0]
        keep = lambda group: [r for r in pool[group] if pool['split'][r['pkg']] == split]
        self.files = keep('code') + keep('prose')
        assert self.files, f'the pool has no {split} files'
        self.code = [i for i, r in enumerate(self.files) if r['kind'] == 'code']
        self.prose = [i for i, r in enumerate(self.files) if r['kind'] == 'prose']
        self.all = self.code + self.prose
        # Definitions worth asking about: not dunder, not tiny, not a common word (renaming 'result' or 'type'
        # everywhere in a window would rewrite its comments' prose too).
        self.eligible = {i: [d for d in self.files[i]['defs'] if len(d[0]) >= 3 and not d[0].startswith('__')
                             and d[0].lower() not in STOPWORDS] for i in self.code}
        self.with_defs = [i for i in self.code if self.eligible[i]]
        # repo_defined: each package's code files in path order, for packages with two or more that define names
        by_pkg = {}
        for i in sorted(self.code, key=lambda i: self.files[i]['path']):
            by_pkg.setdefault(self.files[i]['pkg'], []).append(i)
        self.repos = [fs for fs in by_pkg.values() if sum(1 for i in fs if self.eligible[i]) >= 2]
        self.packages = sorted({r['pkg'] for r in self.files})
        # Topic questions prefer words that few files contain: fewer distractors to exclude.
        self.df = {}
        for r in self.files:
            for w in r['topics']:
                self.df[w] = self.df.get(w, 0) + 1
        # Words for fresh paths and identifiers: the split's own topic words that more than one file uses
        # (real-looking, never answers; a word of one file is often a person's or product's name).
        words = sorted(w for w, n in self.df.items() if n >= 2 and w.isalpha() and 3 <= len(w) <= 10)
        self.words = words if len(words) >= 200 else sorted(set(words) | set(DIR_WORDS) | _FALLBACK_WORDS)
        self.log_bodies = _log_bodies([r for r in keep('logs')])
        self._ids, self._ltok, self._lchr = [None] * len(self.files), [None] * len(self.files), [None] * len(self.files)
        self.reseed(seed)

    def reseed(self, seed):
        self.seed = seed
        self.rng = random.Random(seed)

    # ---------------------------------------------------------------- tokens of pool files
    def pretokenize(self, procs=1, cache=None):
        """Tokenize every file now (in procs processes), optionally cached in an .npz: a training run does this
        once before forking DataLoader workers, which then share the arrays."""
        h = hashlib.sha1(open(self.tokenizer_path, 'rb').read())
        for r in self.files:
            h.update(f'{r["pkg"]}/{r["path"]}:{len(r["text"])}\n'.encode())
        key = h.hexdigest()[:16]
        if cache and os.path.exists(cache):
            z = np.load(cache)
            if str(z['key']) == key:
                ids, off = z['ids'], z['off']
                for i in range(len(self.files)):
                    self._set_ids(i, ids[off[i]:off[i + 1]])
                    self.lines(i)
                return
        todo = [i for i in range(len(self.files)) if self._ids[i] is None]
        texts = [self.files[i]['text'] for i in todo]
        if procs > 1:
            with mp.Pool(procs, _tok_init, (self.tokenizer_path,)) as p:
                encoded = p.map(_tok_encode, texts, chunksize=16)
        else:
            encoded = [np.asarray(self.tok.encode(t), np.int32) for t in texts]
        for i, ids in zip(todo, encoded):
            self._set_ids(i, ids)
            self.lines(i)
        if cache:
            off = np.cumsum([0] + [len(x) for x in self._ids])
            np.savez(cache + '.tmp.npz', ids=np.concatenate(self._ids), off=off, key=key)
            os.replace(cache + '.tmp.npz', cache)

    def _set_ids(self, i, ids):
        text = self.files[i]['text']
        nl = np.flatnonzero(ids == self.NL)
        assert len(nl) == text.count('\n'), f'{self.files[i]["path"]}: newline tokens != newlines'
        self._ids[i] = ids
        self._ltok[i] = np.concatenate([[0], nl + 1, [len(ids)] if not text.endswith('\n') else []]).astype(np.int64)

    def lines(self, i):
        """(ids, token offset of each line start + end, char offset of each line start + end)."""
        if self._ids[i] is None:
            self._set_ids(i, np.asarray(self.tok.encode(self.files[i]['text']), np.int32))
        if self._lchr[i] is None:
            text = self.files[i]['text']
            nl = np.flatnonzero(np.frombuffer(text.encode('utf-32-le'), np.uint32) == 10) + 1
            self._lchr[i] = np.concatenate([[0], nl, [] if text.endswith('\n') else [len(text)]]).astype(np.int64)
        return self._ids[i], self._ltok[i], self._lchr[i]

    # ---------------------------------------------------------------- windows, names, paths
    def window(self, i, ntok, around=None):
        """About ntok tokens of whole lines of file i; with around=(line), that line lies inside."""
        ids, ltok, lchr = self.lines(i)
        nlines = len(ltok) - 1
        if around is None:
            start = self.rng.randrange(max(1, len(ids) - ntok + 1))
        else:
            lead = ntok if self.def_lead is None else min(ntok, self.def_lead)
            start = max(0, int(ltok[around]) - int(self.rng.random() * lead))
        l0 = min(int(np.searchsorted(ltok, start, 'right')) - 1, nlines - 1)
        if around is not None:
            l0 = min(l0, around)
        l1 = max(l0 + 1, int(np.searchsorted(ltok, ltok[l0] + ntok, 'right')) - 1)
        if around is not None:
            l1 = max(l1, around + 1)
        l1 = min(l1, nlines)
        text = self.files[i]['text'][lchr[l0]:lchr[l1]]
        return Window(i, l0, l1, ids[ltok[l0]:ltok[l1]], text)

    def rename(self, w, d):
        """Renames definition d = (name, kind, line, off) everywhere in window w to a fresh identifier; only
        the lines that change are encoded again."""
        name, kind, line, _ = d
        lang = self.files[w.file]['lang']
        new = self.fresh_name(name, lang, kind)
        ids, ltok, lchr = self.lines(w.file)
        hits = _find_word(w.text, name)
        if not hits:
            return w
        touched = sorted(set(np.searchsorted(lchr, lchr[w.l0] + np.asarray(hits), 'right') - 1))
        pieces, prev, text = [], ltok[w.l0], self.files[w.file]['text']
        for li in touched:
            line_text = _replace_word(text[lchr[li]:lchr[li + 1]], name, new)
            pieces += [ids[prev:ltok[li]], np.asarray(self.tok.encode(line_text), np.int32)]
            prev = ltok[li + 1]
        pieces.append(ids[prev:ltok[w.l1]])
        return Window(w.file, w.l0, w.l1, np.concatenate(pieces), _replace_word(w.text, name, new),
                      line - w.l0, new, kind)

    def named(self, w, d):
        """Window w with definition d = (name, kind, line, off) marked as the one to ask about, under its own name.
        Models trained on fresh names only answered those (~0.8 top-1 through the product on training-like streams)
        and not the streams' other definitions (~0.2), which are what a real repository asks about (RUNS.md run 15)."""
        name, kind, line, _ = d
        if not _find_word(w.text, name):
            return w
        return Window(w.file, w.l0, w.l1, w.ids, w.text, line - w.l0, name, kind)

    def words_(self, n):
        return [self.rng.choice(self.words) for _ in range(n)]

    def fresh_name(self, orig, lang, kind):
        """A new identifier in the style of the original (snake, camel, Pascal, UPPER), 2-3 words."""
        ws = self.words_(self.rng.choice((2, 2, 3)))
        core = orig.lstrip('_')
        prefix = orig[:len(orig) - len(core)]
        if core.isupper() and len(core) > 1:
            s = '_'.join(ws).upper()
        elif core[:1].isupper():
            s = ''.join(x.capitalize() for x in ws)
        elif '_' in core or (lang == 'python' and core.islower()):
            s = '_'.join(ws)
        else:
            s = _camel(ws)
        return prefix + s

    def fresh_path(self, kind, lang=None, used=()):
        """A fresh path for a document of this kind, not in `used` (the stream's paths so far). Code and text
        files go into a directory one of `used` is in with probability share_dir, as files of a repository do. With
        every file in a directory of its own (share_dir 0, runs 1-13), run 13's model told two files apart when their
        directories differed and not when they shared one (RUNS.md, run 13)."""
        r = self.rng
        shared = sorted({p.rsplit('/', 1)[0] for p in used if '/' in p and '.log' not in p})
        for _ in range(100):
            ndirs = r.choice((0, 1, 1, 2, 2, 3))
            dirs = [r.choice(DIR_WORDS) if r.random() < 0.3 else r.choice(self.words) for _ in range(ndirs)]
            if kind in ('code', 'text') and shared and self.share_dir and r.random() < self.share_dir:   # no draw at 0
                dirs = r.choice(shared).split('/') + dirs[:1 if r.random() < 0.2 else 0]
            ws = self.words_(r.choice((1, 1, 2, 2, 3)))
            if kind == 'code':
                ext = r.choice(CODE_EXT.get(lang, ['.txt']))
                if lang in ('js', 'ts'):
                    stem = r.choice([_camel(ws), '-'.join(ws)])
                else:
                    stem = '_'.join(ws)
            elif kind == 'log':
                ext, stem = r.choice(['.log', '.log', '.log.1']), '-'.join(ws)
                dirs = r.choice([['var', 'log'], ['logs'], []]) + dirs[:1]
            elif kind == 'pdf':
                ext, stem = '.pdf', ' '.join(x.capitalize() for x in ws) + r.choice(['', f' {r.randrange(1990, 2026)}'])
            else:
                ext = r.choice(['.md', '.txt', '.rst', ''])
                stem = r.choice(['README', 'NOTES', 'CHANGELOG', 'GUIDE']) if ext == '' else '-'.join(ws)
            path = '/'.join(dirs + [stem + ext])
            if path not in used:
                return path
        return path

    # ---------------------------------------------------------------- stream filling
    def _fill_doc(self, st, used, code_frac=0.7, tag=None, defined=None):
        """One filler document: a code window, or prose as text (sometimes as a PDF with pages). defined: names
        defined earlier in the stream that a code window may mention (where_defined, see mention)."""
        r = self.rng
        pick_code = self.code and (not self.prose or r.random() < code_frac)
        i = r.choice(self.code if pick_code else self.prose)
        w = self.window(i, self.win_len(st))
        if pick_code and defined:
            w = self.near_miss(self.mention(w, defined), defined)
        self._add_window(st, w, used, tag)
        return w

    def win_len(self, st):
        """Window length in tokens: at most a third of the stream, so every stream holds several files."""
        hi = max(16, min(self.win[1], st.nseg * st.L // 3))
        return self.rng.randint(min(self.win[0], hi), hi)

    def _add_window(self, st, w, used, tag=None, def_tag=None):
        rec = self.files[w.file]
        st.pkgs.add(rec['pkg'])
        if rec['kind'] == 'code':
            kind, path = 'code', self.fresh_path('code', rec['lang'], used)
        else:
            kind = 'pdf' if self.rng.random() < 0.25 else 'text'
            path = self.fresh_path(kind, used=used)
        used.add(path)
        if kind == 'pdf':        # 1-3 pages split at line boundaries
            ltok = np.flatnonzero(w.ids == self.NL) + 1
            cuts = sorted(self.rng.sample(list(ltok[:-1]), max(0, min(len(ltok) - 1, self.rng.randint(0, 2)))))
            bounds = [0] + cuts + [len(w.ids)]
            first = self.rng.randint(1, 300)
            parts = [(first + k, w.ids[a:b], None) for k, (a, b) in enumerate(zip(bounds, bounds[1:]))]
            title = None
            if self.rng.random() < 0.6:
                title = ' '.join(x.capitalize() for x in self.words_(self.rng.randint(2, 5)))
            st.add('pdf', path, parts, title)
        elif w.def_line >= 0:    # the definition's line is its own part, so its position is known
            ltok = np.concatenate([[0], np.flatnonzero(w.ids == self.NL) + 1, [len(w.ids)]])
            a, b = ltok[w.def_line], ltok[min(w.def_line + 1, len(ltok) - 1)]
            st.add(kind, path, [(None, w.ids[:a], None), (None, w.ids[a:b], def_tag), (None, w.ids[b:], tag)])
        else:
            st.add(kind, path, [(None, w.ids, tag)])
        st.texts[-1] += w.text
        return path, len(st.texts) - 1

    # ---------------------------------------------------------------- families
    def sample(self, nseg, family=None, **opts):
        """One Sample of exactly nseg segments. opts: depth (0..1 or 'start'/'middle'/'end') for every family but
        which_file_topic; the question for log_first (ask='when'|'service') and verbatim (ask='after'|'mentions')."""
        family = family or self.rng.choice(FAMILIES)
        for _ in range(20):    # a family may fail to place its fact (too short a stream for it, no unique word)
            s = getattr(self, '_' + family)(nseg, **opts)
            if s is not None:
                return s
        raise RuntimeError(f'{family}: no sample in 20 tries (nseg={nseg}, {len(self.files)} files)')

    def _finish(self, st, family, question, answer, meta, more=()):
        """more: further (question, answer path) pairs about the same stream (ask_all), as ids in Sample.more."""
        return Sample(st.segments(), question_prompt(self.tok, question), answer_tokens(self.tok, answer), family,
                      dict(meta, question=question, answer=answer, split=self.split, packages=sorted(st.pkgs)),
                      [(question_prompt(self.tok, q), answer_tokens(self.tok, a)) for q, a in more])

    def _passkey(self, nseg, depth=None):
        r, st, used = self.rng, _Stream(self.tok, self.L, nseg), set()
        key = str(r.randrange(10 ** (n := r.choice((4, 5, 5, 5, 6))) // 10, 10 ** n))
        needle = np.asarray(self.tok.encode(passkey_line(key)), np.int32)
        T = nseg * self.L
        target = int(_depth(depth, r) * (T - len(needle)))
        placed = False
        while not st.full:
            if placed or st.pos + self.win[1] + MAX_HDR < target:
                self._fill_doc(st, used)
                continue
            i = r.choice(self.all)
            w, rec = self.window(i, self.win_len(st)), self.files[i]
            st.pkgs.add(rec['pkg'])
            kind = 'code' if rec['kind'] == 'code' else 'text'
            path = self.fresh_path(kind, rec['lang'], used)
            used.add(path)
            st.begin(kind, path)
            st.texts[-1] += w.text
            if st.predict(len(w.ids)) < target:
                st.part(w.ids)
                continue
            # This window crosses the target depth: the needle goes between two of its lines, where it still
            # fits in the stream with a continuation header in front of it.
            starts = np.concatenate([[0], np.flatnonzero(w.ids == self.NL) + 1])
            k = int(starts[st.nearest(starts, target, T - len(needle) - min(len(st.seg.cont), self.L >> 1))])
            st.part(w.ids[:k])
            st.part(needle, 'needle')
            st.part(w.ids[k:])
            placed = True
        if not st.inside('needle') or any(key in t for t in st.texts):
            return None
        q = r.choice(['What is the pass key?', 'What is the pass key?', 'what is the pass key?', 'What was the pass key?'])
        return self._finish(st, 'passkey', q, key, dict(depth=st.marks['needle'][0] / (nseg * self.L), key=key))

    def mention(self, w, defined):
        """Window w with, with probability self.mentions, a first line that imports one of the names defined earlier
        in the stream from its file, or calls it. A real repository's files import and call each other's names;
        in streams without it a name occurs in one file only. (RUNS.md run 10: a model trained without mentions
        still ranks the defining file first on streams with them, 11 of 12, so this is realism, not yet the
        measured cause of its 2-4 of 18 on fixtures/repo.) defined: {name: (path, mentions so far)}, updated here."""
        r = self.rng
        if not defined or not self.mentions or r.random() >= self.mentions:   # no draw at 0: streams as before
            return w
        name = r.choice(sorted(defined))
        path, n = defined[name]
        if _find_word(w.text, name):
            return w
        stem = path.rsplit('/', 1)[-1].rsplit('.', 1)[0]
        var, arg = (_camel(self.words_(2)) for _ in range(2))
        lang = self.files[w.file]['lang']
        if lang == 'python':
            line = r.choice([f'from .{stem} import {name}', f'{var} = {name}({arg})'])
        elif lang in ('js', 'ts'):
            line = r.choice([f"import {{ {name} }} from './{stem}';", f'const {var} = {name}({arg});'])
        else:
            line = f'{name}({arg});'
        defined[name] = (path, n + 1)
        return self._prepend(w, line)

    def near_miss(self, w, defined):
        """Window w with, with probability self.near, a first line that assigns a name sharing one word with a name
        defined earlier in the stream (RESET_SECRET after make_reset_token). Fresh names are random words that other
        files rarely contain, while a real repository's names share words all over: on fixtures/repo `auth.py`'s
        names were answered by later files holding their words (RUNS.md run 13). defined: as in mention."""
        r = self.rng
        if not defined or not self.near or r.random() >= self.near:   # no draw at 0: streams as before
            return w
        name = r.choice(sorted(defined))
        ws = [r.choice(split_words(name) or [name]), r.choice(self.words)]
        r.shuffle(ws)
        near = r.choice(['_'.join(ws).upper(), '_'.join(ws), _camel(ws)])
        if near in defined or _find_word(w.text, near):
            return w
        value = r.choice([str(r.randrange(1, 10000)), f'"{r.choice(self.words)}"'])
        lang = self.files[w.file]['lang']
        return self._prepend(w, f'const {near} = {value};' if lang in ('js', 'ts') else f'{near} = {value}')

    def _prepend(self, w, line):
        """Window w with `line` before its first line."""
        head = np.asarray(self.tok.encode(line + '\n'), np.int32)
        return Window(w.file, w.l0, w.l1, np.concatenate([head, w.ids]), line + '\n' + w.text,
                      w.def_line + 1 if w.def_line >= 0 else -1, w.name, w.def_kind)

    def _code_stream(self, nseg, rename=True):
        """Code windows around definitions (each with one definition renamed) mixed with other filler; with
        self.mentions, later code files import or call the renamed names (mention). Returns the stream, the
        definitions' windows and {name: (path, mentions)}."""
        r, st, used, wins = self.rng, _Stream(self.tok, self.L, nseg), set(), []
        seen_files, defined = set(), {}
        while not st.full:
            if r.random() < 0.2 or not self.with_defs or (self.max_defs is not None and len(wins) >= self.max_defs):
                self._fill_doc(st, used, defined=defined)
                continue
            i = r.choice(self.with_defs)
            if i in seen_files:
                i = r.choice(self.with_defs)
            seen_files.add(i)
            d = r.choice(self.eligible[i])
            w = self.window(i, self.win_len(st), around=d[2])
            if rename:    # no draw at keep_names 0: streams as before
                w = self.named(w, d) if self.keep_names and r.random() < self.keep_names else self.rename(w, d)
            w = self.near_miss(self.mention(w, defined), defined)
            k = len(wins)
            path, ti = self._add_window(st, w, used, tag=('end', k), def_tag=('def', k))
            wins.append((w, path, ti))
            if w.name:
                defined.setdefault(w.name, (path, 0))
        return st, wins, defined

    def _where_question(self, name, kind):
        what = {'class': 'class', 'function': 'function', 'method': 'method', 'interface': 'interface',
                'type': 'type', 'enum': 'enum'}.get(kind, 'constant' if name.isupper() else 'variable')
        return self.rng.choice([f'where is {name} defined?', f'which file defines {name}?', f'where is the {what} {name}?',
                                f'in which file is {name} defined?', f'where can I find the definition of {name}?',
                                f'Where is {name} defined?', f'which file has the {what} {name}?'])

    def _more_names(self, w, k, st, own, big):
        """[(name, kind)] of window k's other definitions that can be asked under their own names (names_per_file):
        defined inside the window, which lies wholly inside the stream, and written in no other file of the stream.
        A name defined twice in the window (a method of two classes) is one name: asked once."""
        if self.names_per_file < 2 or not st.inside(('end', k)):
            return []
        defs = {d[0]: d[1] for d in self.eligible.get(w.file, []) if w.l0 <= d[2] < w.l1 and d[0] != w.name
                and _find_word(w.text, d[0]) and big.count(d[0]) == own.count(d[0])}
        return self.rng.sample(list(defs.items()), len(defs))

    def _where_defined(self, nseg, depth=None):
        r = self.rng
        st, wins, defined = self._code_stream(nseg)
        cands = [k for k, (w, _, _) in enumerate(wins) if w.name and st.inside(('def', k))]
        if not cands:
            return None
        if depth is not None:     # the candidate nearest the asked depth
            d = _depth(depth, r) * nseg * self.L
            cands.sort(key=lambda k: abs(st.marks[('def', k)][0] - d))
        else:
            r.shuffle(cands)
        big = '\n'.join(st.texts)
        asked, most = [], 4 if self.ask_all else 1
        for k in cands[:8]:
            w, path, ti = wins[k]
            own = st.texts[ti]
            # the fresh name occurs in this file only, or elsewhere only where mention put it
            if big.count(w.name) == own.count(w.name) + defined.get(w.name, ('', 0))[1]:
                asked.append((k, w, self._where_question(w.name, w.def_kind), path))
                for name, kind in self._more_names(w, k, st, own, big)[:min(self.names_per_file - 1, most - len(asked))]:
                    asked.append((k, w, self._where_question(name, kind), path))
                if len(asked) >= most:
                    break
        if not asked:
            return None
        k, w, q, path = asked[0]
        (q, path), *more = self._absent(st, [(q2, p2) for _, _, q2, p2 in asked])
        return self._finish(st, 'where_defined', q, path, dict(
            depth=st.marks[('def', k)][0] / (nseg * self.L), name=w.name, kind=w.def_kind,
            candidates=len(cands), docs=len(st.texts), paths=list(st.paths), mentions=defined.get(w.name, ('', 0))[1],
            asked_depths=[st.marks[('def', k2)][0] / (nseg * self.L) for k2, _, _, _ in asked]), more=more)

    def _repo_defined(self, nseg, depth=None):
        """where_defined as `ctx eval repo` asks it of a real repository: whole code files of one package, in path
        order from a random one on (others' windows fill a stream the package leaves short), every file under a fresh
        path, every name as written; asked: names defined in exactly one file of the stream, at most names_per_file of
        a file, up to 4 with ask_all. The other families' files come from different packages, so a name's file can
        be told by its topic; a repository's files share one vocabulary and call each other's names (RUNS.md run 10),
        and models trained on those families name one file for most of a held-out repository's names (run 35).
        depth is not used: the files come in the repository's own order."""
        r, st, used = self.rng, _Stream(self.tok, self.L, nseg), set()
        files = r.choice(self.repos)
        k = r.randrange(len(files))
        defs, left = {}, []   # name -> [(tag, path, kind)] of its definitions in the stream; the files left out
        for i in files[k:] + files[:k]:
            if st.full:
                left.append(i)
                continue
            rec, (ids, ltok, _) = self.files[i], self.lines(i)
            path = self.fresh_path('code', rec['lang'], used)
            used.add(path)
            st.pkgs.add(rec['pkg'])
            parts, at = [], 0     # each definition's line is its own tagged part, so its position is known
            for name, kind, line, _ in sorted(self.eligible[i], key=lambda d: d[2]):
                a, b = int(ltok[line]), int(ltok[min(line + 1, len(ltok) - 1)])
                if a < at or b <= a:
                    continue
                parts += [(None, ids[at:a], None), (None, ids[a:b], (path, name))]
                defs.setdefault(name, []).append(((path, name), path, kind))
                at = b
            st.add('code', path, parts + [(None, ids[at:], None)])
            st.texts[-1] += rec['text']
        own = len(st.texts)
        while not st.full:
            self._fill_doc(st, used)
        filler = '\n'.join(st.texts[own:])   # a name the filler also holds is not asked
        once = [(name, ds[0][1], ds[0][2]) for name, ds in defs.items()
                if len({d[1] for d in ds}) == 1 and st.inside(ds[0][0]) and not _find_word(filler, name)]
        if not once:
            return None
        r.shuffle(once)
        asked, per_file, most = [], {}, 4 if self.ask_all else 1
        for name, path, kind in once:
            if per_file.get(path, 0) < max(1, self.names_per_file) and len(asked) < most:
                asked.append((self._where_question(name, kind), path, name))
                per_file[path] = per_file.get(path, 0) + 1
        name = asked[0][2]
        (q, path), *more = self._absent(st, [(q2, p2) for q2, p2, _ in asked], left, rename=False)
        return self._finish(st, 'repo_defined', q, path, dict(
            depth=st.marks[(asked[0][1], name)][0] / (nseg * self.L), name=name, candidates=len(once),
            docs=len(st.texts), paths=list(st.paths)), more=more)

    def _absent(self, st, asked, near=(), rename=True, used=0.5):
        """asked [(question, path)], each replaced with probability self.absent by a question about a name that no file
        of the stream defines, answered NONE_ANSWER. With `near` (the same package's files the stream left out), a
        share `used` of those names is one the stream's files use but do not define: a repository folded into several
        memories asks each about names its files import and call from files another memory holds (RUNS.md run 37: with
        them "none" picked the right memory for 88 of 155 names, 70-78 without). The rest:
        names found nowhere in the stream, from `near` or any code file; as written, or with rename as often fresh
        as where_defined renames (an absent name must not be told by its look)."""
        if not self.absent:    # no draw: streams as before
            return asked
        r, big, users, out = self.rng, '\n'.join(st.texts), None, []
        for q, path in asked:
            if r.random() < self.absent:
                if users is None:    # scanned once per stream, and only for a stream with an absent question
                    users = self._used_names(big, near)
                name = r.choice(users) if users and r.random() < used else self._unseen_name(big, near, rename)
                if name:
                    q, path = self._where_question(*name), NONE_ANSWER
            out.append((q, path))
        return out

    def _used_names(self, text, near):
        """[(name, kind)] of up to 48 definitions drawn from the files of near that text uses but does not define."""
        cands = [d for i in near for d in self.eligible[i]]
        return [d[:2] for d in self.rng.sample(cands, min(len(cands), 48)) if _find_word(text, d[0]) and not _defines(text, d[0])]

    def _unseen_name(self, text, near, rename):
        """(name, kind) of a definition in a file of near (4 times in 5) or any code file, found nowhere in text; None
        when 8 draws find none."""
        r = self.rng
        for _ in range(8):
            i = r.choice(near) if near and r.random() < 0.8 else r.choice(self.with_defs)
            if not self.eligible.get(i):
                continue
            name, kind = r.choice(self.eligible[i])[:2]
            if rename and (not self.keep_names or r.random() >= self.keep_names):
                name = self.fresh_name(name, self.files[i]['lang'], kind)
            if not _find_word(text, name):
                return name, kind
        return None

    def _which_file_topic(self, nseg, depth=None):
        r = self.rng
        st, wins, defined = self._code_stream(nseg)
        cands = [k for k, _ in enumerate(wins) if st.inside(('end', k))]
        r.shuffle(cands)
        big = '\n'.join(st.texts).lower()
        for k in cands[:8]:
            w, path, ti = wins[k]
            own = st.texts[ti].lower()
            body = w.text.lower()     # in the file's text itself, not only in its (random) path
            words = [x for x in self.files[w.file]['topics'] if x in body]
            words.sort(key=lambda x: (self.df.get(x, 0), x))
            for word in words[:6]:
                if big.count(word) != own.count(word):
                    continue
                topic = word
                other = [x for x in words if x != word]
                if other and r.random() < 0.3:
                    topic = f'{word} {r.choice(other)}' if r.random() < 0.5 else f'{r.choice(other)} {word}'
                q = r.choice([f'which file handles {topic}?', f'where is {topic} handled?', f'which file deals with {topic}?',
                              f'where is the code for {topic}?', f'which file is about {topic}?', f'Which file handles {topic}?'])
                return self._finish(st, 'which_file_topic', q, path, dict(
                    depth=st.marks[('end', k)][0] / (nseg * self.L), topic=topic, word=word, docs=len(st.texts),
                    paths=list(st.paths)))
        return None

    # ---------------------------------------------------------------- documents with inserted notes
    def _phrases(self, n):
        """A fresh phrase (two capitalised pool words) and up to n near misses, half of them sharing a word."""
        r = self.rng
        out = [' '.join(w.capitalize() for w in self.words_(2))]
        for _ in range(4 * n):           # bounded: a small word list may not give n distinct ones
            if len(out) > n:
                break
            ws = out[0].split() if r.random() < 0.5 else [w.capitalize() for w in self.words_(2)]
            ws[r.randrange(2)] = r.choice(self.words).capitalize()
            y = ' '.join(ws)
            if all(y.lower() not in z.lower() and z.lower() not in y.lower() for z in out):
                out.append(y)
        return out[0], out[1:]

    def _note(self, x):
        """A short line naming the phrase x with random fields: a verbatim answer that is never the same twice."""
        r = self.rng
        best = None
        for _ in range(10):
            s = _fill(r.choice(_NOTES).replace('{X}', x), r, self.words)
            n = len(self.tok.encode(s))
            if best is None or n < best[0]:
                best = n, s
            if n <= 12:
                break
        return best[1] + '\n'

    def _doc_stream(self, nseg, depth, note, near=(), pdf=None, ok=None):
        """Filler documents and, at the asked depth, a host document (a prose window; any file's when the pool
        has no prose) with the note line before the line nearest that depth (mark 'needle') and the near-miss
        notes before random other lines. pdf: True, or None for a third of prose hosts. ok(lines, j): whether
        the note may go before line j. Returns (stream, host info), or None when the note is not in the stream."""
        st, used = _Stream(self.tok, self.L, nseg), set()
        note, near = self._enc(note), [self._enc(x) for x in near]
        target = int(_depth(depth, self.rng) * (nseg * self.L - len(note[1])))
        host = None
        while not st.full:
            if host or st.pos + self.win[1] + MAX_HDR < target:
                self._fill_doc(st, used)
            else:
                host = self._host(st, used, target, note, near, pdf, ok)
        return (st, host) if host and st.inside('needle') else None

    def _enc(self, text):
        return text, np.asarray(self.tok.encode(text), np.int32)

    def _host(self, st, used, target, note, near, pdf, ok):
        """Writes a host document; returns its info, or None when the note did not go in (the window ends before
        the target, or no line may take the note): it was plain filler then."""
        r = self.rng
        i = r.choice(self.prose or self.all)
        # Long enough to reach the target (a later host might begin too close to the end of the stream).
        w, rec = self.window(i, max(self.win_len(st), target - st.pos + 16)), self.files[i]
        pdf = rec['kind'] != 'code' and r.random() < 1 / 3 if pdf is None else pdf
        kind = 'pdf' if pdf else 'code' if rec['kind'] == 'code' else 'text'
        path = self.fresh_path(kind, rec['lang'], used)
        used.add(path)
        st.pkgs.add(rec['pkg'])
        title = ' '.join(x.capitalize() for x in self.words_(r.randint(2, 5))) if pdf and r.random() < 0.6 else None
        st.begin(kind, path, title)
        starts = np.concatenate([[0], np.flatnonzero(w.ids[:-1] == self.NL) + 1])     # line starts
        pages, lines = self._pages(w, starts) if pdf else {}, w.text.split('\n')
        ins, j = self._insert(st, starts, len(w.ids), pages, target, note, near, lambda j: ok is None or ok(lines, j))
        _write(st, w.ids, pages, ins)
        st.texts[-1] += w.text + ''.join(t for xs in ins.values() for t, _, _ in xs)
        if j is None:
            return None
        a = int(starts[j])
        return dict(page=pages[max(p for p in pages if p <= a)] if pages else None, prev=lines[j - 1] if j else None,
                    path=path, kind=kind)

    def _insert(self, st, starts, n, pages, target, note, near, ok):
        """Where the note and its near misses go in a host of n tokens: ({line start: [(text, ids, tag)]}, the
        note's line), or ({}, None) when the host ends before the target or no line may take the note. The note
        goes before the line nearest the target, never before the same line as a near miss (the line after a
        quoted line must be the note)."""
        r = self.rng
        extra = {a: len(page_marker(self.tok, k)) for a, k in pages.items()}
        if st.predict(n + sum(extra.values())) < target:
            return {}, None
        ins = {}
        for x in near:
            a = int(r.choice(starts))
            ins.setdefault(a, []).append((*x, None))
            extra[a] = extra.get(a, 0) + len(x[1])
        cand = [j for j in range(len(starts)) if int(starts[j]) not in ins and ok(j)]
        if not cand:
            return {}, None
        # Stream position of each line start: page markers and near misses before it count too.
        pts = sorted(extra)
        off = starts + np.concatenate([[0], np.cumsum([extra[a] for a in pts])])[np.searchsorted(pts, starts, 'right')]
        # A continuation header inside a page also names the page (<= 4 tokens more).
        limit = st.nseg * st.L - len(note[1]) - min(len(st.seg.cont) + 4 * bool(pages), st.L >> 1)
        j = cand[st.nearest(off[cand], target, limit)]
        ins.setdefault(int(starts[j]), []).append((*note, 'needle'))
        return ins, j

    def _pages(self, w, starts):
        """{token offset in w.ids: page number} of a PDF host: the record's own page breaks inside the window,
        else 1-4 breaks at random lines. Numbers count up from a random first page: no number is a likely answer."""
        r = self.rng
        _, ltok, lchr = self.lines(w.file)
        real = np.searchsorted(lchr, [a for _, a, _ in self.files[w.file].get('pages', ())])
        cuts = [int(ltok[x] - ltok[w.l0]) for x in real if w.l0 < x < w.l1]
        cuts = cuts or sorted(int(x) for x in r.sample(list(starts[1:]), min(len(starts) - 1, r.randint(1, 4))))
        first = r.randint(1, 300)
        return {a: first + k for k, a in enumerate([0] + cuts)}

    def _which_page(self, nseg, depth=None):
        """A PDF with a note naming a fresh phrase on one page and notes naming near misses on others: the
        phrase is random per sample, so only the stream can say which page mentions it."""
        r = self.rng
        x, near = self._phrases(r.randint(0, 3))
        got = self._doc_stream(nseg, depth, self._note(x), [self._note(y) for y in near], pdf=True)
        if got is None:
            return None
        st, host = got
        if '\n'.join(st.texts).lower().count(x.lower()) != 1:
            return None
        q = r.choice([f'which page mentions {x}?', f'on which page is {x} mentioned?', f'what page mentions {x}?',
                      f'Which page mentions {x}?', f'on what page does {x} appear?'])
        return self._finish(st, 'which_page', q, str(host['page']), dict(
            depth=st.marks['needle'][0] / (nseg * self.L), phrase=x, page=host['page'], near=near, path=host['path']))

    def _verbatim(self, nseg, depth=None, ask=None):
        """A note (random fields, a fresh phrase) inside a document, near-miss notes elsewhere in it; quote it
        by the line before it (ask='after') or by its phrase (ask='mentions')."""
        r = self.rng
        ask = ask or r.choice(('after', 'mentions'))
        x, near = self._phrases(r.randint(0, 3))
        note = self._note(x)
        ok = (lambda lines, j: j > 0 and _quotable(lines[j - 1])) if ask == 'after' else None
        got = self._doc_stream(nseg, depth, note, [self._note(y) for y in near], ok=ok)
        if got is None:
            return None
        st, host = got
        big, answer = '\n'.join(st.texts), note.rstrip('\n')
        if ask == 'after':
            prev = js_collapse(host['prev'])
            if big.count(prev) != 1 or big.count(answer) != 1:
                return None
            q = r.choice([f'what does the line after "{prev}" say?', f'quote the line that follows "{prev}"',
                          f'What comes right after "{prev}"?'])
        else:
            if big.lower().count(x.lower()) != 1:
                return None
            q = r.choice([f'quote the sentence that mentions {x}', f'what exactly does the text say about {x}?',
                          f'Quote the line mentioning {x}.'])
        return self._finish(st, 'verbatim', q, answer, dict(
            depth=st.marks['needle'][0] / (nseg * self.L), ask=ask, phrase=x, prev=host['prev'], path=host['path'],
            kind=host['kind']))

    # ---------------------------------------------------------------- log timelines
    def _log_timeline(self):
        """A timeline's line format, host, services and start time (the event and its service come later)."""
        r = self.rng
        fmt = r.choice(list(_LOG_FORMATS))
        services = sorted({_service(r, self.words) for _ in range(r.randint(3, 9))})
        host = r.choice(self.words) + r.choice(['', '-01', '-prod', str(r.randint(1, 99))])
        return _Log(fmt, host, services, _random_time(r))

    def _log_target(self, log, nseg, depth):
        """(stream position at the asked depth where log.event's line still fits, that line's length)."""
        n = len(self.tok.encode(log.line(log.stamp(), log.svc, 'ERROR', log.event, self.rng))) + 2
        return int(_depth(depth, self.rng) * (nseg * self.L - n)), n

    def _log_routine(self):
        """A routine message: half of them real log bodies when the pool has logs."""
        r = self.rng
        if self.log_bodies and r.random() < 0.5:
            return r.choice(self.log_bodies)
        return _fill(r.choice(_ROUTINE), r, self.words)

    def _log_stream(self, log, nseg, at, pick):
        """Log files of the timeline until nseg segments are full. Each line's service and level are drawn, then
        pick(service, level, placed) gives its (service, level, message), or None to drop the line. The line
        nearest at = _log_target(...) becomes log.event logged by log.svc (mark 'event'). Returns (stream, the
        event's timestamp), or None when the event is not in the stream."""
        r, st, used = self.rng, _Stream(self.tok, self.L, nseg), set()
        T, (target, ev_len), when = nseg * self.L, at, None
        while not st.full:
            lines = []
            # Lines are ~20-30 tokens: a document never runs far past the end of the stream.
            for _ in range(min(r.randint(20, 120), 8 + (T - st.pos) // 20)):
                log.t += r.expovariate(1 / r.choice((0.3, 2.0, 15.0)))
                s2, lvl = r.choice(log.services), r.choice(['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN'])
                got = pick(s2, lvl, when is not None)
                if got:
                    lines.append((log.stamp(), *got))
            path = self.fresh_path('log', used=used)
            used.add(path)
            st.begin('log', path)
            text = [log.line(ts, s2, lvl, msg, r) for ts, s2, lvl, msg in lines]
            enc = [np.asarray(x, np.int32) for x in self.tok.sp.encode(text)]
            starts = np.cumsum([0] + [len(x) for x in enc])
            j = None
            if when is None and st.predict(int(starts[-1])) >= target:
                # The line at the target depth becomes the event's first occurrence.
                j = st.nearest(starts[:-1], target, T - ev_len - min(len(st.seg.cont), self.L >> 1))
                when = lines[j][0]
                text[j] = log.line(when, log.svc, 'ERROR', log.event, r)
                enc[j] = np.asarray(self.tok.encode(text[j]), np.int32)
            if j is None:
                st.part(np.concatenate(enc))
            else:
                st.part(np.concatenate(enc[:j] + [enc[j][:0]]))
                st.part(enc[j], 'event')
                st.part(np.concatenate(enc[j + 1:] + [enc[j][:0]]))
            st.texts[-1] += ''.join(text)
        return (st, when) if when is not None and st.inside('event') else None

    def _log_first(self, nseg, depth=None, ask=None):
        """Log files of one timeline; an event (with distractors of the same kind, other ids and services)
        first logged at a chosen depth, sometimes repeated later."""
        r, log = self.rng, self._log_timeline()
        tmpl = r.choice(_EVENTS)
        log.event, log.svc = _fill(tmpl, r, self.words), r.choice(log.services)
        at, repeats = self._log_target(log, nseg, depth), r.randint(0, 2)

        def pick(s2, lvl, placed):
            nonlocal repeats
            if placed and repeats and r.random() < 0.02:
                repeats -= 1
                return log.svc, 'ERROR', log.event
            if r.random() < 0.05:     # the same kind of event with other ids: distractors
                msg = _fill(tmpl, r, self.words)
                return None if msg == log.event else (s2, 'ERROR', msg)
            return s2, lvl, self._log_routine()

        got = self._log_stream(log, nseg, at, pick)
        if got is None:
            return None
        (st, when), event, svc = got, log.event, log.svc
        ask = ask or r.choice(('when', 'service'))
        ev = r.choice([f'"{event}"', event, f"'{event}'"])
        if ask == 'when':
            q = r.choice([f'when did {ev} first occur?', f'when was {ev} first logged?', f'what time did {ev} first happen?',
                          f'When did {ev} first occur?'])
            answer = when
        else:
            q = r.choice([f'which service logged {ev}?', f'which service reported {ev}?', f'what service logged {ev}?'])
            answer = svc
        return self._finish(st, 'log_first', q, answer, dict(depth=st.marks['event'][0] / (nseg * self.L), ask=ask,
                                                             event=event, service=svc, time=when, format=log.fmt))

    def _log_service(self, nseg, depth=None):
        """One event line among near misses (the same message with one field drawn again) that the other services
        log: only the exact message says which service it was. (log_first's ask='service' asks the same of an
        event whose distractors differ in every field and come from any service.)"""
        r, log = self.rng, self._log_timeline()
        tmpl = r.choice(_EVENTS)
        vals = _fields(tmpl, r, self.words)
        log.event, log.svc = _render(tmpl, vals), r.choice(log.services)
        others = [s for s in log.services if s != log.svc]
        if not others:
            return None
        at = self._log_target(log, nseg, depth)

        def pick(s2, lvl, placed):
            if r.random() < 0.1:
                msg = _near_miss(tmpl, vals, r, self.words)
                return None if msg == log.event else (r.choice(others), 'ERROR', msg)
            return s2, lvl, self._log_routine()

        got = self._log_stream(log, nseg, at, pick)
        if got is None:
            return None
        st, when = got
        ev = r.choice([f'"{log.event}"', log.event, f"'{log.event}'"])
        q = r.choice([f'which service logged {ev}?', f'which service reported {ev}?', f'what service logged {ev}?',
                      f'Which service logged {ev}?', f'who logged {ev}?'])
        return self._finish(st, 'log_service', q, log.svc, dict(
            depth=st.marks['event'][0] / (nseg * self.L), event=log.event, service=log.svc, time=when,
            format=log.fmt, template=tmpl))

    # ---------------------------------------------------------------- batches
    def batch(self, bsz, nseg, families=None, qlen=64):
        """(S [B,nseg,L], Q [R,qlen], Y [R,qlen], owner [R]) LongTensors: R >= B question rows, row r asks about
        stream owner[r] (one row per stream, more with ask_all); Y[t] = Q[t+1] where Q[t+1] is an answer token
        (the question's tokens and padding are -100), so logits at t are trained to predict the answer."""
        import torch
        S = np.zeros((bsz, nseg, self.L), np.int64)
        rows, owner = [], []
        names, weights = _family_weights(families)
        for b in range(bsz):
            while True:
                s = self.sample(nseg, self.rng.choices(names, weights)[0])
                if len(s.question) + len(s.answer) <= qlen:
                    break
            S[b] = s.segments
            for q, a in [(s.question, s.answer)] + s.more:
                if len(q) + len(a) <= qlen:
                    rows.append((q, a))
                    owner.append(b)
        Q = np.zeros((len(rows), qlen), np.int64)
        Y = np.full((len(rows), qlen), -100, np.int64)
        for i, (q, a) in enumerate(rows):
            Q[i, :len(q) + len(a)] = q + a
            Y[i, len(q) - 1:len(q) + len(a) - 1] = a
        return torch.from_numpy(S), torch.from_numpy(Q), torch.from_numpy(Y), torch.tensor(owner)

    def eval_set(self, n, nseg, family, seed, **opts):
        """n fixed samples for evaluation (use a split='heldout' sampler); does not disturb the training rng."""
        saved = self.rng
        self.rng = random.Random(seed)
        try:
            return [self.sample(nseg, family, **opts) for _ in range(n)]
        finally:
            self.rng = saved


def decode_stream(tok, segments):
    """[(header, text)] of the documents in a stream, continuation headers and page markers removed (tests,
    debugging). The header is "kind path" as written (possibly truncated); text of a PDF loses its page marks."""
    L, flat = segments.shape[1], []
    for seg in segments.tolist():
        if seg[0] == SPECIAL['cont']:       # capped at L/2, so it may have no newline
            head = seg[:L >> 1]
            seg = seg[head.index(tok.nl[0]) + 1 if tok.nl[0] in head else L >> 1:]
        flat += seg
    docs, cur = [], None
    for t in flat:
        if t == SPECIAL['doc']:
            cur = [[], []]
            docs.append(cur)
        elif cur is not None:
            cur[1 if cur[1] or (cur[0] and cur[0][-1] == tok.nl[0]) else 0].append(t)
    return [(tok.decode(head).rstrip('\n'), _strip_pages(tok, body)) for head, body in docs]


def _strip_pages(tok, body):
    keep, skip = [], False
    for t in body:
        if t == SPECIAL['page']:
            skip = True
        elif skip:
            skip = t != tok.nl[0]
        else:
            keep.append(t)
    return tok.decode(keep)


def make_batches(sampler, bsz, nseg, families=None, qlen=64):
    """Endless batches. nseg may be an int, a callable, or a multiprocessing.Value (a curriculum in the main
    process can then lengthen the streams that DataLoader workers produce)."""
    while True:
        n = nseg() if callable(nseg) else getattr(nseg, 'value', nseg)
        yield sampler.batch(bsz, n, families, qlen)


def batch_dataset(sampler, bsz, nseg, families=None, qlen=64, seed=0):
    """An IterableDataset of whole batches (use DataLoader(ds, batch_size=None, num_workers=k)): each worker
    reseeds its (forked) copy of the sampler with seed*1000 + worker id."""
    import torch.utils.data as tud

    class Batches(tud.IterableDataset):
        def __iter__(self):
            info = tud.get_worker_info()
            sampler.reseed(seed * 1000 + (info.id if info else 0))
            return make_batches(sampler, bsz, nseg, families, qlen)

    return Batches()


def eval_set(pool, tokenizer_path, seg_len, n, nseg, family, seed=1234, **opts):
    """Held-out evaluation samples, fixed by the seed."""
    return TaskSampler(pool, tokenizer_path, seg_len, seed, 'heldout').eval_set(n, nseg, family, seed, **opts)


# -------------------------------------------------------------------- helpers
MAX_HDR = 48


def _camel(ws):
    return ws[0] + ''.join(x.capitalize() for x in ws[1:])


def _is_ident(c):
    return c.isalnum() or c in '_$'


def _find_word(text, name):
    """Offsets of name as a whole identifier in text (str.find: much faster than compiling a regex per name)."""
    out, n, i = [], len(name), text.find(name)
    while i >= 0:
        if (i == 0 or not _is_ident(text[i - 1])) and (i + n == len(text) or not _is_ident(text[i + n])):
            out.append(i)
        i = text.find(name, i + n)
    return out


def _defines(text, name):
    """Whether text looks like it defines name: a definition keyword before it, or a line that starts with it and
    assigns, annotates or declares (`name =`, `name:`, a method's `name(`). Errs towards yes: _absent asks only names
    this says no for."""
    n = re.escape(name)
    return re.search(rf'\b(def|class|function|interface|type|enum|const|let|var)\s+{n}\b|^[ \t]*(async\s+|static\s+|self\.)*'
                     rf'{n}\s*[:=(]', text, re.M) is not None


def _replace_word(text, name, new):
    hits = _find_word(text, name)
    if not hits:
        return text
    parts, prev = [], 0
    for i in hits:
        parts += [text[prev:i], new]
        prev = i + len(name)
    return ''.join(parts) + text[prev:]


def _family_weights(families):
    """None (all, equally), a list of names, or {name: weight}."""
    families = families or FAMILIES
    if isinstance(families, str):
        families = [families]
    if isinstance(families, dict):
        return list(families), list(families.values())
    return list(families), [1] * len(families)


def _depth(depth, r):
    if depth is None:
        return r.random()
    return {'start': 0.0, 'middle': 0.5, 'end': 1.0}.get(depth, depth)


# Log lines: formats (timestamp writer, line layout), routine messages and event templates with random fields.
_MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()


def _ts_iso(t):
    import time as _t
    return _t.strftime('%Y-%m-%dT%H:%M:%S', _t.gmtime(t)) + f'.{int(t * 1000) % 1000:03d}Z'


def _ts_py(t):
    import time as _t
    return _t.strftime('%Y-%m-%d %H:%M:%S', _t.gmtime(t)) + f',{int(t * 1000) % 1000:03d}'


def _ts_syslog(t):
    import time as _t
    g = _t.gmtime(t)
    return f'{_MONTHS[g.tm_mon - 1]} {g.tm_mday:2d} {_t.strftime("%H:%M:%S", g)}'


def _ts_clf(t):
    import time as _t
    g = _t.gmtime(t)
    return f'{g.tm_mday:02d}/{_MONTHS[g.tm_mon - 1]}/{g.tm_year}:{_t.strftime("%H:%M:%S", g)} +0000'


_LOG_FORMATS = {'iso': _ts_iso, 'py': _ts_py, 'syslog': _ts_syslog, 'clf': _ts_clf}


def _log_line(fmt, ts, host, svc, lvl, msg, r):
    if fmt == 'iso':
        return f'{ts} {lvl:5s} [{svc}] {msg}\n'
    if fmt == 'py':
        return f'{ts} {lvl} {svc}: {msg}\n'
    if fmt == 'syslog':
        return f'{ts} {host} {svc}[{r.randint(100, 65000)}]: {msg}\n'
    return f'[{ts}] {svc}.{lvl}: {msg}\n'


def _random_time(r):
    return r.uniform(1.2e9, 1.8e9)       # 2008 .. 2027


def _service(r, words):
    w = r.choice(words)
    return r.choice([f'{w}-api', f'{w}-worker', f'{w}d', f'{w}-svc', f'{w}', f'{w}-{r.choice(words)}'])


_ROUTINE = ['GET /{w}/{n} 200 {ms}ms', 'POST /api/{w} 201 {ms}ms', 'cache hit for {w}:{hex}', 'user {user} logged in',
            'processed {n} {w} records in {ms} ms', 'scheduled job {w} started', 'health check ok ({ms}ms)',
            'connected to {host}:{port}', 'retrying {w} request ({n}/5)', 'flushed {n} entries to {w}',
            'session {hex} expired', 'loaded config from /etc/{w}/{w}.conf', 'GET /static/{w}.js 304 {ms}ms']
_EVENTS = ['connection to {host}:{port} refused (error {code})', 'disk quota exceeded on volume vol-{hex}',
           'payment {hex} failed: card declined', 'worker {n} crashed with signal {sig}',
           'certificate for {w}.{w}.com expired', 'job {w}-{hex} timed out after {n}s',
           'user {user} locked out after {n} failed logins', 'replication lag on {w}-db-{n} exceeded {ms}ms',
           'out of memory in {w} (pid {pid})', 'checksum mismatch in segment {hex}', 'upstream {w}-{n} returned 502',
           'deadlock detected on table {w}_{w} (tx {hex})']


def _write(st, ids, pages, ins):
    """A host document's text as parts: page markers at their offsets ({offset: number}), inserted lines
    ({offset: [(text, ids, tag)]}) before the line starting there."""
    pts = sorted({0} | set(pages) | set(ins))
    for a, b in zip(pts, pts[1:] + [len(ids)]):
        page = pages.get(a)
        for _, x, tag in ins.get(a, ()):
            st.part(x, tag, page)
            page = None
        st.part(ids[a:b], None, page)


def _quotable(line):
    """A line worth quoting in a question: a few words, short enough for the question's budget, written as the
    question will be (it collapses runs of whitespace) and with no double quote (it quotes the line in them)."""
    s = js_collapse(line)
    return 16 <= len(s) <= 90 and s in line and '"' not in s and len(re.findall(r'[A-Za-z]{3,}', s)) >= 2


# Notes inserted into documents for the document questions: a fresh phrase {X} and a random field, about 12
# tokens in all (the phrase alone takes 4-8 tokens of the small vocabulary, a digit one token each).
_NOTES = ['Set {X} to {n}.', '{X} uses port {n}.', '{X} needs {n}.', '{X} has {n} parts.', 'Keep {X} under {n}.',
          '{X} moved to {w}.', 'Ask {w} about {X}.', '{X} was renamed {w}.', 'Use {X} with {w}.', 'Send {X} to {w}.',
          '{X} replaces {w}.']


_FIELDS = dict(host=lambda r, w: f'{r.choice(w)}-{r.randint(1, 99)}', port=lambda r, w: str(r.randint(1024, 65535)),
               code=lambda r, w: f'E{r.randint(1000, 9999)}',
               hex=lambda r, w: f'{r.getrandbits(32):08x}'[:r.choice((6, 8))],
               n=lambda r, w: str(r.randint(1, 999)), sig=lambda r, w: str(r.choice((6, 9, 11, 15))),
               w=lambda r, w: r.choice(w), user=lambda r, w: f'{r.choice(w)}{r.randint(1, 999)}',
               ms=lambda r, w: str(r.randint(1, 5000)), pid=lambda r, w: str(r.randint(100, 65000)))
_FIELD = re.compile(r'\{(\w+)\}')


def _fields(tmpl, r, words):
    """Random values of a template's fields, in order."""
    return [_FIELDS[f](r, words) for f in _FIELD.findall(tmpl)]


def _render(tmpl, vals):
    it = iter(vals)
    return _FIELD.sub(lambda m: next(it), tmpl)


def _fill(tmpl, r, words):
    return _render(tmpl, _fields(tmpl, r, words))


def _near_miss(tmpl, vals, r, words):
    """The message with one field drawn again: it differs from the original in that field only."""
    names = _FIELD.findall(tmpl)
    k = r.randrange(len(names))
    return _render(tmpl, vals[:k] + [_FIELDS[names[k]](r, words)] + vals[k + 1:])


_LOG_PREFIX = re.compile(r'^(?:\d{4}-\d\d-\d\d[ T][\d:.,]+\S*\s+|[A-Z][a-z]{2} +\d+ [\d:]+ \S+ |\[[^\]]*\]\s*)+')


def _log_bodies(recs, limit=20000):
    """Message bodies of real log lines (timestamps stripped), used between generated lines."""
    out = []
    for rec in recs:
        for line in rec['text'].splitlines():
            body = _LOG_PREFIX.sub('', line).strip()
            if 8 <= len(body) <= 160:
                out.append(body)
    return sorted(set(out))[:limit]


_FALLBACK_WORDS = set('''alpha beta cache config parser reader writer buffer stream socket server client handler
router session token auth user account order payment invoice report metric event queue worker task job
schedule timer clock index search query table record field column schema model view widget layout render
image audio video codec frame packet header body request response error status health probe monitor
'''.split())


def main():
    """python3 train/tasks.py --pool /tmp/pool.pkl.gz [--split heldout] [--show where_defined] [--bench]"""
    import argparse
    import time
    ap = argparse.ArgumentParser()
    ap.add_argument('--pool', required=True)
    ap.add_argument('--tokenizer', default=SHIPPED_TOKENIZER)
    ap.add_argument('--split', default='train')
    ap.add_argument('--seg_len', type=int, default=512)
    ap.add_argument('--nseg', type=int, default=8)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--show', help='print one sample of this family')
    ap.add_argument('--bench', action='store_true', help='stream tokens/s per family and length (one process)')
    ap.add_argument('--procs', type=int, default=os.cpu_count())
    a = ap.parse_args()
    t0 = time.time()
    ts = TaskSampler(a.pool, a.tokenizer, a.seg_len, a.seed, a.split)
    ts.pretokenize(a.procs, cache=f'{a.pool}.{a.split}.tok.npz')
    print(f'{len(ts.files)} files ({len(ts.code)} code, {len(ts.prose)} prose), {len(ts.packages)} packages, '
          f'{sum(len(x) for x in ts._ids) / 1e6:.1f}M tokens, ready in {time.time() - t0:.1f} s')
    if a.show:
        s = ts.sample(a.nseg, a.show)
        for head, text in decode_stream(ts.tok, s.segments):
            print(f'----- {head}\n{text[:400]}')
        print({k: v for k, v in s.meta.items() if k != 'paths'})
    if a.bench:
        for nseg in (2, 8, 32):
            for fam in FAMILIES:
                ts.sample(nseg, fam)
                t, n = time.time(), 0
                while time.time() - t < 1.0:
                    ts.sample(nseg, fam)
                    n += 1
                print(f'nseg {nseg:3d} {fam:17s} {n * nseg * a.seg_len / (time.time() - t) / 1e3:7.0f}K tok/s')
            ts.batch(8, nseg)     # imports torch
            t, n = time.time(), 0
            while time.time() - t < 1.0:
                ts.batch(8, nseg)
                n += 1
            print(f'nseg {nseg:3d} batch(8) all families {n * 8 * nseg * a.seg_len / (time.time() - t) / 1e3:7.0f}K tok/s')


if __name__ == '__main__':
    main()
