"""Held-out exact match of trained weights at several segment lengths (RUNS.md run 23).

The model has no length parameter (RoPE restarts every segment), so weights trained on short segments can be asked
at any length; train.py's end-of-run evaluation only asks at the config's (the product's 512 rows). This shows how
far a model trained at --seg_len carries before it is grown (train.py --grow_seg_len): pass keys with every memory
on, pass keys with --off's memories dropped (the memory tokens alone, as train.py --drop_memory trains them), and
where_defined exact match. One JSON line per length, on the CPU.

  python3 train/seg_len_eval.py --config train/configs/ctx-small-seq-hybrid-late.json \\
      --weights runs/hl64-c1/weights.pt --pool /tmp/pool.pkl.gz --seg_lens 64,128,256 --off 0,1,2 --n 32
"""
import argparse
import dataclasses
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
from export import load_model  # noqa: E402
from stream import SHIPPED_TOKENIZER  # noqa: E402
from train import evaluate  # noqa: E402


def exact_at(model, pool, seg_len, nseg=2, n=32, off=()):
    """{'seg_len', 'passkey', 'passkey_off' (when off), 'where_defined'}: held-out exact match on n streams of nseg
    segments of seg_len rows."""
    cfg = dataclasses.replace(model.cfg, seg_len=seg_len)   # evaluate draws its streams at cfg.seg_len
    args = argparse.Namespace(tokenizer=SHIPPED_TOKENIZER, eval_n=n)
    r = {'seg_len': seg_len, 'passkey': evaluate(model, pool, args, cfg, nseg, 'passkey', dev='cpu')}
    if off:
        with model.memories_off(off):
            r['passkey_off'] = evaluate(model, pool, args, cfg, nseg, 'passkey', dev='cpu')
    r['where_defined'] = evaluate(model, pool, args, cfg, nseg, 'where_defined', dev='cpu')
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True)
    p.add_argument('--pool', required=True, help='the corpus pool (train/corpus.py --out)')
    p.add_argument('--seg_lens', default='64,128,256,512')
    p.add_argument('--nseg', type=int, default=2, help='segments a stream')
    p.add_argument('--n', type=int, default=32, help='streams a number')
    p.add_argument('--off', default='', help="layers whose memories are also dropped for a second pass-key number, e.g. '0,1,2'")
    a = p.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = load_model(a.config, a.weights)
    pool = corpus.load_pool(a.pool)
    off = tuple(int(x) for x in a.off.split(',') if x)
    for L in (int(x) for x in a.seg_lens.split(',')):
        print(json.dumps({'weights': a.weights, 'nseg': a.nseg, 'n': a.n, **exact_at(model, pool, L, a.nseg, a.n, off)}), flush=True)


if __name__ == '__main__':
    main()
