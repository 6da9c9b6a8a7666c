"""Task sampler: streams of real documents, formatted by the stream format (stream.py), with one question.

Every sample is a stream of exactly nseg full segments (documents cut into windows at line boundaries, each
under a fresh random path) and a question whose answer lies somewhere in it. Families:

  passkey           real filler, one "The pass key is N." line at a controlled depth   -> the digits
  where_defined     code windows, one definition per window renamed to a fresh name      -> the file's path
  which_file_topic  "which file handles <topic>?", topic words unique to one file        -> the file's path
  log_first         generated log lines (real message bodies when the pool has logs)    -> timestamp / service

Answer-bearing strings (paths, identifiers, keys, timestamps, services, event ids) are random per sample:
answers that recur across samples are memorised by the weights and say nothing about the memory. Filler and
definitions are real text from the pool's split, and held-out packages never reach a training sample.

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

from corpus import STOPWORDS, load_pool
from stream import SPECIAL, Segmenter, Tokenizer, answer_tokens, question_prompt

FAMILIES = ('passkey', 'where_defined', 'which_file_topic', 'log_first')
CODE_EXT = {'python': ['.py'], 'js': ['.js', '.mjs', '.jsx', '.cjs'], 'ts': ['.ts', '.tsx'], 'c': ['.c', '.h'],
            'cpp': ['.cc', '.cpp', '.hpp'], 'go': ['.go'], 'rust': ['.rs'], 'java': ['.java'], 'shell': ['.sh'],
            'ruby': ['.rb'], 'perl': ['.pl'], 'lua': ['.lua']}
DIR_WORDS = ['src', 'lib', 'app', 'core', 'utils', 'internal', 'pkg', 'common', 'server', 'client', 'api',
             'services', 'tools', 'scripts', 'modules', 'components', 'handlers', 'models', 'tests', 'docs']


@dataclass
class Sample:
    segments: np.ndarray          # int32 [nseg, seg_len]
    question: list                # question_prompt ids: <q> ... <a>
    answer: list                  # answer_tokens ids: ... </s>
    family: str
    meta: dict = field(default_factory=dict)


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


class _Stream:
    """Feeds documents to the mirror Segmenter until nseg segments are complete; records where tagged parts
    end up (token positions in the flattened stream) and the text of every document (header included)."""

    def __init__(self, tok, seg_len, nseg):
        self.seg, self.L, self.nseg = Segmenter(tok, seg_len), seg_len, nseg
        self.out, self.marks, self.texts, self.pkgs = [], {}, [], set()

    @property
    def pos(self):
        return len(self.out) * self.L + self.seg.fill

    @property
    def full(self):
        return len(self.out) >= self.nseg

    def begin(self, kind, path, title=None):
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


class TaskSampler:
    def __init__(self, pool, tokenizer_path, seg_len=512, seed=0, split='train', win=(64, 768)):
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
            start = max(0, int(ltok[around]) - int(self.rng.random() * ntok))
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
            s = ws[0] + ''.join(x.capitalize() for x in ws[1:])
        return prefix + s

    def fresh_path(self, kind, lang=None, used=()):
        r = self.rng
        for _ in range(100):
            ndirs = r.choice((0, 1, 1, 2, 2, 3))
            dirs = [r.choice(DIR_WORDS) if r.random() < 0.3 else r.choice(self.words) for _ in range(ndirs)]
            ws = self.words_(r.choice((1, 1, 2, 2, 3)))
            if kind == 'code':
                ext = r.choice(CODE_EXT.get(lang, ['.txt']))
                if lang in ('js', 'ts'):
                    stem = r.choice([ws[0] + ''.join(x.capitalize() for x in ws[1:]), '-'.join(ws)])
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
    def _fill_doc(self, st, used, code_frac=0.7, tag=None):
        """One filler document: a code window, or prose as text (sometimes as a PDF with pages)."""
        r = self.rng
        pick_code = self.code and (not self.prose or r.random() < code_frac)
        i = r.choice(self.code if pick_code else self.prose)
        w = self.window(i, self.win_len(st))
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
        """One Sample of exactly nseg segments. opts: depth (0..1 or 'start'/'middle'/'end') for passkey,
        log_first and where_defined; event/question choice for log_first (ask='when'|'service')."""
        family = family or self.rng.choice(FAMILIES)
        for _ in range(20):    # a family may fail to place its fact (too short a stream for it, no unique word)
            s = getattr(self, '_' + family)(nseg, **opts)
            if s is not None:
                return s
        raise RuntimeError(f'{family}: no sample in 20 tries (nseg={nseg}, {len(self.files)} files)')

    def _finish(self, st, family, question, answer, meta):
        return Sample(st.segments(), question_prompt(self.tok, question), answer_tokens(self.tok, answer), family,
                      dict(meta, question=question, answer=answer, split=self.split, packages=sorted(st.pkgs)))

    def _passkey(self, nseg, depth=None):
        r, st, used = self.rng, _Stream(self.tok, self.L, nseg), set()
        key = str(r.randrange(10 ** (n := r.choice((4, 5, 5, 5, 6))) // 10, 10 ** n))
        needle = np.asarray(self.tok.encode(f'The pass key is {key}. Remember it. {key} is the pass key.\n'), np.int32)
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

    def _code_stream(self, nseg, rename=True):
        """Code windows around definitions (each with one definition renamed) mixed with other filler."""
        r, st, used, wins = self.rng, _Stream(self.tok, self.L, nseg), set(), []
        seen_files = set()
        while not st.full:
            if r.random() < 0.2 or not self.with_defs:
                self._fill_doc(st, used)
                continue
            i = r.choice(self.with_defs)
            if i in seen_files:
                i = r.choice(self.with_defs)
            seen_files.add(i)
            d = r.choice(self.eligible[i])
            w = self.window(i, self.win_len(st), around=d[2])
            w = self.rename(w, d) if rename else w
            k = len(wins)
            path, ti = self._add_window(st, w, used, tag=('end', k), def_tag=('def', k))
            wins.append((w, path, ti))
        return st, wins

    def _where_defined(self, nseg, depth=None):
        r = self.rng
        st, wins = self._code_stream(nseg)
        cands = [k for k, (w, _, _) in enumerate(wins) if w.name and st.inside(('def', k))]
        if not cands:
            return None
        if depth is not None:     # the candidate nearest the asked depth
            d = _depth(depth, r) * nseg * self.L
            cands.sort(key=lambda k: abs(st.marks[('def', k)][0] - d))
        else:
            r.shuffle(cands)
        big = '\n'.join(st.texts)
        for k in cands[:8]:
            w, path, ti = wins[k]
            own = st.texts[ti]
            if big.count(w.name) == own.count(w.name):      # the fresh name occurs in this file only
                what = {'class': 'class', 'function': 'function', 'method': 'method', 'interface': 'interface',
                        'type': 'type', 'enum': 'enum'}.get(w.def_kind, 'constant' if w.name.isupper() else 'variable')
                q = r.choice([f'where is {w.name} defined?', f'which file defines {w.name}?', f'where is the {what} {w.name}?',
                              f'in which file is {w.name} defined?', f'where can I find the definition of {w.name}?',
                              f'Where is {w.name} defined?', f'which file has the {what} {w.name}?'])
                return self._finish(st, 'where_defined', q, path, dict(
                    depth=st.marks[('def', k)][0] / (nseg * self.L), name=w.name, kind=w.def_kind,
                    candidates=len(cands), docs=len(st.texts), paths=[p for _, p, _ in wins]))
        return None

    def _which_file_topic(self, nseg, depth=None):
        r = self.rng
        st, wins = self._code_stream(nseg)
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
                    paths=[p for _, p, _ in wins]))
        return None

    def _log_first(self, nseg, depth=None, ask=None):
        """Log files of one timeline; an event (with distractors of the same kind, other ids and services)
        first logged at a chosen depth, sometimes repeated later."""
        r, st, used = self.rng, _Stream(self.tok, self.L, nseg), set()
        fmt = r.choice(list(_LOG_FORMATS))
        services = sorted({_service(r, self.words) for _ in range(r.randint(3, 9))})
        host = r.choice(self.words) + r.choice(['', '-01', '-prod', str(r.randint(1, 99))])
        t = _random_time(r)
        tmpl = r.choice(_EVENTS)
        event, svc = _fill(tmpl, r, self.words), r.choice(services)
        T = nseg * self.L
        ev_len = len(self.tok.encode(_log_line(fmt, _LOG_FORMATS[fmt](t), host, svc, 'ERROR', event, r))) + 2
        target = int(_depth(depth, r) * (T - ev_len))
        repeats, when = r.randint(0, 2), None
        while not st.full:
            lines = []
            # Lines are ~20-30 tokens: a document never runs far past the end of the stream.
            for _ in range(min(r.randint(20, 120), 8 + (T - st.pos) // 20)):
                t += r.expovariate(1 / r.choice((0.3, 2.0, 15.0)))
                s2, lvl = r.choice(services), r.choice(['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN'])
                if when is not None and repeats and r.random() < 0.02:
                    repeats, s2, lvl, msg = repeats - 1, svc, 'ERROR', event
                elif r.random() < 0.05:     # the same kind of event with other ids: distractors
                    msg, lvl = _fill(tmpl, r, self.words), 'ERROR'
                    if msg == event:
                        continue
                elif self.log_bodies and r.random() < 0.5:
                    msg = r.choice(self.log_bodies)
                else:
                    msg = _fill(r.choice(_ROUTINE), r, self.words)
                lines.append((_LOG_FORMATS[fmt](t), s2, lvl, msg))
            path = self.fresh_path('log', used=used)
            used.add(path)
            st.begin('log', path)
            text = [_log_line(fmt, ts, host, s2, lvl, msg, r) for ts, s2, lvl, msg in lines]
            enc = [np.asarray(x, np.int32) for x in self.tok.sp.encode(text)]
            starts = np.cumsum([0] + [len(x) for x in enc])
            j = None
            if when is None and st.predict(int(starts[-1])) >= target:
                # The line at the target depth becomes the event's first occurrence.
                j = st.nearest(starts[:-1], target, T - ev_len - min(len(st.seg.cont), self.L >> 1))
                when = lines[j][0]
                text[j] = _log_line(fmt, when, host, svc, 'ERROR', event, r)
                enc[j] = np.asarray(self.tok.encode(text[j]), np.int32)
            if j is None:
                st.part(np.concatenate(enc))
            else:
                st.part(np.concatenate(enc[:j] + [enc[j][:0]]))
                st.part(enc[j], 'event')
                st.part(np.concatenate(enc[j + 1:] + [enc[j][:0]]))
            st.texts[-1] += ''.join(text)
        if when is None or not st.inside('event'):
            return None
        ask = ask or r.choice(('when', 'service'))
        ev = r.choice([f'"{event}"', event, f"'{event}'"])
        if ask == 'when':
            q = r.choice([f'when did {ev} first occur?', f'when was {ev} first logged?', f'what time did {ev} first happen?',
                          f'When did {ev} first occur?'])
            answer = when
        else:
            q = r.choice([f'which service logged {ev}?', f'which service reported {ev}?', f'what service logged {ev}?'])
            answer = svc
        return self._finish(st, 'log_first', q, answer, dict(depth=st.marks['event'][0] / T, ask=ask, event=event,
                                                             service=svc, time=when, format=fmt))

    # ---------------------------------------------------------------- batches
    def batch(self, bsz, nseg, families=None, qlen=64):
        """(S [B,nseg,L], Q [B,qlen], Y [B,qlen]) LongTensors; Y[t] = Q[t+1] where Q[t+1] is an answer token
        (the question's tokens and padding are -100), so logits at t are trained to predict the answer."""
        import torch
        S = np.zeros((bsz, nseg, self.L), np.int64)
        Q = np.zeros((bsz, qlen), np.int64)
        Y = np.full((bsz, qlen), -100, np.int64)
        names, weights = _family_weights(families)
        for b in range(bsz):
            while True:
                s = self.sample(nseg, self.rng.choices(names, weights)[0])
                if len(s.question) + len(s.answer) <= qlen:
                    break
            S[b] = s.segments
            qa = s.question + s.answer
            Q[b, :len(qa)] = qa
            nq = len(s.question)
            Y[b, nq - 1:len(qa) - 1] = s.answer
        return torch.from_numpy(S), torch.from_numpy(Q), torch.from_numpy(Y)

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


def _fill(tmpl, r, words):
    fields = dict(host=lambda: f'{r.choice(words)}-{r.randint(1, 99)}', port=lambda: str(r.randint(1024, 65535)),
                  code=lambda: f'E{r.randint(1000, 9999)}', hex=lambda: f'{r.getrandbits(32):08x}'[:r.choice((6, 8))],
                  n=lambda: str(r.randint(1, 999)), sig=lambda: str(r.choice((6, 9, 11, 15))), w=lambda: r.choice(words),
                  user=lambda: f'{r.choice(words)}{r.randint(1, 999)}', ms=lambda: str(r.randint(1, 5000)),
                  pid=lambda: str(r.randint(100, 65000)))
    return re.sub(r'\{(\w+)\}', lambda m: fields[m.group(1)](), tmpl)


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
    ap.add_argument('--tokenizer', default=os.path.join(os.path.dirname(__file__), '..', 'models', 'ctx-small', 'tokenizer.model'))
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
