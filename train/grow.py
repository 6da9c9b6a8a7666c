"""Start a larger model from trained weights so that it computes exactly what they computed.

Runs 16-18 added memories to trained models (a layer's memory replaced by another kind, a memory added where
there was none); this is the one place that builds such a start. Given the trained model's config and weights and
the new config (the same model with layers appended and/or some layers' memories of another kind):
- every parameter the new model shares with the old one, by name and shape, is copied, except a changed layer's
  memory parameters (its memory kind differs: they start fresh);
- every memory that is new (a changed layer's or an appended layer's) starts with zero value projections (mv, mh):
  it writes zeros, so its memory stays empty and its reads add nothing;
- an appended block starts as the identity: its attention output (o) and second MLP layer (mlp.2) are zero;
- a memory whose keys are only wider (a larger d_mem, key_map l2: run 34's capacity change) keeps what it learned:
  its key and query projections gain rows of size `eps` times theirs, and its convolutions columns; the new key
  directions start empty in the state, and unit keys normalised with small extra parts read and write as before.
So the new model's logits equal the old model's at the start (with eps = 0 for widened keys, checked before saving),
with the memories of changed layers taken out of the old one, and training decides what the new parts hold.

Usage: python3 train/grow.py --old_config train/configs/ctx-small-hybrid.json --old W.pt \
           --config train/configs/ctx-small-hybrid-deep.json --out runs/NEW
(--out: a folder; the weights go there as train.py brings them back, float16 in parts: runs/NEW/weights.pt.*)
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_checkpoint  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from train import MEMORY_PARAMS, fold_segments, save_weights_parts  # noqa: E402


def memory_kind(cfg: Config, i):
    c = cfg.layer(i)
    return {f: getattr(c, f) for f in Config.LAYER_FIELDS} | {'memory': c.memory}


def changed_layers(old_cfg: Config, cfg: Config):
    """The old model's layers whose memory is of another kind in the new one (not only wider keys)."""
    return {i for i in range(old_cfg.n_layers) if memory_kind(cfg, i) != memory_kind(old_cfg, i)} - widened_layers(old_cfg, cfg)


def widened_layers(old_cfg: Config, cfg: Config):
    """The old model's layers whose l2-keyed memory has only a larger d_mem in the new one."""
    def wider(i):
        old, new = memory_kind(old_cfg, i), memory_kind(cfg, i)
        return (old['key_map'] == 'l2' and new['d_mem'] > old['d_mem']
                and {**new, 'd_mem': old['d_mem']} == old)
    return {i for i in range(min(old_cfg.n_layers, cfg.n_layers)) if wider(i)}


WIDE_KEYS = ('mq', 'mk')           # [d_mem, d] projections: rows added
WIDE_CONVS = ('qconv', 'kconv')    # [width, d_mem] depthwise convolutions: columns added


def widen(old, fresh, part, eps):
    """A widened memory's parameter: the old one with the new key directions appended (see the module doc)."""
    if part in WIDE_KEYS:
        new_rows = fresh[old.shape[0]:]
        extra = new_rows / new_rows.norm(dim=1, keepdim=True) * old.norm(dim=1).mean() * eps
        return torch.cat([old.to(fresh.dtype), extra])
    return torch.cat([old.to(fresh.dtype), fresh[:, old.shape[1]:]], dim=1)


def without_memories(sd, layers):
    """Weights sd with the memories of these layers taken out: zero values write nothing, so reads add nothing."""
    return {k: torch.zeros_like(v) if k.split('.')[0] == 'blocks' and int(k.split('.')[1]) in layers
            and k.split('.')[2] in ('mv', 'mh') else v for k, v in sd.items()}


def grow(old_cfg: Config, old_sd, cfg: Config, seed=0, eps=0.1):
    """The new model's state_dict (see the module doc)."""
    if cfg.n_layers < old_cfg.n_layers or any(getattr(cfg, f) != getattr(old_cfg, f) for f in
                                                ('d_model', 'n_heads', 'vocab_size', 'mem_tokens', 'mlp_mult')):
        raise SystemExit('grow: the new config must have the same widths and at least as many layers')
    torch.manual_seed(seed)
    new = CtxModel(cfg).state_dict()
    changed, wide = changed_layers(old_cfg, cfg), widened_layers(old_cfg, cfg)
    out = {}
    for name, p in new.items():
        parts = name.split('.')
        layer = int(parts[1]) if parts[0] == 'blocks' else None
        fresh_memory = layer is not None and (layer in changed or layer >= old_cfg.n_layers) and parts[2] in MEMORY_PARAMS
        appended = layer is not None and layer >= old_cfg.n_layers
        if layer in wide and parts[2] in WIDE_KEYS + WIDE_CONVS:
            out[name] = widen(old_sd[name], p, parts[2], eps)
        elif fresh_memory and parts[2] in ('mv', 'mh'):
            out[name] = torch.zeros_like(p)
        elif appended and (parts[2] == 'o' or (parts[2] == 'mlp' and parts[3] == '2')):
            out[name] = torch.zeros_like(p)
        elif not fresh_memory and not appended:
            if name not in old_sd or old_sd[name].shape != p.shape:
                raise SystemExit(f'grow: {name} is not in the old weights with shape {tuple(p.shape)}')
            out[name] = old_sd[name].to(p.dtype)
        else:
            out[name] = p
    return out


def same_logits(old_cfg, old_sd, cfg, sd, nseg=2, seed=0):
    """Max |logit difference| of the two models on one random stream and question."""
    g = torch.Generator().manual_seed(seed)
    segs = torch.randint(5, cfg.vocab_size, (1, nseg, cfg.seg_len), generator=g)
    segs[0, :, 0] = 3   # a document header, so that doc_value memories write
    qa = torch.randint(5, cfg.vocab_size, (1, 24), generator=g)
    outs = []
    for c, w in ((old_cfg, old_sd), (cfg, sd)):
        m = CtxModel(c).eval()
        m.load_state_dict(w)
        with torch.no_grad():
            outs.append(m.decode(qa, fold_segments(m, segs))[0])
    return (outs[0] - outs[1]).abs().max().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--old_config', required=True)
    p.add_argument('--old', required=True, help='trained weights (whole or split in parts)')
    p.add_argument('--config', required=True, help='the new model')
    p.add_argument('--out', required=True, help='folder for weights.pt.* (float16 parts, as train.py writes them)')
    p.add_argument('--eps', type=float, default=0.1,
                   help='widened keys: the new rows of the key projections, relative to the old rows\' size')
    a = p.parse_args()
    old_cfg, cfg = Config.load(a.old_config), Config.load(a.config)
    old_sd = load_checkpoint(a.old)
    base = without_memories(old_sd, changed_layers(old_cfg, cfg))
    diff = same_logits(old_cfg, base, cfg, grow(old_cfg, old_sd, cfg, eps=0.0))
    if diff > 1e-3:
        raise SystemExit(f'grow: the new model does not compute the old one (max logit difference {diff:.3g})')
    sd = grow(old_cfg, old_sd, cfg, eps=a.eps)
    diff = same_logits(old_cfg, base, cfg, sd)
    os.makedirs(a.out, exist_ok=True)
    model = CtxModel(cfg)
    model.load_state_dict(sd)
    save_weights_parts(model, a.out)
    print(f'{a.out}: {sum(v.numel() for v in sd.values()):,} parameters, max logit difference to the old model {diff:.2g}')


if __name__ == '__main__':
    main()
