"""The length study at CPU scale: does a memory rule keep facts across many folded segments?

The product's model (model.py, any memory rule by config) trained on synthetic associative recall over random
tokens, so that it runs on two CPU cores in minutes and isolates the memory from language: no corpus, no
tokenizer, nothing to memorise (every key and value is drawn per sample). Two tasks:

  passkey  one "KEY d d d d d" somewhere in the stream; question "Q" -> the 5 digits
  facts    F facts "KEY a b VAL d d d" spread over the stream; question "Q a b VAL" about one of them -> its 3
           digits (the repository question in miniature: many similar writes that interfere). --question name
           drops VAL from the question ("Q a b" -> d d d), so the first digit is predicted on the name's own row;
           --spread puts each fact in a segment of its own (ARMT's retrieval layout); --order value_first
           writes "KEY d d d VAL a b" (the value before its name, as a file's path comes before its definitions).

Training lengthens the stream (--start_segs, doubling) whenever the running exact match reaches --mastery, as
train.py does (with --grow_seg_len, the segments themselves first); at the end, held-out accuracy is measured at
every length of --eval_segs with fresh samples, and once with the memory switched off. One JSON line per log
step and per evaluation, on stdout and in OUT/log.jsonl.

  /usr/bin/python3 train/length_study.py --memory armt --task passkey --minutes 12 --out runs/ls-armt
"""
import argparse
import json
import os
import sys
import time

# Debian's torch calls the system BLAS; OpenBLAS's own threads fighting torch's for two cores made small batched
# matmuls 100x slower (measured: 2.5 s vs 25 ms per attention bmm). One BLAS thread; torch parallelises itself.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, CtxModel  # noqa: E402
from train import lengthen, make_optimizer, parse_drop_memory, set_lr  # noqa: E402

PAD, KEY, Q, VAL = 0, 1, 2, 3
DIGITS = torch.arange(4, 14)          # 10 value symbols
FIRST_FILLER = 14


def insert(stream, at, toks):
    stream[at:at + len(toks)] = toks


def fact_slots(g, nseg, seg_len, n, width, spread=False):
    """n distinct start positions, each with the whole fact inside one segment (a fact cut by a segment
    boundary would test the local attention's reach, not the memory); spread: each in a segment of its own."""
    per_seg = seg_len // width
    if spread:
        segs = torch.randperm(nseg, generator=g)[:n]
        return [int(s) * seg_len + int(torch.randint(0, per_seg, (1,), generator=g)) * width for s in segs]
    cells = torch.randperm(nseg * per_seg, generator=g)[:n]
    return [int(c // per_seg) * seg_len + int(c % per_seg) * width for c in cells]


def sample(g, task, nseg, seg_len, vocab, facts, question='val', spread=False, order='name_first'):
    """One stream [nseg*seg_len], question+answer tokens, and targets (-100 outside the answer)."""
    stream = torch.randint(FIRST_FILLER, vocab, (nseg * seg_len,), generator=g)
    if task == 'passkey':
        digits = DIGITS[torch.randint(0, 10, (5,), generator=g)]
        (at,) = fact_slots(g, nseg, seg_len, 1, 6)
        insert(stream, at, torch.cat([torch.tensor([KEY]), digits]))
        qa = torch.cat([torch.tensor([Q]), digits])
    else:
        slots = fact_slots(g, nseg, seg_len, facts, 7, spread)
        names = torch.randint(FIRST_FILLER, vocab, (facts, 2), generator=g)
        while len({tuple(n.tolist()) for n in names}) < facts:      # the question must name one fact only
            names = torch.randint(FIRST_FILLER, vocab, (facts, 2), generator=g)
        values = DIGITS[torch.randint(0, 10, (facts, 3), generator=g)]
        for at, name, value in zip(slots, names, values):
            first, second = (name, value) if order == 'name_first' else (value, name)
            insert(stream, at, torch.cat([torch.tensor([KEY]), first, torch.tensor([VAL]), second]))
        ask = int(torch.randint(0, facts, (1,), generator=g))
        sep = [VAL] if question == 'val' else []
        qa = torch.cat([torch.tensor([Q]), names[ask], torch.tensor(sep, dtype=torch.long), values[ask]])
    target = torch.full_like(qa, -100)
    n_ans = 5 if task == 'passkey' else 3
    target[-n_ans - 1:-1] = qa[-n_ans:]          # logits at i predict token i+1
    return stream.view(nseg, seg_len), qa, target


def batch(g, a, bsz, nseg, seg_len, vocab):
    """bsz samples of the task a.task (a: the parsed arguments) as stacked tensors on a.device."""
    rows = [sample(g, a.task, nseg, seg_len, vocab, a.facts, a.question, a.spread, a.order) for _ in range(bsz)]
    return tuple(torch.stack(col).to(a.device) for col in zip(*rows))


@torch.no_grad()
def evaluate(model, a, cfg, nseg, n, use_memory=True, seed=10_000):
    """Exact match (every answer token right under teacher forcing) on n fresh samples of nseg segments."""
    model.eval()
    g = torch.Generator().manual_seed(seed + nseg)
    hits, done = 0.0, 0
    while done < n:
        bs = min(a.eval_batch, n - done)
        S, QA, Y = batch(g, a, bs, nseg, cfg.seg_len, cfg.vocab_size)
        _, _, _, ex = model(S, QA, Y, use_memory=use_memory, lm=False)
        hits, done = hits + float(ex) * bs, done + bs
    model.train()
    return hits / n


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--memory', default='armt', choices=['armt', 'infini'])
    p.add_argument('--write_rows', default='mem', choices=['mem', 'all'], help='armt: which rows write the memory (model.py)')
    p.add_argument('--tie_qk', action='store_true', help='armt: keys use the query projection (model.py)')
    p.add_argument('--qk_conv', type=int, default=0, help='armt: short causal convolution over keys/queries (model.py)')
    p.add_argument('--layers', type=json.loads, help='per-layer memory fields as JSON (Config.layers), e.g. a hybrid: '
                   '\'{"0": {"write_rows": "all", "key_map": "l2", "seq_delta": true}}\'')
    p.add_argument('--drop_memory', metavar='LAYERS:P', help="as train.py's: on that share of steps these layers' memories "
                   "are off (not read, not written); evaluation uses every memory, and once without these")
    p.add_argument('--device', default='cpu', help="'cuda' on the GPU machine")
    p.add_argument('--task', default='passkey', choices=['passkey', 'facts'])
    p.add_argument('--facts', type=int, default=4, help='facts per stream (task facts)')
    p.add_argument('--question', default='val', choices=['val', 'name'],
                   help="facts: 'val' asks \"Q a b VAL\", 'name' asks \"Q a b\" (answer starts on the name's row)")
    p.add_argument('--order', default='name_first', choices=['name_first', 'value_first'],
                   help='facts: "KEY a b VAL d d d" or "KEY d d d VAL a b"')
    p.add_argument('--spread', action='store_true', help='facts: each fact in a segment of its own (needs segs >= facts)')
    p.add_argument('--d_model', type=int, default=128)
    p.add_argument('--n_layers', type=int, default=4)
    p.add_argument('--n_heads', type=int, default=4)
    p.add_argument('--seg_len', type=int, default=64)
    p.add_argument('--mem_tokens', type=int, default=8)
    p.add_argument('--d_mem', type=int, default=16)
    p.add_argument('--vocab', type=int, default=256)
    p.add_argument('--minutes', type=float, default=12)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--tokens_per_step', type=int, default=8192)
    p.add_argument('--min_batch', type=int, default=16)
    p.add_argument('--grow_seg_len', type=int, default=0,
                   help='lengthen segments first (doubling from --seg_len up to this) on mastery, then add segments: '
                        'binding a name to a value before it is found only in short segments (RUNS.md run 6)')
    p.add_argument('--start_segs', type=int, default=1)
    p.add_argument('--max_segs', type=int, default=32)
    p.add_argument('--mastery', type=float, default=0.8)
    p.add_argument('--eval_segs', default='4,16,64,256,1024')
    p.add_argument('--eval_n', type=int, default=64)
    p.add_argument('--eval_batch', type=int, default=32)
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--value_init', type=float, default=0.0,
                   help='armt: start the value projections (mv) at this std instead of zero. At zero, no gradient reaches '
                        'what the memory tokens gather until mv has grown; started away from zero they did not learn '
                        'sooner (RUNS.md run 22, one seed)')
    p.add_argument('--init', help="start from these weights (an earlier run's weights.pt, e.g. trained on shorter segments)")
    p.add_argument('--out', help='folder for log.jsonl and weights.pt')
    p.add_argument('--report', nargs='+', metavar='OUT', help='print the markdown table of finished runs and exit')
    a = p.parse_args()
    if not a.out and not a.report:
        p.error('--out is required')
    return a


def report(dirs):
    """One markdown row per finished run: its variant, how far training got, exact match per evaluated length."""
    runs = [[json.loads(line) for line in open(os.path.join(d, 'log.jsonl'))] for d in dirs]
    segs = sorted({r['eval'] for recs in runs for r in recs if 'eval' in r})
    print('| run | task | rule | writes | d_key | memory tokens | params | steps | trained up to | memory off | '
          + ' | '.join(f'{n} segs' for n in segs) + ' |')
    print('|' + '---|' * (10 + len(segs)))
    for d, recs in zip(dirs, runs):
        a, c = recs[0]['args'], recs[0]['config']
        tr = next(r['trained'] for r in recs if 'trained' in r)
        off = next(r['exact'] for r in recs if 'eval_mem_off' in r)
        got = {r['eval']: r['exact'] for r in recs if 'eval' in r}
        task = a['task'] + (f" ({a['facts']})" if a['task'] == 'facts' else '')
        d_key = c['d_key'] if c['memory'] == 'armt' else f"{c['d_model'] // c['n_heads']} per head"
        writes = c.get('write_rows', 'mem') + ' rows' if c['memory'] == 'armt' else 'all rows'
        print(f"| {os.path.basename(d.rstrip('/'))} | {task} | {c['memory']} | {writes} | {d_key} | "
              f"{c['mem_tokens'] if c['memory'] == 'armt' else '–'} | {recs[0]['params']:,} | {tr['steps']} | "
              f"{tr['reached_segs']} segs | {off:.2f} | " + ' | '.join(f"{got[n]:.2f}" if n in got else '–' for n in segs) + ' |')


def main():
    a = parse_args()
    if a.report:
        return report(a.report)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = Config(name=f'ls-{a.memory}', vocab_size=a.vocab, d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads,
                 seg_len=a.seg_len, mem_tokens=a.mem_tokens, d_mem=a.d_mem, memory=a.memory, write_rows=a.write_rows,
                 tie_qk=a.tie_qk, qk_conv=a.qk_conv, layers=a.layers)
    drop_layers, drop_p = parse_drop_memory(a.drop_memory)
    model = CtxModel(cfg)
    if a.value_init:
        for b in model.blocks:
            torch.nn.init.normal_(b.mv.weight, std=a.value_init)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location='cpu'))
    model = model.to(a.device)
    opt = make_optimizer(model, a.lr, fused=False)
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, 'log.jsonl'), 'a')

    def emit(rec):
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + '\n')
        log.flush()

    emit({'args': vars(a), 'config': cfg.to_dict(), 'params': sum(p.numel() for p in model.parameters()),
          'threads': torch.get_num_threads()})
    g = torch.Generator().manual_seed(a.seed)
    nseg, ema, last_up, step, tokens, t0 = a.start_segs, 0.0, 0, 0, 0, time.time()
    ema_dropped = 0.0      # the running exact match of the steps with memories dropped alone
    while time.time() - t0 < a.minutes * 60:
        bsz = max(a.min_batch, a.tokens_per_step // (nseg * cfg.seg_len))
        S, QA, Y = batch(g, a, bsz, nseg, cfg.seg_len, cfg.vocab_size)
        set_lr(opt, a.lr * min(1.0, (step + 1) / 100))
        # drawn only with --drop_memory: the samples of runs without it stay as before
        dropped = bool(drop_p) and float(torch.rand((), generator=g)) < drop_p
        model.use_memories(drop_layers if dropped else ())
        loss, _, ans, ex = model(S, QA, Y, lm=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step, tokens = step + 1, tokens + S.numel()
        ema = 0.95 * ema + 0.05 * float(ex)
        ema_dropped = 0.95 * ema_dropped + 0.05 * float(ex) if dropped else ema_dropped
        if ema >= a.mastery and step - last_up >= 50:
            length = {'seg_len': cfg.seg_len, 'nseg': nseg}
            grown = lengthen(length, a)
            if grown:
                cfg.seg_len, nseg, ema, last_up = length['seg_len'], length['nseg'], 0.0, step
                emit({**grown, 'step': step})
        if step % 10 == 0:
            emit({'step': step, 'nseg': nseg, 'ans': round(float(ans), 3), 'exact': round(float(ex), 3),
                  'ema': round(ema, 3), 'tokens': tokens, 'min': round((time.time() - t0) / 60, 2),
                  **({'ema_dropped': round(ema_dropped, 3)} if drop_p else {})})
    model.use_memories()
    torch.save(model.state_dict(), os.path.join(a.out, 'weights.pt'))
    emit({'trained': {'steps': step, 'tokens': tokens, 'reached_segs': nseg, 'seg_len': cfg.seg_len,
                      'minutes': round((time.time() - t0) / 60, 1)}})
    segs = [int(x) for x in a.eval_segs.split(',')]
    emit({'eval_mem_off': segs[0], 'exact': evaluate(model, a, cfg, segs[0], a.eval_n, use_memory=False)})
    for n in segs:
        t = time.time()
        emit({'eval': n, 'exact': round(evaluate(model, a, cfg, n, a.eval_n), 3), 'seconds': round(time.time() - t)})
    if drop_layers:
        with model.memories_off(drop_layers):
            emit({'eval_dropped': segs[0], 'exact': round(evaluate(model, a, cfg, segs[0], a.eval_n), 3)})


if __name__ == '__main__':
    main()
