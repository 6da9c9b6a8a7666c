"""Which layers' memories take in a pass key (RUNS.md run 21).

For held-out one-segment pass-key streams: fold the segment, the same segment with other digits in its pass key
line, and another stream's segment; per layer, print the mean of ||M(key) - M(other digits)|| over ||M(key) -
M(other stream)||. Near 0: the layer's memory does not depend on the digits (it cannot answer the key from it);
around 1 or more: the digits change it as much as a whole new stream does.

  python3 train/key_probe.py --config train/configs/ctx-small-hybrid.json --weights runs/hy-c1/weights.pt \
      --pool /tmp/pool.pkl.gz --n 6 [--off 0,4,5]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from stream import SHIPPED_TOKENIZER  # noqa: E402
from tasks import TaskSampler, passkey_line  # noqa: E402
from train import fold_sample  # noqa: E402


def needle(tok, key):
    """The pass key line's tokens, as the passkey family writes them."""
    return tok.encode(passkey_line(key))


def find(seg, sub):
    """Start of the first occurrence of the token list sub in seg (-1: none)."""
    seg = list(seg)
    return next((i for i in range(len(seg) - len(sub) + 1) if seg[i:i + len(sub)] == sub), -1)


def other_digits(tok, key, rng):
    """A different key of as many digits whose pass key line has as many tokens (None if 200 draws found none)."""
    want = len(needle(tok, key))
    for _ in range(200):
        other = str(rng.integers(10 ** (len(key) - 1), 10 ** len(key)))
        if other != key and len(needle(tok, other)) == want:
            return other
    return None


def memories(model, segment):
    """Each layer's memory matrix M after folding one segment."""
    return [m[0].float() for m in model.unpack(fold_sample(model, segment[None]))]


@torch.no_grad()
def key_sensitivity(model, sampler, n, seed=0):
    """Per layer, the mean ratio over n streams (see the module's docstring)."""
    rng, ratios = np.random.default_rng(seed), []
    while len(ratios) < n:
        s = sampler.sample(1, 'passkey', depth='middle')
        seg, key = s.segments[0], s.meta['key']
        at, other = find(seg, needle(sampler.tok, key)), other_digits(sampler.tok, key, rng)
        if at < 0 or other is None:
            continue    # the line was cut by the segment's end, or no other key tokenises as long
        changed = seg.copy()
        line = needle(sampler.tok, other)
        changed[at:at + len(line)] = line
        a, b, c = (memories(model, x) for x in (seg, changed, sampler.sample(1, 'passkey', depth='middle').segments[0]))
        ratios.append([float((ma - mb).norm() / ((ma - mc).norm() + 1e-9)) for ma, mb, mc in zip(a, b, c)])
    return [round(float(r), 4) for r in np.mean(ratios, 0)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True)
    p.add_argument('--pool', required=True, help='the corpus pool (train/corpus.py --out)')
    p.add_argument('--n', type=int, default=6, help='streams to average over')
    p.add_argument('--off', default='', help="layers whose memories are switched off, e.g. '0,4,5' (train.py --drop_memory)")
    p.add_argument('--seed', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = load_model(a.config, a.weights).eval()
    off = tuple(int(x) for x in a.off.split(',') if x)
    model.use_memories(off)
    sampler = TaskSampler(a.pool, SHIPPED_TOKENIZER, model.cfg.seg_len, a.seed, split='heldout')
    print(json.dumps({'weights': a.weights, 'off': off, 'key_vs_stream': key_sensitivity(model, sampler, a.n)}))


if __name__ == '__main__':
    main()
