"""Held-out where_defined training streams written out as repositories, for `ctx eval repo`.

train.py's rank_eval scores a model on streams the sampler builds; `ctx eval repo` scores the product on a
directory. This writes each sampled stream's documents as files at their stream paths (a PDF's pages as one
.txt file, as ingest would not take a PDF of plain text), so the product can be run on the training
distribution: when the product does well here and badly on a real repository, what separates the two is the
repository, not the engine (RUNS.md run 10).

    /usr/bin/python3 train/stream_repo.py --pool /tmp/pool.pkl.gz --out /tmp/streams --n 6 --segments 8 --share_dir 0
    for d in /tmp/streams/s*; do node bin/run.js eval repo "$d" --model /tmp/exported --json > "$d.json"; done

`ctx eval repo` asks about every definition it finds, the renamed ones (fresh names, listed in each printed line)
and the others, which keep their own names as in a real repository; `--split` scores the two apart:

    /usr/bin/python3 train/stream_repo.py --pool /tmp/pool.pkl.gz --out /tmp/streams --n 6 --segments 8 --share_dir 0 --split
"""
import argparse
import json
import os
import shutil

import corpus
from stream import SHIPPED_TOKENIZER
from tasks import TaskSampler
from train import rank_eval_seed


class KeepStream(TaskSampler):
    """A TaskSampler that keeps the last sample's stream (its documents' texts) and its fresh names."""

    def _code_stream(self, nseg, rename=True):
        st, wins, defined = super()._code_stream(nseg, rename)
        self.fresh = sorted(w.name for w, _, _ in wins if w.name)
        return st, wins, defined

    def _finish(self, st, *rest, **more):
        self.last = st
        return super()._finish(st, *rest, **more)


def documents(st):
    """(path, text) of every document of a sampled stream, in stream order. st.texts hold each document's header
    line ('{kind} {path}'), a PDF's 'title: ...' line, then its text."""
    for t in st.texts:
        head, body = t.split('\n', 1)
        kind, path = head.split(' ', 1)
        if kind == 'pdf':
            path += '.txt'
            if body.startswith('title: '):
                body = body.split('\n', 1)[1]
        yield path, body


def write_repo(st, out):
    shutil.rmtree(out, ignore_errors=True)
    for path, text in documents(st):
        p = os.path.join(out, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'w', encoding='utf-8') as f:
            f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pool', required=True, help='corpus pool built by train/corpus.py')
    p.add_argument('--out', required=True, help='one directory per stream is written under it: s0, s1, ...')
    p.add_argument('--n', type=int, default=6)
    p.add_argument('--segments', type=int, default=8)
    p.add_argument('--seg_len', type=int, default=512)
    p.add_argument('--seed', type=int, default=None, help="default: train.py rank_eval's (rank_eval_seed)")
    p.add_argument('--tokenizer', default=SHIPPED_TOKENIZER)
    p.add_argument('--share_dir', type=float, default=0.5,
                   help="TaskSampler share_dir: 0 writes the streams of sessions 11-14 (every file in a directory of "
                        "its own); the default 0.5, the sampler's since run 14, puts files into shared directories")
    p.add_argument('--split', action='store_true', help="write nothing: read each stream's eval (OUT/sJ.json, from "
                   "`ctx eval repo --json`) and print identifier top-1/top-3 for fresh names and kept names apart")
    args = p.parse_args()
    seed = rank_eval_seed(args.segments) if args.seed is None else args.seed
    sampler = KeepStream(corpus.load_pool(args.pool), args.tokenizer, args.seg_len, seed, split='heldout',
                         share_dir=args.share_dir)
    score = {'fresh': [0, 0, 0], 'kept': [0, 0, 0]}
    for j in range(args.n):
        s = sampler.sample(args.segments, 'where_defined')
        d = os.path.join(args.out, f's{j}')
        if args.split:
            split_scores(d + '.json', set(sampler.fresh), score)
            continue
        write_repo(sampler.last, d)
        print(json.dumps({'dir': d, 'question': s.meta['question'], 'answer': s.meta['answer'], 'docs': s.meta['docs'],
                          'fresh': sampler.fresh}))
    if args.split:
        for k, (top1, top3, n) in score.items():
            print(json.dumps({'names': k, 'n': n, 'top1': top1, 'top3': top3}))


def split_scores(eval_json, fresh, score):
    """Adds one stream's identifier questions ("where is NAME defined?") to score[fresh|kept] = [top1, top3, n]."""
    with open(eval_json, encoding='utf-8') as f:
        results = json.load(f)['results']
    for r in results:
        if r['kind'] == 'identifier':
            name = r['question'].split()[2]
            row = score['fresh' if name in fresh else 'kept']
            row[0] += r['top1']
            row[1] += r['top3']
            row[2] += 1


if __name__ == '__main__':
    main()
