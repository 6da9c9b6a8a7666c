"""Export a trained (or freshly initialised) CtxModel to the ONNX files the TypeScript engine runs.

  fold.onnx     tokens int64 [1,T] + state float [1,S]  ->  new_state [1,S]            (no LM head)
  decode.onnx   tokens int64 [B,t] + offset int64 [] + state [1,S] + past_k/past_v [L,B,H,P,dh]
                ->  logits [B,t,V] + present_k/present_v [L,B,H,P+t,dh]                (reads, never writes)
                with qk_conv > 1 also past_q -> present_q [L,B,*q_cache]: the memory queries' last
                qk_conv-1 rows (zeros before the question's first token, and in layers without the convolution)
  weights.bin   the weights of both graphs, stored once, as float16 (each graph casts them to float32 at load);
                with --int8_fold also the fold graphs' int8 MatMul weights (train/quantize.py)
  config.json   the shape (model.Config) + state_size + model_id (hash of the graphs and weights)
  golden.json   test vectors from the PyTorch reference, checked by the TypeScript tests

Usage: python3 train/export.py --config train/configs/ctx-small.json [--ckpt ckpt.pt] --out models/ctx-small
"""
import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, CtxModel  # noqa: E402
import quantize  # noqa: E402

OPSET = 17


class FoldGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, state):
        return self.model.fold(tokens, state)


class DecodeGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, offset, state, past_k, past_v, past_q=None):
        L = self.model.cfg.n_layers
        past = [(past_k[i], past_v[i], None if past_q is None else past_q[i]) for i in range(L)]
        logits, cache = self.model.decode(tokens, state, past, offset)
        out = [logits, torch.stack([c[0] for c in cache]), torch.stack([c[1] for c in cache])]
        return tuple(out + ([] if past_q is None else [torch.stack([c[2] for c in cache])]))


def empty_cache(cfg, batch=1, length=0):
    return torch.zeros(cfg.n_layers, batch, cfg.n_heads, length, cfg.d_head)


def export_graphs(model, tmp, alone=()):
    """fold.onnx and decode.onnx; with `alone` (layers), also fold_alone.onnx: the fold with those layers' memories
    neither read nor written (their part of the state passes through), what a two-way model folds its second state
    with. It computes what fold.onnx does on a state whose `alone` memories are empty, emptied again after, without
    their work (~9 ms of ~150 a segment each on a 2-core machine; RUNS.md run 33)."""
    cfg = model.cfg
    tokens = torch.randint(0, cfg.vocab_size, (1, 37))
    state = torch.randn(1, cfg.state_size) * 0.01
    for name, off in [('fold.onnx', ())] + ([('fold_alone.onnx', alone)] if alone else []):
        with model.memories_off(off):
            torch.onnx.export(FoldGraph(model), (tokens, state), f'{tmp}/{name}', opset_version=OPSET,
                              input_names=['tokens', 'state'], output_names=['new_state'],
                              dynamic_axes={'tokens': {1: 'T'}}, do_constant_folding=True)
    q = torch.randint(0, cfg.vocab_size, (2, 5))
    pk, pv = torch.randn(cfg.n_layers, 2, cfg.n_heads, 3, cfg.d_head), torch.randn(cfg.n_layers, 2, cfg.n_heads, 3, cfg.d_head)
    args, ins, outs = (q, torch.tensor(3), state, pk, pv), ['tokens', 'offset', 'state', 'past_k', 'past_v'], \
        ['logits', 'present_k', 'present_v']
    axes = {'tokens': {0: 'B', 1: 't'}, 'past_k': {1: 'B', 3: 'P'}, 'past_v': {1: 'B', 3: 'P'},
            'logits': {0: 'B', 1: 't'}, 'present_k': {1: 'B', 3: 'Pt'}, 'present_v': {1: 'B', 3: 'Pt'}}
    if cfg.q_cache[0] > 0:
        args, ins, outs = args + (torch.randn(cfg.n_layers, 2, *cfg.q_cache),), ins + ['past_q'], outs + ['present_q']
        axes.update(past_q={1: 'B'}, present_q={1: 'B'})
    torch.onnx.export(DecodeGraph(model), args, f'{tmp}/decode.onnx', opset_version=OPSET, input_names=ins,
                      output_names=outs, dynamic_axes=axes, do_constant_folding=True)


def share_weights(names, tmp, out, int8_fold=None):
    """Move every large float initializer of the graphs into one float16 file, stored once even where both
    graphs use it (matched by content), and cast back to float32 inside each graph. int8_fold: quantize.quantize's
    arguments, applied to the fold graphs as they are loaded (decoding stays float); their large int8 initializers
    go into the same file as they are."""
    blob, where = bytearray(), {}
    for name in names:
        m = onnx.load(f'{tmp}/{name}')
        if int8_fold and name.startswith('fold'):
            quantize.quantize(m, **int8_fold)
        casts, kept = [], []
        for init in m.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype not in (np.float32, np.int8) or arr.size < 1024:
                kept.append(init)
                continue
            int8 = arr.dtype == np.int8
            stored = arr if int8 else arr.astype(np.float16)
            key = hashlib.sha256(stored.tobytes()).hexdigest()[:16] + ('_int8' if int8 else '')
            if key not in where:
                blob.extend(b'\0' * (-len(blob) % 64))
                where[key] = (len(blob), stored.nbytes)
                blob.extend(stored.tobytes())
            off, n = where[key]
            t = onnx.TensorProto()
            # an int8 weight keeps its name and is read as it is; a float16 one is cast back to the float32 name
            t.name, t.data_type = (init.name, TensorProto.INT8) if int8 else (f'w16_{key}', TensorProto.FLOAT16)
            t.dims.extend(arr.shape)
            t.data_location = TensorProto.EXTERNAL
            for k, v in (('location', 'weights.bin'), ('offset', str(off)), ('length', str(n))):
                e = t.external_data.add()
                e.key, e.value = k, v
            kept.append(t)
            if not int8:
                casts.append(helper.make_node('Cast', [t.name], [init.name], to=TensorProto.FLOAT, name=f'cast_{init.name}'))
        del m.graph.initializer[:]
        m.graph.initializer.extend(kept)
        nodes = casts + list(m.graph.node)
        del m.graph.node[:]
        m.graph.node.extend(nodes)
        with open(f'{out}/{name}', 'wb') as f:
            f.write(m.SerializeToString())
    with open(f'{out}/weights.bin', 'wb') as f:
        f.write(bytes(blob))


def round_to_half(model):
    """The shipped weights are float16: make the reference compute with exactly those values."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def decode_state(cfg):
    """The state golden.json's decoding starts from: a fixed formula, not a fold, so that decode.onnx is checked on
    its own (an --int8_fold fold differs from any reference by its rounding). Non-negative, so that the DPFP
    memories' normalisers q.z stay away from zero."""
    i = torch.arange(cfg.state_size, dtype=torch.float64)
    return (0.05 * (1 + torch.sin(i * 0.618))).float()[None]


def golden_stream(cfg):
    """A fixed token stream: two full segments and a partial one, ids spread over the vocabulary."""
    n = 2 * cfg.seg_len + cfg.seg_len // 3
    ids = [(i * 7919 + 13) % (cfg.vocab_size - 8) + 8 for i in range(n)]
    return [ids[i:i + cfg.seg_len] for i in range(0, n, cfg.seg_len)]


@torch.no_grad()
def golden(model, int8_fold=None):
    """int8_fold: quantize.emulated's arguments when the fold graphs have int8 weights (decoding stays float)."""
    cfg = model.cfg
    state = model.empty_state()
    with quantize.emulated(model, **int8_fold) if int8_fold else contextlib.nullcontext():
        for seg in golden_stream(cfg):
            state = model.fold(torch.tensor([seg]), state)
    question = [6] + [(i * 104729) % (cfg.vocab_size - 8) + 8 for i in range(9)] + [7]
    fixed = decode_state(cfg)
    logits, cache = model.decode(torch.tensor([question]), fixed)
    last = logits[0, -1]
    nxt = int(last.argmax())
    logits2, _ = model.decode(torch.tensor([[nxt]]), fixed, cache, offset=len(question))
    stride = max(1, cfg.state_size // 4096)
    s = state[0]
    return {
        'stream_segment_lengths': [len(x) for x in golden_stream(cfg)],
        'stream_rule': 'ids[i] = (i*7919+13) % (vocab_size-8) + 8',
        'state_stride': stride,
        'state_sample': [round(float(v), 7) for v in s[::stride]],
        'state_l2': float(s.norm()),
        'decode_state_rule': 'state[i] = float32(0.05 * (1 + sin(0.618 * i))), in float64',
        'question': question,
        'logits_last': [round(float(v), 5) for v in last[:256]],
        'argmax_last': nxt,
        'logits_step2': [round(float(v), 5) for v in logits2[0, -1, :256]],
    }


def file_sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def two_way(model, after):
    """config.json's two_way: for the first `after` segments the product folds both with every memory on and with the
    memory tokens alone (fold_alone.onnx), then only the second. Alone = the every-row layers' memories neither
    written nor read, so nothing crosses a segment boundary but through the memory tokens (RUNS.md run 31 measured it
    through the product: hg-l2's pass keys at 1M). `empty` lists those memories' [start, end) ranges in the flat
    state, which stay empty in the second state."""
    emptied = (model.mask_without(every_row=True) == 0).int()
    if after < 1 or not emptied.any() or emptied.all():
        raise SystemExit('--two_way_after needs a positive length and a model with both every-row and memory-token memories')
    z = torch.cat([emptied.new_zeros(1), emptied, emptied.new_zeros(1)])
    d = z[1:] - z[:-1]                          # +1 where a range starts, -1 one past where it ends
    starts, ends = (d == 1).nonzero().flatten().tolist(), (d == -1).nonzero().flatten().tolist()
    return {'after_segments': after, 'empty': [[s, e] for s, e in zip(starts, ends)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', required=True)
    ap.add_argument('--ckpt', help='state_dict (.pt) or a prefix of split parts (.pt.00, .pt.01, ...)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--tokenizer', help='tokenizer.model to copy into the model folder')
    ap.add_argument('--note', default='', help='free text stored in config.json (what this model is)')
    ap.add_argument('--two_way_after', type=int, metavar='SEGS',
                    help="fold twice for the first SEGS segments, past them with the memory tokens alone (config.json's "
                         "two_way; train/RUNS.md run 31): for a hybrid whose every-row memories fail at long inputs")
    ap.add_argument('--int8_fold', action='store_true',
                    help='the fold graphs\' large MatMul weights as 7-bit integers (train/quantize.py): ~30 %% less '
                         'ingest time on 2 cores; decoding stays float (train/RUNS.md run 34)')
    ap.add_argument('--int8_min_size', type=int, default=quantize.MIN_SIZE, help=argparse.SUPPRESS)   # tests: tiny models
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    cfg = Config.load(args.config)
    model = CtxModel(cfg).eval()
    if args.ckpt:
        model.load_state_dict(load_checkpoint(args.ckpt))
    round_to_half(model)
    os.makedirs(args.out, exist_ok=True)
    tmp = f'{args.out}/.export-tmp'
    os.makedirs(tmp, exist_ok=True)
    extra = {}
    if args.two_way_after:
        extra['two_way'] = two_way(model, args.two_way_after)
    graphs = ['fold.onnx', 'decode.onnx'] + (['fold_alone.onnx'] if 'two_way' in extra else [])
    try:
        export_graphs(model, tmp, alone=model.memory_layers(every_row=True) if 'two_way' in extra else ())
        if args.int8_fold:
            extra['int8_fold'] = {'min_size': args.int8_min_size, 'qmax': quantize.QMAX}
        share_weights(graphs, tmp, args.out, extra.get('int8_fold'))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.tokenizer and os.path.abspath(args.tokenizer) != os.path.abspath(f'{args.out}/tokenizer.model'):
        shutil.copyfile(args.tokenizer, f'{args.out}/tokenizer.model')
    h = hashlib.sha256()
    for f in graphs + ['weights.bin']:
        h.update(file_sha(f'{args.out}/{f}').encode())
    if 'two_way' in extra:    # part of the id: a snapshot's second state means nothing to a one-way fold
        h.update(json.dumps(extra['two_way'], sort_keys=True).encode())
    elif os.path.exists(f'{args.out}/fold_alone.onnx'):
        os.remove(f'{args.out}/fold_alone.onnx')    # left by an earlier two-way export into the same folder
    meta = {**cfg.to_dict(), **extra, 'model_id': h.hexdigest()[:32], 'tokenizer_sha256': file_sha(f'{args.out}/tokenizer.model'),
            'trained': bool(args.ckpt), 'note': args.note}
    with open(f'{args.out}/config.json', 'w') as f:
        json.dump(meta, f, indent=2)
    with open(f'{args.out}/golden.json', 'w') as f:
        json.dump(golden(model, extra.get('int8_fold')), f)
    print(json.dumps({'out': args.out, 'model_id': meta['model_id'], 'params': sum(p.numel() for p in model.parameters()),
                      'weights_bytes': os.path.getsize(f'{args.out}/weights.bin')}))


def load_model(config, weights):
    """The model of a config file with trained weights (see load_checkpoint), in eval mode, on the CPU."""
    model = CtxModel(Config.load(config))
    model.load_state_dict(load_checkpoint(weights))
    return model.eval()


def load_checkpoint(path):
    """A checkpoint is a state_dict saved by train.py, whole or split into parts of at most 16 MiB, and may be
    gzipped (weights.pt.gz: 8 % smaller, which is what lets the shipped weights travel to the GPU machine beside
    the repository within its 64 MiB)."""
    import gzip
    import io
    if os.path.exists(path):
        buf = open(path, 'rb').read()
    else:
        parts = sorted(p for p in os.listdir(os.path.dirname(path) or '.') if p.startswith(os.path.basename(path) + '.'))
        buf = b''.join(open(os.path.join(os.path.dirname(path) or '.', p), 'rb').read() for p in parts)
    if buf[:2] == b'\x1f\x8b':
        buf = gzip.decompress(buf)
    sd = torch.load(io.BytesIO(buf), map_location='cpu')
    sd = sd.get('model', sd)
    return {k: v.float() for k, v in sd.items()}


if __name__ == '__main__':
    main()
