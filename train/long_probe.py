"""Why pass keys fail at 2,048 segments (1M tokens) when they hold at 256: fold held-out pass-key streams of
--nsegs segments on the GPU, then answer them from the final memory as it is and with each layer's memory changed at
question time only — scaled down to the size it had after --ref segments, or zeroed — and folded again with every
layer's memory capped at that size after each segment (--sizes, --cap). Prints the exact match of each variant, the
memory sizes and the mean write gate per layer (RUNS.md run 16). --off: also with some layers' memories unread at
question time, and left out of the fold altogether (RUNS.md run 27). --reset_rows K: also folded with the every-row
memories emptied every K segments, the memory tokens' kept (RUNS.md run 28). --decay D: also folded with the every-row
memories multiplied by D before each segment's write (the config's mem_decay for those layers; RUNS.md run 30).

  python3 train/long_probe.py --config train/configs/ctx-small-seq-mem045.json --weights runs/kc/weights.pt \
      --pool /root/ctx-run/pool.pkl.gz --nsegs 256,2048 --n 16
  OPENBLAS_NUM_THREADS=1 python3 train/long_probe.py --config train/configs/ctx-small-seq-hybrid-late.json --weights runs/hg-f3/weights.pt \
      --pool /tmp/pool.pkl.gz --nsegs 256 --n 8 --off 0,1,2       (run 27, on the CPU: ~25 minutes)
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from stream import SHIPPED_TOKENIZER  # noqa: E402
from tasks import TaskSampler, load_pool  # noqa: E402
from train import autocast  # noqa: E402


def mem_norms(model, state):
    """Frobenius norm of each layer's M, [B, layers]."""
    return torch.stack([M.flatten(1).norm(dim=-1) for M, _ in model.unpack(state)], 1)


def scaled(model, state, factors):
    """state with layer l's M (not z) multiplied by factors[:, l] ([B, layers])."""
    return model.pack([(M * factors[:, l, None, None], z) for l, (M, z) in enumerate(model.unpack(state))])


@torch.no_grad()
def fold(model, S, ref, cap=None, reset=None):
    """Folds S [B,nseg,L]; returns the final state, the memory sizes after `ref` segments ([B, layers]) and the
    mean size per layer at each power of two. cap [B, layers]: M scaled down to at most it after every segment.
    reset (keep [state_size], K, offset): before segment i, when (i + offset) % K == 0, the state is multiplied by
    keep (the every-row layers' memories emptied)."""
    state, at_ref, trace = model.empty_state(S.shape[0], S.device), None, {}
    keep, every, offset = reset if reset is not None else (None, 0, 0)
    for i in range(S.shape[1]):
        if every and i > 0 and (i + offset) % every == 0:
            state = state * keep
        with autocast(S.device.type):
            state = model.fold(S[:, i], state)
        norms = mem_norms(model, state)
        if cap is not None:
            state = scaled(model, state, (cap / norms.clamp(min=1e-6)).clamp(max=1.0))
        n = i + 1
        if n == ref:
            at_ref = norms
        if n & (n - 1) == 0 or n == S.shape[1]:
            trace[n] = [round(float(x), 1) for x in norms.mean(0)]
    return state, at_ref, trace


@torch.no_grad()
def exact(model, state, Q, Y, owner):
    zero = state.new_zeros(())
    with autocast(state.device.type):
        return float(model.answer_loss(Q, Y, state[owner], zero, 1.0)[3])


def size_variants(model, state, ref, Q, Y, owner):
    """Answers from the final memory with each layer's M scaled to its size after --ref segments, or zeroed."""
    final = mem_norms(model, state)
    shrink = (ref / final.clamp(min=1e-6)).clamp(max=1.0)
    ones = torch.ones_like(final)
    variants = {'as is': ones, 'all layers scaled to their size at --ref': shrink}
    for l in [i for i, b in enumerate(model.blocks) if b.has_memory]:
        for what, v in (('scaled', shrink[:, l]), ('zeroed', 0)):
            f = ones.clone()
            f[:, l] = v
            variants[f'layer {l} {what}'] = f
    for name, f in variants.items():
        print(json.dumps({'variant': name, 'exact': round(exact(model, scaled(model, state, f), Q, Y, owner), 3)}), flush=True)


def off_variants(model, state, S, Q, Y, owner, off):
    """--off: exact match with the memories of layers `off` unread at question time only (the fold as the product
    does it), then with them left out of the whole fold. Which memories does a long input spoil: the unread ones, or
    the others through what the unread ones fed them? (RUNS.md run 27: hg-f3's memory tokens alone hold pass keys at
    256 segments, not after an all-on fold.)"""
    with model.memories_off(off):
        return {f'layers {list(off)} unread at question time': exact(model, state, Q, Y, owner),
                f'layers {list(off)} neither written nor read': exact(model, fold(model, S, S.shape[1])[0], Q, Y, owner)}


def reset_variants(model, S, Q, Y, owner, every):
    """--reset_rows K: fold with the every-row layers' memories emptied every K segments, the memory tokens' kept
    whole: at question time the every-row layers then hold at most K segments, as long as they held in training.
    Two alignments: windows from the stream's start (a fold that does not know its length), and windows ending at
    its last segment (the last window always full)."""
    keep, n = model.mask_without(every_row=True).to(S.device), S.shape[1]
    offsets = {'windows from the start': 0}
    if n % every:                     # otherwise the windows from the start end at the last segment too
        offsets['last window full'] = -n % every
    return {f'every-row memories emptied every {every} segments, {where}':
            exact(model, fold(model, S, n, reset=(keep, every, offset))[0], Q, Y, owner) for where, offset in offsets.items()}


def decay_variants(model, S, Q, Y, owner, decays):
    """--decay: fold with the every-row layers' memories decayed by d per segment (Block.decay, what a config's
    mem_decay gives the exported fold), the memory tokens' undecayed: a bound on their size (their steady state is
    that of ~1/(1-d) segments) that keeps 1M tokens in the range the model was trained in (hg-h6 answers garbage at 1M
    even for a key in the last segment, run 29)."""
    rows = [model.blocks[i] for i in model.memory_layers(every_row=True)]
    before, out = [b.decay for b in rows], {}
    for d in decays:
        for b in rows:
            b.decay = d
        state, _, trace = fold(model, S, S.shape[1])
        out[f'every-row memories decayed by {d} per segment'] = (exact(model, state, Q, Y, owner), trace[S.shape[1]])
    for b, d in zip(rows, before):
        b.decay = d
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True)
    p.add_argument('--pool', required=True)
    p.add_argument('--nsegs', default='256,2048', help='stream lengths in segments')
    p.add_argument('--ref', type=int, default=256, help='scale memories to their size after this many segments')
    p.add_argument('--n', type=int, default=16)
    p.add_argument('--sizes', action='store_true', help='at the longest length, also the scaled/zeroed/capped variants')
    p.add_argument('--cap', default='1,2', help='with --sizes: fold again with memories capped at these multiples of the --ref size')
    p.add_argument('--off', default='', help='e.g. 0,1,2: also answer with these layers\' memories unread, and fold again '
                   'without them (neither written nor read)')
    p.add_argument('--reset_rows', type=int, default=0, metavar='K',
                   help='also fold with the every-row layers\' memories emptied every K segments (two alignments)')
    p.add_argument('--decay', default='', help='e.g. 0.99,0.995: also fold with the every-row memories decayed by each per segment')
    a = p.parse_args()
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = load_model(a.config, a.weights).to(dev)
    pool = load_pool(a.pool)
    nsegs = [int(x) for x in a.nsegs.split(',')]
    off = [int(x) for x in a.off.split(',') if x]
    for nseg in nsegs:
        sampler = TaskSampler(pool, SHIPPED_TOKENIZER, model.cfg.seg_len, 12345 + nseg, split='heldout')
        S, Q, Y, owner = (t.to(dev) for t in sampler.batch(a.n, nseg, families=['passkey']))
        r = min(a.ref, nseg)
        model.log_gates(True)
        t0 = time.time()
        state, ref, trace = fold(model, S, r)
        gates = [round(float(g), 3) for g in model.gate_means()]
        model.log_gates(False)
        print(json.dumps({'nseg': nseg, 'exact': round(exact(model, state, Q, Y, owner), 3), 'mean_gate': gates,
                          'norm_M': trace[nseg], 'seconds': round(time.time() - t0, 1)}), flush=True)
        if off:
            for name, ex in off_variants(model, state, S, Q, Y, owner, off).items():
                print(json.dumps({'nseg': nseg, 'variant': name, 'exact': round(ex, 3)}), flush=True)
        if a.reset_rows:
            for name, ex in reset_variants(model, S, Q, Y, owner, a.reset_rows).items():
                print(json.dumps({'nseg': nseg, 'variant': name, 'exact': round(ex, 3)}), flush=True)
        for name, (ex, norms) in decay_variants(model, S, Q, Y, owner, [float(x) for x in a.decay.split(',') if x]).items():
            print(json.dumps({'nseg': nseg, 'variant': name, 'exact': round(ex, 3), 'norm_M': norms}), flush=True)
        if a.sizes and nseg == max(nsegs):
            print(json.dumps({'nseg': nseg, 'norm_M_by_segments': trace}), flush=True)
            size_variants(model, state, ref, Q, Y, owner)
            for c in [float(x) for x in a.cap.split(',') if x]:
                capped, _, tr = fold(model, S, r, cap=ref * c)
                print(json.dumps({'variant': f'folded with memories capped at {c} x their size at --ref',
                                  'exact': round(exact(model, capped, Q, Y, owner), 3), 'norm_M_by_segments': tr}), flush=True)


if __name__ == '__main__':
    main()
