"""Train the ctx model on long streams with questions answered from memory alone (on the lent GPU).

One call runs for --minutes, then saves; the next call resumes from --ckpt (model, optimiser, curriculum,
step). A curriculum doubles the number of segments per stream whenever the running answer accuracy at the
current length reaches --mastery. Logs one JSON line per --log_every steps, and held-out evaluation at the end.

  python3 train/train.py --config train/configs/ctx-small.json --pool /tmp/pool.pkl.gz \
      --ckpt /root/run/ckpt.pt --minutes 9 --out $OUT
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, CtxModel  # noqa: E402
from stream import SHIPPED_TOKENIZER, answer_tokens  # noqa: E402
from tasks import FAMILIES as FAMILY_NAMES, TaskSampler  # noqa: E402
import corpus  # noqa: E402

FAMILIES = {'passkey': 0.25, 'where_defined': 0.40, 'which_file_topic': 0.20, 'log_first': 0.15,
            'which_page': 0.10, 'verbatim': 0.10, 'log_service': 0.08,
            'repo_defined': 0.0}   # run 35's family: drawn only when --families gives it a weight
assert set(FAMILIES) == set(FAMILY_NAMES), 'every family the sampler knows has a default weight here'


def autocast(dev):
    """bfloat16 autocast on the GPU; a no-op on the CPU (unit tests and smoke runs)."""
    import contextlib
    return torch.autocast('cuda', dtype=torch.bfloat16) if dev == 'cuda' else contextlib.nullcontext()


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--config', required=True)
    p.add_argument('--pool', required=True, help='corpus pool built by train/corpus.py')
    p.add_argument('--tokenizer', default=SHIPPED_TOKENIZER)
    p.add_argument('--ckpt', required=True, help='checkpoint to resume from and save to')
    p.add_argument('--init', help='start from these weights (state_dict, e.g. brought back split in parts)')
    p.add_argument('--minutes', type=float, default=9.0)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--tokens_per_step', type=int, default=131072)
    p.add_argument('--min_batch', type=int, default=8)
    p.add_argument('--start_segs', type=int, default=2,
                   help="segments per stream at the start; a resumed checkpoint keeps its own count (RUNS.md run 8, command 4)")
    p.add_argument('--max_segs', type=int, default=64)
    p.add_argument('--mix_segs', type=int, default=0, metavar='SHORTEST',
                   help="each batch's streams are SHORTEST to the curriculum's length long, drawn log-uniformly (each doubling "
                        "as often), at the same tokens a step (but --min_batch streams at least): names and pass keys trained at one length fade by 4x it (RUNS.md "
                        "runs 24-25), the product's inputs are 10-2,000 segments. Mastery then counts the mix")
    p.add_argument('--mastery', type=float, default=0.7)
    p.add_argument('--ans_weight', type=float, default=5.0)
    p.add_argument('--burn_segs', type=int, default=0,
                   help='before each batch, fold 0..N more segments of the same streams without gradients (run_stream burn)')
    p.add_argument('--carry', type=float, default=0,
                   help='each stream starts from the memory the last batch\'s stream in its place ended with, which is reset '
                        'with probability 1/N per step (N steps on average): memories of hundreds to thousands of segments '
                        'at no extra cost, where --burn_segs pays a forward pass per burnt segment (RUNS.md run 11)')
    p.add_argument('--gate_cost', metavar='[LAYERS:]C',
                   help='adds C times the mean write gate of the layers with memory (or of LAYERS, e.g. 0:4) to the loss: '
                        'every row that writes erases part of what rows with similar keys wrote before it, so a memory that '
                        'most rows leave alone keeps a name for longer (RUNS.md runs 13, 34)')
    p.add_argument('--ask_back', type=int, default=0,
                   help='with --carry: also ask the questions of each row\'s last N streams, after the current one, while its '
                        'carried memory holds them: answers 16-16(N+1) segments back, whose loss reaches the current '
                        'segments\' writes (what should not overwrite them) at the cost of decoding a few more rows')
    p.add_argument('--past_weight', type=float, default=1.0,
                   help='--ask_back\'s answer loss times this: with ask_back 3 the past rows outnumber the current ones '
                        'three to one, and at weight 1 their near-chance loss cut the current streams\' exact match in '
                        'half in 7 minutes (RUNS.md run 14)')
    p.add_argument('--fresh_row_memory', action='store_true',
                   help='with --carry: the layers whose every row writes start each stream empty, and only the memory-token '
                        'layers carry: an answer from an earlier stream (--ask_back) can then come only from those, which '
                        'a long input does not overwrite (RUNS.md run 17)')
    p.add_argument('--fresh_token_memory', action='store_true',
                   help='with --carry, the inverse of --fresh_row_memory: the memory-token layers start each stream empty and '
                        'only the every-row layers carry, so that only they learn to live with a long memory (run 24: carrying '
                        'both cost the memory tokens\' own pass keys, 0.94 -> 0.47)')
    p.add_argument('--fast_memory', metavar='LAYERS:MULT',
                   help='the memory parameters of these layers learn MULT times faster (e.g. 0:10): a memory added to '
                        'trained weights (zero values at the start) barely moved at the base rate (RUNS.md run 17). Give '
                        'it from a run\'s first chunk on: the optimizer\'s groups are part of its checkpoint')
    p.add_argument('--drop_memory', metavar='LAYERS:P',
                   help="e.g. '0,4,5:0.5': on that share of steps these layers' memories are switched off (not read, not "
                        "written), so the model must answer from its other memories too: a memory grown beside ones that "
                        "already answer stays unused otherwise (RUNS.md runs 16, 19). Evaluation uses every memory, and "
                        "also reports pass keys with these memories off (exact_dropped)")
    p.add_argument('--drop_families', metavar='FAMILIES',
                   help="the families (as --families) that steps with memories dropped draw from, e.g. 'passkey': run 20's "
                        "memory-token layers learnt nothing where they also had to answer names that they cannot bind "
                        "(default: --families)")
    p.add_argument('--long_steps', metavar='SEGS:P',
                   help="e.g. '64:0.15': that share of steps are streams of SEGS segments with every memory on, from "
                        "--long_families, beside the curriculum's length: run 29 trained pass keys at 64 segments with every "
                        "memory on (they then held at 128K) but lost names that the 16-segment steps keep. Their exact "
                        "match has its own running mean (ema_long), outside the curriculum's mastery")
    p.add_argument('--long_dropped', metavar='SEGS:P',
                   help="e.g. '256:0.1': that share of steps are streams of SEGS segments from --long_families with the "
                        "--drop_memory layers off: the memory tokens alone, trained at the lengths where the every-row memories "
                        "break the all-on fold (RUNS.md run 30: no hg model answers past ~512 segments with every memory on, "
                        "its memory tokens alone keep 3 in 4 at 2,048). Their exact match has its own running mean (ema_long_dropped)")
    p.add_argument('--long_families', metavar='FAMILIES', help='the families (as --families) of --long_steps and --long_dropped (default: --families)')
    p.add_argument('--ckpt_above', type=int, default=16,
                   help='recompute activations per segment above this many segments: memory for time (run 2 did it above 8 and ran at a third of its 8-segment speed at 16)')
    p.add_argument('--families', default=','.join(FAMILIES),
                   help='comma-separated names, each optionally name:weight (default weights: FAMILIES)')
    add_sampler_flags(p)
    p.add_argument('--absent', type=float, default=0.0, help='where_defined and repo_defined: how often a question asks a name '
                   'no file of the stream defines, answered "none" (TaskSampler absent; training streams only): what lets '
                   'scores from several memories of one repository be compared (RUNS.md run 37)')
    p.add_argument('--ask_all', action='store_true', help='where_defined asks about every renamed definition of a stream (up to 4) from the one memory state (TaskSampler ask_all)')
    p.add_argument('--seg_len', type=int, help="segment length of the training streams (default: the config's). The model "
                   "does not depend on it; held-out numbers stay at the config's (the product's), except rank_eval's "
                   "as-trained ones. A curriculum knob: a name binds to the path before it in short segments first (RUNS.md run 6), "
                   "and memory tokens switch on from scratch at 64-128 rows, not at 512 (run 23). On a resumed run the "
                   "checkpoint's length stays unless this is longer")
    p.add_argument('--grow_seg_len', type=int, default=0,
                   help='on mastery, double the training segments up to this many rows before adding segments (run 23: '
                        'trained at 64 rows only, memory tokens answered no pass key at 512; grown to 256, 0.81)')
    p.add_argument('--gate_open_steps', type=int, default=0,
                   help="the memory's write gates held open on every row for this many steps, then learned: closed gates pass "
                        "no gradient to what a row would write, and they close before a name's row has learned to write its file (RUNS.md run 7)")
    p.add_argument('--gate_reset', type=float, help='on a fresh start: write gates restarted at this bias with zero weights (sigmoid(2) = 0.88 on every row)')
    p.add_argument('--eval_segs', default='4,16,64')
    p.add_argument('--eval_n', type=int, default=64)
    p.add_argument('--eval_long', default='', help='pass keys only, also at these segment counts (e.g. 256,2048: 128K and 1M tokens), '
                   'on min(eval_n, 16) streams')
    p.add_argument('--workers', type=int, default=12)
    p.add_argument('--log_every', type=int, default=25)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=os.environ.get('OUT', '.'))
    return p.parse_args()


def add_sampler_flags(p):
    """The where_defined sampler flags curriculum() reads, on parser p: train.py's and the probes' (binding_probe.py
    probe_args), so that a new one cannot reach one parser and not the other (--near did, and broke the probes)."""
    p.add_argument('--def_lead', type=int, help='where_defined curriculum: at most this many tokens of a file before its definition (TaskSampler)')
    p.add_argument('--win', help="min,max tokens of a file window (TaskSampler win, default its 64,768): a high minimum means fewer, longer files per stream, a curriculum knob for where_defined")
    p.add_argument('--max_defs', type=int, help='where_defined curriculum: at most this many files with a renamed definition per stream (TaskSampler)')
    p.add_argument('--near', type=float, help='where_defined: how often a later code file assigns a name sharing a word '
                   'with a renamed name (TaskSampler near): pieces of a name stop pointing at one file (RUNS.md run 13)')
    p.add_argument('--keep_names', type=float, help='where_defined: how often the asked definition keeps its own name instead of '
                   'a fresh one (TaskSampler keep_names): a real repository asks about names as written (RUNS.md run 15)')
    p.add_argument('--names_per_file', type=int, help='where_defined with --ask_all: up to this many names of one file asked, '
                   'the others under their own names (TaskSampler names_per_file): a repository asks many per file (RUNS.md run 26)')
    p.add_argument('--share_dir', type=float, help='where_defined: how often a code or text file goes into a directory an earlier '
                   'file of its stream is in (TaskSampler share_dir, default 0.5; run 8 bound names from scratch at 0)')
    p.add_argument('--mentions', type=float, help='where_defined: how often a later code file imports or calls a renamed name '
                   '(TaskSampler mentions): a real repository\'s files mention each other\'s names (RUNS.md run 10)')


def family_mix(spec):
    """'passkey:1,where_defined:1' -> {name: weight}; a name without a weight keeps its FAMILIES weight."""
    mix = {}
    for item in spec.split(','):
        name, _, w = item.partition(':')
        if name not in FAMILIES:
            raise SystemExit(f'unknown family {name!r} (known: {", ".join(FAMILIES)})')
        mix[name] = float(w) if w else FAMILIES[name]
    return mix


def eval_families(args):
    """The families the end-of-run evaluation asks, each once: the training mix's, then the dropped steps'
    (--drop_families), which the full steps need not ask at all (run 22: with --families where_defined alone, pass
    keys went unmeasured)."""
    return list({**family_mix(args.families), **(family_mix(args.drop_families) if args.drop_families else {})})


def curriculum(args):
    """The TaskSampler options the training streams are drawn with, those given only (the rest keep the sampler's
    defaults, the product-like streams): empty when training on those, non-empty when held-out evaluation should
    also report streams drawn as trained."""
    opts = {'win': tuple(int(x) for x in args.win.split(',')) if args.win else None,
            'def_lead': args.def_lead, 'max_defs': args.max_defs, 'mentions': args.mentions, 'near': args.near,
            'keep_names': args.keep_names, 'share_dir': args.share_dir, 'names_per_file': args.names_per_file}
    return {k: v for k, v in opts.items() if v is not None}


def train_seg_len(args, cfg):
    """The segment length training streams are drawn at (--seg_len, else the config's)."""
    return args.seg_len or cfg.seg_len


class Batches(torch.utils.data.IterableDataset):
    """Endless batches at the length the curriculum asks for (shared through a value the workers read), each
    with its step's kind: 'dropped' drops memories (--drop_memory, --drop_families), 'long' is --long_steps' length
    with every memory on (--long_families), 'long_dropped' --long_dropped's length with memories dropped (--long_families),
    'full' is the rest."""

    def __init__(self, pool, args, cfg, nseg_value, seg_len_value=None):
        self.pool, self.args, self.cfg, self.nseg, self.seg_len = pool, args, cfg, nseg_value, seg_len_value

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        seed = self.args.seed * 1000 + wid + int(time.time()) % 100000
        L = sampler = None
        mix = family_mix(self.args.families)
        drop_mix = family_mix(self.args.drop_families) if self.args.drop_families else mix
        drop_p = parse_drop_memory(self.args.drop_memory)[1]
        (long_segs, long_p), (ld_segs, ld_p) = parse_long(self.args).values()
        long_mix = family_mix(self.args.long_families) if self.args.long_families else mix
        rng = random.Random(seed)
        while True:
            # decided here, not in the training loop: a dropped or long step's batch may come from other families
            r = rng.random()
            kind = 'long' if r < long_p else 'long_dropped' if r < long_p + ld_p else 'dropped' if rng.random() < drop_p else 'full'
            nseg = {'long': long_segs, 'long_dropped': ld_segs}.get(kind) or draw_segs(rng, self.nseg.value, self.args.mix_segs)
            want = self.seg_len.value if self.seg_len is not None else train_seg_len(self.args, self.cfg)
            if want != L:   # the first batch, or the curriculum lengthened the segments (--grow_seg_len)
                L = want
                sampler = TaskSampler(self.pool, self.args.tokenizer, L, seed + L, split='train', ask_all=self.args.ask_all,
                                      absent=self.args.absent, **curriculum(self.args))
            bsz = max(self.args.min_batch, self.args.tokens_per_step // (nseg * L))
            burn = rng.randint(0, self.args.burn_segs)
            families = {'long': long_mix, 'long_dropped': long_mix, 'dropped': drop_mix, 'full': mix}[kind]
            yield nseg, burn, kind, *sampler.batch(bsz, burn + nseg, families=families)


def draw_segs(rng, longest, shortest=0):
    """A batch's segments per stream: the curriculum's length, or with --mix_segs one drawn log-uniformly between
    shortest and it, so that each doubling of length gets as many steps."""
    if not shortest or shortest >= longest:
        return longest
    return min(longest, max(shortest, round(math.exp(rng.uniform(math.log(shortest), math.log(longest))))))


def stale(nseg, seg_len, st, args):
    """A batch drawn before the curriculum's last step (the workers read the length shared with them): the wrong
    segments, or the wrong count of them; with --mix_segs any count up to the current length is one the mix draws."""
    if seg_len != st['seg_len']:
        return True
    if nseg in [segs for segs, _ in parse_long(args).values()]:
        return False
    return nseg > st['nseg'] if args.mix_segs else nseg != st['nseg']


@torch.no_grad()
def fold_segments(model, S, state=None):
    """The memory after folding segments S [B,n,N] one by one into state (None: an empty one), without gradients."""
    state = model.empty_state(S.shape[0], S.device) if state is None else state
    for i in range(S.shape[1]):
        state = model.fold(S[:, i], state)
    return state


def run_stream(model, S, Q, Y, owner=None, use_memory=True, lm=True, ans_weight=5.0, ckpt_segments=False, burn=0, state=None):
    """Forward over a batch of streams from the memory `state` (None: empty); per-segment activation checkpointing
    keeps long streams in memory. Returns CtxModel.forward's loss, lm, answer loss and exact match, then the memory
    the streams end with (with gradients: --ask_back asks earlier streams' questions from it).
    burn: the first `burn` segments are folded without gradients (truncated backpropagation through time): the
    model then learns on a memory as crowded as long inputs make it, at the cost of a forward pass per burnt
    segment (--burn_segs; RUNS.md run 9: trained on 16 segments alone, pass keys failed at 256)."""
    B, nseg, _ = S.shape
    state = model.empty_state(B, S.device) if state is None else state
    if burn and use_memory:
        state = fold_segments(model, S[:, :burn], state)
    lm_loss = S.new_zeros((), dtype=torch.float32)
    step = model.fold_lm if lm else (lambda tok, st: (model.fold(tok, st), lm_loss))
    for i in range(burn, nseg):
        new, l = checkpoint(step, S[:, i], state, use_reentrant=False) if ckpt_segments else step(S[:, i], state)
        state = new if use_memory else state
        lm_loss = lm_loss + l / (nseg - burn)
    out = model.answer_loss(Q, Y, state if owner is None else state[owner], lm_loss, ans_weight)
    return (*out, state)


@torch.no_grad()
def evaluate(model, pool, args, cfg, nseg, family, use_memory=True, dev='cuda'):
    """Held-out exact match (every answer token right under teacher forcing = greedy decoding succeeds)."""
    model.eval()
    sampler = TaskSampler(pool, args.tokenizer, cfg.seg_len, 12345 + nseg, split='heldout')
    hits, n = 0.0, 0
    bs = max(1, min(32, args.eval_n, 16384 // nseg))   # no gradients: only the state and one segment are live
    while n < args.eval_n:
        S, Q, Y, owner = sampler.batch(bs, nseg, families=[family])
        with autocast(dev):
            ex = run_stream(model, S.to(dev), Q.to(dev), Y.to(dev), owner.to(dev), use_memory=use_memory, lm=False)[3]
        hits += float(ex) * bs
        n += bs
    model.train()
    return hits / n


def fold_sample(model, segments, dev='cpu'):
    """The memory state after folding a sample's segments (int array [nseg, seg_len]) one by one, as the product does."""
    return fold_segments(model, torch.from_numpy(segments.astype('int64'))[None].to(dev))


@torch.no_grad()
def answer_logliks(model, state, pairs):
    """Log-likelihood of each (question prompt ids, answer ids) pair's answer, decoded from the one memory state
    [1, state_size]: how the product ranks candidate answers (src/engine/decode.ts, scoreAnswers)."""
    rows = [q + a for q, a in pairs]
    Q = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, r in enumerate(rows):
        Q[i, :len(r)] = torch.tensor(r)
    Q = Q.to(state.device)
    logits, _ = model.decode(Q, state.expand(len(rows), -1))
    lp = torch.log_softmax(logits.float(), -1)
    return [float(lp[i, len(q) - 1:len(r) - 1].gather(-1, Q[i, len(q):len(r), None]).sum())
            for i, ((q, _), r) in enumerate(zip(pairs, rows))]


def rank_eval_seed(nseg):
    """The seed of rank_eval's held-out streams of nseg segments (train/stream_repo.py writes the same ones)."""
    return 777 + nseg


@torch.no_grad()
def rank_eval(model, pool, args, cfg, nseg, use_memory=True, dev='cuda', as_trained=False, family='where_defined', **opts):
    """where_defined (or family's) questions as the product answers them: every file path of the stream scored by the model's
    log-likelihood as the answer; top-1 and top-3 are how often the right path ranks first / in the first 3.
    Sees partial learning long before exact generation of a ~15-token path does. as_trained: held-out streams
    drawn with the training curriculum's options (--win, --def_lead, --seg_len) instead of the product-like defaults;
    opts: further TaskSampler options (keep_names=1: every asked name as written, as in a real repository)."""
    model.eval()
    L = train_seg_len(args, cfg) if as_trained else cfg.seg_len
    sampler = TaskSampler(pool, args.tokenizer, L, rank_eval_seed(nseg), split='heldout', **(curriculum(args) if as_trained else {}), **opts)
    top1 = top3 = 0
    for _ in range(args.eval_n):
        s = sampler.sample(nseg, family)
        paths = s.meta['paths']
        with autocast(dev):
            state = fold_sample(model, s.segments, dev) if use_memory else model.empty_state(1, dev)
            score = answer_logliks(model, state, [(s.question, answer_tokens(sampler.tok, p)) for p in paths])
        order = sorted(range(len(paths)), key=lambda i: -score[i])
        rank = [paths[i] for i in order].index(s.meta['answer'])
        top1 += rank == 0
        top3 += rank < 3
    model.train()
    return top1 / args.eval_n, top3 / args.eval_n


class Carry:
    """--carry: the memory each batch row's stream ended with, and how many segments it holds (its age), so that
    the next batch's stream in that row starts from it. Each row is reset to an empty memory with probability
    1/mean per step, so ages are spread geometrically around mean steps' worth of segments: a model trained this
    way meets memories as full as a long input makes them, where --burn_segs pays a forward pass per burnt segment.
    ask_back K: the questions of each row's last K streams are kept while the row's memory holds them (until it is
    reset), so that they can be asked again after the next stream (past()). mask [state_size]: what of the state
    is carried (--fresh_row_memory; None: all of it)."""

    def __init__(self, mean, ask_back=0, mask=None):
        self.mean, self.ask_back, self.mask, self.state, self.age, self.asked = mean, ask_back, mask, None, None, []

    def start(self, B, dev):
        """The memory a batch of B streams starts from (None: empty), after this step's resets."""
        if self.state is None or self.state.shape[0] != B:    # first step, or the curriculum changed the batch
            self.state, self.age, self.asked = None, torch.zeros(B), []
            return None
        keep = (torch.rand(B) >= 1 / self.mean).float()
        self.age *= keep
        self.asked = [(q[keep[o] > 0], y[keep[o] > 0], o[keep[o] > 0]) for q, y, o in self.asked]
        start = self.state.to(dev) * keep[:, None].to(dev)
        return start if self.mask is None else start * self.mask.to(dev)

    def end(self, state, nseg, asked=None):
        """state: the memory the streams ended with; asked: their questions (Q, Y, owner), kept for ask_back."""
        self.state, self.age = state.detach(), self.age + nseg
        if self.ask_back and asked is not None:
            self.asked = (self.asked + [tuple(t.detach().cpu() for t in asked)])[-self.ask_back:]

    def past(self, dev):
        """The kept questions of earlier streams, (Q, Y, owner) padded to one length, or None."""
        rows = [a for a in self.asked if a[0].shape[0]]
        if not rows:
            return None
        L = max(q.shape[1] for q, _, _ in rows)
        Q = torch.cat([F.pad(q, (0, L - q.shape[1])) for q, _, _ in rows])
        Y = torch.cat([F.pad(y, (0, L - y.shape[1]), value=-100) for _, y, _ in rows])
        return Q.to(dev), Y.to(dev), torch.cat([o for _, _, o in rows]).to(dev)


def carry_mask(model, args):
    """What of a carried state the next stream starts from (Carry's mask): without the every-row layers'
    (--fresh_row_memory) or without the memory-token layers' (--fresh_token_memory); None: all of it."""
    if (args.fresh_row_memory or args.fresh_token_memory) and not args.carry:
        raise SystemExit('--fresh_row_memory and --fresh_token_memory say what a carried memory keeps: give --carry too')
    if args.fresh_row_memory and args.fresh_token_memory:
        raise SystemExit('--fresh_row_memory and --fresh_token_memory together carry nothing: give one')
    if args.fresh_row_memory:
        return model.mask_without(every_row=True).cpu()
    if args.fresh_token_memory:
        return model.mask_without(every_row=False).cpu()
    return None


def save(path, model, opt, state, carry=None):
    tmp = path + '.tmp'
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'state': state,
                'carry': None if carry is None or carry.state is None else (carry.state.cpu(), carry.age)}, tmp)
    os.replace(tmp, path)


def save_weights_parts(model, out_dir, part_bytes=15 * 2 ** 20):
    """Weights to bring back from the GPU machine: float16, split in files under the 16 MiB transfer limit."""
    import io
    buf = io.BytesIO()
    torch.save({k: v.half() for k, v in model.state_dict().items()}, buf)
    data = buf.getvalue()
    for i in range(0, len(data), part_bytes):
        with open(os.path.join(out_dir, f'weights.pt.{i // part_bytes:02d}'), 'wb') as f:
            f.write(data[i:i + part_bytes])


MEMORY_PARAMS = ('mq', 'mk', 'mv', 'mh', 'mb', 'qconv', 'kconv')


def make_optimizer(model, lr, fused=False, fast_layers=(), fast_mult=1.0):
    """AdamW with weight decay on matrices only. The paper's per-head gates (infini) need a higher learning
    rate and no decay to move at all (RESULTS.md): their group carries lr_mult, which set_lr applies. So do the
    memory parameters of fast_layers (--fast_memory): a memory added to trained weights starts with zero values,
    and at the base rate they grew ~0.4 in norm per 300 steps where trained layers' are 11-17 (RUNS.md run 17)."""
    def fast(n):
        parts = n.split('.')
        return parts[0] == 'blocks' and int(parts[1]) in fast_layers and parts[2] in MEMORY_PARAMS
    def decay_split(params, **extra):   # weight decay on matrices only
        return [{'params': [p for p in params if p.dim() >= 2], 'weight_decay': 0.1, **extra},
                {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0, **extra}]
    named = list(model.named_parameters())
    gates = [p for n, p in named if n.endswith('beta')]
    quick = [p for n, p in named if fast(n)]
    groups = decay_split([p for n, p in named if not fast(n) and not n.endswith('beta')])
    if quick:
        groups += decay_split(quick, lr_mult=fast_mult)
    if gates:
        groups.append({'params': gates, 'weight_decay': 0.0, 'lr_mult': 30})
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), **({'fused': True} if fused else {}))


def optimizer_step(model, opt, loss):
    """Backward, gradient clipping and step; a non-finite loss or gradient norm leaves the weights as they were
    (returns False)."""
    opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return False
    loss.backward()
    if not torch.isfinite(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)):
        opt.zero_grad(set_to_none=True)
        return False
    opt.step()
    return True


def parse_layers_value(spec, flag, value_name, default, none_value):
    """'LAYERS:VALUE' (e.g. '0:10' or '3,4:5') -> ((layers...), float(VALUE or default)); None -> ((), none_value).
    value_name names VALUE in the error (MULT, P)."""
    if not spec:
        return (), none_value
    layers, _, value = spec.partition(':')
    try:
        return tuple(int(x) for x in layers.split(',')), float(value or default)
    except ValueError:
        raise SystemExit(f'{flag} {spec!r}: expected LAYERS:{value_name}, e.g. 0:{default:g}')


def parse_gate_cost(spec):
    """--gate_cost 'C' (every layer with memory) or 'LAYERS:C' -> ((layers...) or (), C); None -> ((), 0.0)."""
    if spec and ':' not in spec:
        try:
            return (), float(spec)
        except ValueError:
            raise SystemExit(f'--gate_cost {spec!r}: expected C or LAYERS:C, e.g. 4 or 0:4')
    return parse_layers_value(spec, '--gate_cost', 'C', 4, 0.0)


def parse_fast_memory(spec):
    """--fast_memory 'LAYERS:MULT' -> ((layers...), mult); None -> ((), 1.0)."""
    return parse_layers_value(spec, '--fast_memory', 'MULT', 10, 1.0)


def track_exact(st, exact, kind):
    """Running exact match: st['ema'] (the curriculum's mastery) follows the whole model, and steps with memories
    dropped (--drop_memory) keep their own st['ema_dropped'] (run 20: there exact match stayed 0 for 4,763 steps,
    which one shared ema showed only as a lower mastery), --long_steps and --long_dropped theirs in st['ema_long'] and
    st['ema_long_dropped']."""
    key = {'full': 'ema', 'dropped': 'ema_dropped', 'long': 'ema_long', 'long_dropped': 'ema_long_dropped'}[kind]
    st[key] = 0.97 * st.get(key, 0.0) + 0.03 * exact


def lengthen(st, args):
    """The curriculum's next length on mastery, in st: longer segments first (up to --grow_seg_len), then more of
    them (up to --max_segs). Returns what changed for the log, or None at the longest."""
    if st['seg_len'] < args.grow_seg_len:
        st['seg_len'] = min(args.grow_seg_len, st['seg_len'] * 2)
        return {'curriculum_seg_len': st['seg_len']}
    if st['nseg'] < args.max_segs:
        st['nseg'] = min(args.max_segs, st['nseg'] * 2)
        return {'curriculum': st['nseg']}
    return None


def mastered(st, args, drop_p):
    """Time to lengthen: the running exact match is at --mastery, on the steps with memories dropped too (run 23's
    hybrid: their pass keys came ~50 steps after the full steps' names), and the last step is 150 steps back."""
    ok = st['ema'] >= args.mastery and (not drop_p or st.get('ema_dropped', 0.0) >= args.mastery)
    return ok and st['step'] - st['last_up'] > 150


def parse_drop_memory(spec):
    """--drop_memory 'LAYERS:P' -> ((layers...), p); None -> ((), 0.0)."""
    layers, p = parse_layers_value(spec, '--drop_memory', 'P', 0.5, 0.0)
    if not 0 <= p <= 1:
        raise SystemExit(f'--drop_memory {spec!r}: P must be between 0 and 1')
    return layers, p


def parse_long_steps(spec, flag='--long_steps'):
    """--long_steps (or --long_dropped) 'SEGS:P' -> (SEGS, P); None -> (0, 0.0)."""
    if not spec:
        return 0, 0.0
    try:
        segs, p = spec.split(':')
        segs, p = int(segs), float(p)
    except ValueError:
        raise SystemExit(f'{flag} {spec!r}: expected SEGS:P, e.g. 64:0.15') from None
    if segs < 1 or not 0 <= p <= 1:
        raise SystemExit(f'{flag} {spec!r}: SEGS must be at least 1 and P between 0 and 1')
    return segs, p


def parse_long(args):
    """--long_steps and --long_dropped: {'long': (SEGS, P), 'long_dropped': (SEGS, P)}, (0, 0.0) where not given."""
    return {'long': parse_long_steps(args.long_steps), 'long_dropped': parse_long_steps(args.long_dropped, '--long_dropped')}


def set_lr(opt, lr):
    """The base learning rate to every group, times the group's lr_mult (make_optimizer's gates)."""
    for g in opt.param_groups:
        g['lr'] = lr * g.get('lr_mult', 1)


def main():
    args = parse_args()
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = Config.load(args.config)
    model = CtxModel(cfg).to(dev)
    fast_layers, fast_mult = parse_fast_memory(args.fast_memory)
    drop_layers, drop_p = parse_drop_memory(args.drop_memory)
    gate_layers, gate_cost = parse_gate_cost(args.gate_cost)
    opt = make_optimizer(model, args.lr, fused=dev == 'cuda', fast_layers=fast_layers, fast_mult=fast_mult)
    st = {'step': 0, 'tokens': 0, 'nseg': args.start_segs, 'seg_len': train_seg_len(args, cfg), 'ema': 0.0, 'last_up': 0, 'seconds': 0.0}
    if args.ask_back and not args.carry:
        raise SystemExit('--ask_back asks about streams a carried memory holds: give --carry too')
    if (args.mix_segs or args.long_steps or args.long_dropped) and args.carry:
        raise SystemExit('--mix_segs, --long_steps and --long_dropped change the batch size from step to step, and a carried '
                         'memory starts afresh whenever it does: give one')
    # a bad spec stops the run here, not later inside a data-loader worker
    if sum(p for _, p in parse_long(args).values()) > 1:
        raise SystemExit('--long_steps and --long_dropped: their shares of steps add up to more than 1')
    if args.long_dropped and not drop_layers:
        raise SystemExit('--long_dropped drops the --drop_memory layers: give --drop_memory too')
    mask = carry_mask(model, args)
    carry = Carry(args.carry, args.ask_back, mask) if args.carry else None
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, map_location=dev)
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['opt'])
        st.update(ck['state'])
        st['seg_len'] = max(st['seg_len'], train_seg_len(args, cfg))   # segments never shrink on a resume
        if args.carry and ck.get('carry') is not None:
            carry.state, carry.age = ck['carry'][0], ck['carry'][1].cpu()
        if st['nseg'] != args.start_segs:
            print(json.dumps({'note': f"resuming at the checkpoint's {st['nseg']} segments, not --start_segs {args.start_segs}"}), flush=True)
        print(json.dumps({'resumed': args.ckpt, **st}), flush=True)
    elif args.init:
        from export import load_checkpoint
        model.load_state_dict(load_checkpoint(args.init))
        print(json.dumps({'init': args.init}), flush=True)
    if args.gate_reset is not None and st['step'] == 0:
        model.reset_gates(args.gate_reset)
    pool = corpus.load_pool(args.pool)
    nparam = sum(p.numel() for p in model.parameters())
    print(json.dumps({'params': nparam, 'config': cfg.to_dict(), 'device': dev}), flush=True)

    import multiprocessing as mp
    nseg_value, seg_len_value = mp.Value('i', st['nseg']), mp.Value('i', st['seg_len'])
    loader = torch.utils.data.DataLoader(Batches(pool, args, cfg, nseg_value, seg_len_value), batch_size=None, num_workers=args.workers,
                                         prefetch_factor=2 if args.workers else None, persistent_workers=False)
    t0, tokens0 = time.time(), st['tokens']   # tok_s: this chunk's rate (a resumed run's average hid a slowdown, run 24)
    budget = args.minutes * 60
    last_save = time.time()
    for nseg, burn, kind, S, Q, Y, owner in loader:
        if time.time() - t0 > budget:
            break
        if stale(nseg, S.shape[-1], st, args):
            continue
        S, Q, Y, owner = (t.to(dev, non_blocking=True) for t in (S, Q, Y, owner))
        lr = args.lr * min(1.0, (st['step'] + 1) / 200)
        set_lr(opt, lr)
        model.open_gates(st['step'] < args.gate_open_steps)
        model.use_memories(drop_layers if kind in ('dropped', 'long_dropped') else ())
        start = carry.start(S.shape[0], dev) if carry else None
        model.log_gates(gate_cost > 0)
        with autocast(dev):
            loss, lm, ans, ex, end = run_stream(model, S, Q, Y, owner, ans_weight=args.ans_weight,
                                                ckpt_segments=nseg > args.ckpt_above, burn=burn, state=start)
        past = carry.past(dev) if carry else None
        if past is not None:
            with autocast(dev):
                ploss, _, _, pex = model.answer_loss(*past[:2], end[past[2]], lm.new_zeros(()), args.ans_weight)
            loss = loss + args.past_weight * ploss
        gates = None
        if gate_cost:
            # taken before backward, whose recomputed segments (--ckpt_above) would log their gates again
            gates = model.gate_means()
            model.log_gates(False)
            costed = [g for i, g in gates.items() if not gate_layers or i in gate_layers]
            if costed:   # none when --drop_memory switched the costed layers off for this step
                loss = loss + gate_cost * torch.stack(costed).mean()
        if not optimizer_step(model, opt, loss):
            # Run 12: one non-finite batch (carry 16) turned the weights and every carried memory into NaN for good.
            # Skip it, and start the memories afresh.
            st['skipped'] = st.get('skipped', 0) + 1
            if carry:
                carry.state = None
            print(json.dumps({'skipped_nonfinite': st['step'], 'total': st['skipped']}), flush=True)
            continue
        if carry:
            carry.end(end.float(), S.shape[1], (Q, Y, owner))
        st['step'] += 1
        st['tokens'] += S.numel()
        track_exact(st, float(ex), kind)
        grown = lengthen(st, args) if mastered(st, args, drop_p) else None
        if grown:
            nseg_value.value, seg_len_value.value = st['nseg'], st['seg_len']
            st['last_up'], st['ema'] = st['step'], 0.0
            if drop_p:
                st['ema_dropped'] = 0.0
            print(json.dumps({**grown, 'step': st['step']}), flush=True)
        if st['step'] % args.log_every == 0:
            el = time.time() - t0
            print(json.dumps({'step': st['step'], 'nseg': nseg, 'seg_len': S.shape[-1], 'bsz': S.shape[0], 'rows': Q.shape[0], 'lm': round(float(lm), 3), 'ans': round(float(ans), 3),
                              'exact': round(float(ex), 3), 'ema': round(st['ema'], 3), 'lr': lr, 'tok_s': int((st['tokens'] - tokens0) / el) if el > 0 else 0,
                              'tokens': st['tokens'], 'min': round(el / 60, 2),
                              **({'curriculum_segs': st['nseg']} if args.mix_segs else {}),
                              **({'dropped': kind == 'dropped', 'ema_dropped': round(st.get('ema_dropped', 0.0), 3)} if drop_p else {}),
                              **({'long': kind == 'long', 'ema_long': round(st.get('ema_long', 0.0), 3)} if args.long_steps else {}),
                              **({'long_dropped': kind == 'long_dropped', 'ema_long_dropped': round(st.get('ema_long_dropped', 0.0), 3)}
                                 if args.long_dropped else {}),
                              **({'age': round(float(carry.age.mean()), 1)} if carry else {}),
                              **({'gates': {i: round(g.item(), 3) for i, g in gates.items()}} if gates is not None else {}),
                              **({'past_rows': past[0].shape[0], 'past_exact': round(float(pex), 3)} if past is not None else {})}), flush=True)
        if time.time() - last_save > 240:
            save(args.ckpt, model, opt, {**st, 'seconds': st['seconds'] + time.time() - t0}, carry)
            last_save = time.time()
    st['seconds'] += time.time() - t0
    args.seg_len = st['seg_len']   # rank_eval's as-trained streams: at the length the run ended at (--grow_seg_len)
    model.open_gates(False)
    model.use_memories()
    save(args.ckpt, model, opt, st, carry)
    os.makedirs(args.out, exist_ok=True)
    save_weights_parts(model, args.out)
    print(json.dumps({'saved': args.ckpt, **st}), flush=True)
    if args.eval_n > 0:
        for fam in eval_families(args):
            for n in [int(x) for x in args.eval_segs.split(',')]:
                r = {'eval': fam, 'nseg': n, 'tokens': n * cfg.seg_len, 'exact': round(evaluate(model, pool, args, cfg, n, fam, dev=dev), 3)}
                first = n == int(args.eval_segs.split(',')[0])
                if first:
                    r['exact_mem_off'] = round(evaluate(model, pool, args, cfg, n, fam, use_memory=False, dev=dev), 3)
                if fam == 'passkey' and drop_layers:
                    with model.memories_off(drop_layers):
                        r['exact_dropped'] = round(evaluate(model, pool, args, cfg, n, fam, dev=dev), 3)
                if fam in ('where_defined', 'repo_defined'):     # ranked over the stream's paths, as the product does
                    r['top1'], r['top3'] = (round(x, 3) for x in rank_eval(model, pool, args, cfg, n, dev=dev, family=fam))
                    if fam == 'where_defined':
                        r['top1_kept'], r['top3_kept'] = (round(x, 3) for x in rank_eval(model, pool, args, cfg, n, dev=dev, keep_names=1.0))
                    if first:
                        r['top1_mem_off'] = round(rank_eval(model, pool, args, cfg, n, use_memory=False, dev=dev, family=fam)[0], 3)
                        if fam == 'where_defined' and curriculum(args):
                            r['top1_as_trained'], r['top3_as_trained'] = (round(x, 3) for x in rank_eval(model, pool, args, cfg, n, dev=dev, as_trained=True))
                            r['top1_as_trained_mem_off'] = round(rank_eval(model, pool, args, cfg, n, use_memory=False, dev=dev, as_trained=True)[0], 3)
                print(json.dumps(r), flush=True)
    if args.eval_n > 0 and args.eval_long:
        args.eval_n = min(args.eval_n, 16)
        for n in [int(x) for x in args.eval_long.split(',')]:
            r = {'eval': 'passkey', 'nseg': n, 'tokens': n * cfg.seg_len, 'exact': round(evaluate(model, pool, args, cfg, n, 'passkey', dev=dev), 3)}
            if args.long_dropped:     # what the memory tokens alone keep at this length
                with model.memories_off(drop_layers):
                    r['exact_dropped'] = round(evaluate(model, pool, args, cfg, n, 'passkey', dev=dev), 3)
            print(json.dumps(r), flush=True)


if __name__ == '__main__':
    main()
