"""What the memory writes for a where_defined name, per layer (RUNS.md run 7).

For held-out streams with two asked definitions: the stream rows whose text ends with the asked name, the question
row that ends it, and per layer the question row's memory query against every written key. Prints per layer the
mean of: the query's similarity to the name's rows and to all rows, the rank of the best name row among all rows,
and the write gate on the name's rows and on all rows. A name binds to its file only if its rows both match the
question (high similarity, low rank) and write (open gate).

  python3 train/write_probe.py --config train/configs/ctx-small-delta-tied-in.json --weights runs/dti-c1/weights.pt \
      --pool /tmp/pool-small.pkl.gz --n 8
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from binding_probe import TOKENIZER  # noqa: E402
from export import load_checkpoint  # noqa: E402
from model import Config, CtxModel, dpfp  # noqa: E402
from tasks import TaskSampler  # noqa: E402


def features(blk, h):
    """Key/query features of projections h [B,T,d_mem] after the convolution, as the block computes them."""
    cfg = blk.cfg
    return F.normalize(h.float(), dim=-1) if cfg.key_map == 'l2' else dpfp(h.float(), cfg.dpfp_nu)


def record_writes(model):
    """Wraps every block's armt_write to record (keys, gates) of each folded segment; returns the record."""
    seen = {i: [] for i in range(model.cfg.n_layers)}
    for i, blk in enumerate(model.blocks):
        def write(t, M, z, head=None, key_rows=None, blk=blk, orig=blk.armt_write, i=i):
            src = t if key_rows is None else key_rows
            seen[i].append((features(blk, blk.kconv(blk.mk(src)))[0], torch.sigmoid(blk.mb(t).float())[0, :, 0]))
            return orig(t, M, z, head, key_rows)
        blk.armt_write = write
    return seen


def queries(model, question, state):
    """Each layer's memory queries [L, len(question), d_key] while decoding the question from state."""
    out = []
    for blk in model.blocks:
        def read(x, M, z, q_past=None, blk=blk, orig=blk.armt_read):
            h = blk.mq(x)
            if blk.cfg.qk_conv > 1:
                w = blk.cfg.qk_conv - 1
                h = blk.qconv(torch.cat([h.new_zeros(h.shape[0], w, h.shape[2]), h], 1))[:, w:]
            out.append(features(blk, h)[0])
            return orig(x, M, z, q_past)
        blk.armt_read = read
    model.decode(torch.tensor([question]), state)
    for blk in model.blocks:
        del blk.armt_read      # back to the class's method
    return out


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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True, help='state_dict (or its .00/.01 parts)')
    p.add_argument('--pool', required=True)
    p.add_argument('--n', type=int, default=8, help='streams')
    p.add_argument('--seed', type=int, default=4242)
    a = p.parse_args()
    model = CtxModel(Config.load(a.config))
    model.load_state_dict(load_checkpoint(a.weights))
    model.eval()
    cfg = model.cfg
    sampler = TaskSampler(a.pool, TOKENIZER, cfg.seg_len, a.seed, split='heldout', ask_all=True, max_defs=2,
                          win=(256, 768), def_lead=32)
    tok, seen = sampler.tok, record_writes(model)
    stats = {i: [] for i in range(cfg.n_layers)}
    done = 0
    while done < a.n:
        s = sampler.sample(2, 'where_defined')
        if s is None or not s.more:
            continue
        done += 1
        for rec in seen.values():
            rec.clear()
        state = model.empty_state()
        rows_ids = []
        for seg in s.segments:
            state = model.fold(torch.tensor(seg[None].astype('int64')), state)
            rows_ids += [int(t) for t in seg] + [-1] * cfg.mem_tokens    # memory tokens' rows follow each segment
        text_ids = [t if t >= 0 else 0 for t in rows_ids]
        name = s.meta['name']
        rows = [r for r in ends_with(tok, text_ids, name) if rows_ids[r] >= 0]
        q_rows = ends_with(tok, s.question, name)
        if not rows or not q_rows:
            continue
        for i, q in enumerate(queries(model, s.question, state)):
            keys = torch.cat([k for k, _ in seen[i]])
            gates = torch.cat([g for _, g in seen[i]])
            sim = keys @ q[q_rows[-1]]
            stats[i].append([float(sim[rows].mean()), float(sim.mean()), int((sim > sim[rows].max()).sum()),
                             float(gates[rows].mean()), float(gates.mean())])
    for i, rec in stats.items():
        m = [round(sum(col) / len(col), 3) for col in zip(*rec)] if rec else [None] * 5
        print(json.dumps({'layer': i, 'names': len(rec), 'sim_name': m[0], 'sim_all': m[1], 'best_rank': m[2],
                          'of_rows': len(rows_ids), 'gate_name': m[3], 'gate_all': m[4]}))


if __name__ == '__main__':
    main()
