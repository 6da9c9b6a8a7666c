"""What the memory writes for a where_defined name, per layer (RUNS.md run 7).

For held-out streams with two asked definitions: the stream rows whose text ends with the asked name, the question
row that ends it, and per layer the question row's memory query against every written key. Prints per layer the
mean of: the query's similarity to the name's rows and to all rows, the rank of the best name row among all rows,
and the write gate on the name's rows and on all rows. A name binds to its file only if its rows both match the
question (high similarity, low rank) and write (open gate).

  python3 train/write_probe.py --config train/configs/ctx-small-delta-tied-in.json --weights runs/dti-c1/weights.pt \
      --pool /tmp/pool-small.pkl.gz --n 8
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from binding_probe import probe_args, probe_setup  # noqa: E402
from train import fold_sample  # noqa: E402


def record(model):
    """Records what every block's key, gate and query methods return (batch row 0), per layer, until cleared:
    {'key': [[T,d_key] per folded segment], 'gate': [[T]], 'query': [[t,d_key]]} for each layer."""
    seen = []
    for blk in model.blocks:
        rec = {'key': [], 'gate': [], 'query': []}
        for name, pick in (('key', lambda out: out[0]), ('gate', lambda out: out[0, :, 0]), ('query', lambda out: out[0][0])):
            def wrapped(*args, fn=getattr(blk, name), into=rec[name], pick=pick):
                out = fn(*args)
                into.append(pick(out))
                return out
            setattr(blk, name, wrapped)
        seen.append(rec)
    return seen


def ends_with(tok, ids, name):
    """Indices of the rows of ids whose decoded text so far ends with name."""
    text, rows = '', []
    for i, t in enumerate(ids):
        text = (text + tok.sp.id_to_piece(int(t)).replace('\u2581', ' '))[-64:]
        if text.endswith(name):
            rows.append(i)
    return rows


@torch.no_grad()
def main():
    a = probe_args(__doc__, 8).parse_args()
    model, sampler = probe_setup(a)
    cfg, tok = model.cfg, sampler.tok
    seen = record(model)
    stats = {i: [] for i in range(cfg.n_layers)}
    done = 0
    while done < a.n:
        s = sampler.sample(a.nseg, 'where_defined')
        if s is None or not s.more:
            continue
        done += 1
        for rec in seen:
            for v in rec.values():
                v.clear()
        state = fold_sample(model, s.segments, a.device)
        # the written rows: each segment's tokens, then its memory tokens (-1 here)
        rows_ids = [r for seg in s.segments for r in [int(t) for t in seg] + [-1] * cfg.mem_tokens]
        name = s.meta['name']
        rows = [r for r in ends_with(tok, [max(t, 0) for t in rows_ids], name) if rows_ids[r] >= 0]
        q_rows = ends_with(tok, s.question, name)
        if not rows or not q_rows:
            continue
        for rec in seen:
            rec['query'].clear()         # folding read the memory too: keep the question's queries only
        model.decode(torch.tensor([s.question], device=a.device), state)
        for i, rec in enumerate(seen):
            if not model.blocks[i].has_memory:    # memory_layers: this layer neither writes nor reads
                continue
            keys, gates = torch.cat(rec['key']), torch.cat(rec['gate'])
            sim = keys @ rec['query'][0][q_rows[-1]]
            stats[i].append([float(sim[rows].mean()), float(sim.mean()), int((sim > sim[rows].max()).sum()),
                             float(gates[rows].mean()), float(gates.mean())])
    for i, rec in stats.items():
        m = [round(sum(col) / len(col), 3) for col in zip(*rec)] if rec else [None] * 5
        print(json.dumps({'layer': i, 'names': len(rec), 'sim_name': m[0], 'sim_all': m[1], 'best_rank': m[2],
                          'of_rows': len(rows_ids), 'gate_name': m[3], 'gate_all': m[4]}))


if __name__ == '__main__':
    main()
