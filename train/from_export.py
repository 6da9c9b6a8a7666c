"""Rebuild a PyTorch checkpoint from an exported model folder (export.py's fold.onnx, decode.onnx, weights.bin).

The shipped model's own checkpoint (run 1, chunk 2) did not survive on disk; its export did, in git. Training
can start from it again (RUNS.md run 17: the shipped model with an every-row memory added in one layer).

How: a model of the same config with random, all-distinct weights is exported to graphs the same way; the same
code gives the same nodes under the same names, so what a node reads in the shipped graph is what the same node
reads in the fresh one (through the Cast and Identity nodes that only pass a weight on), and the fresh one's
values say which parameter that is (or its transpose: the exporter folds `x @ W.T` into a constant; or one row of
it). Matching by node, not by position, survives the exporter storing equal weights once (two write-gate biases
equal after rounding to float16 were, in run 17's model). Weights that are no parameter (constants of the graph)
are skipped. The result is exact: export.py run on it writes the same weights.bin, byte for byte.

Usage: python3 train/from_export.py --model models/ctx-small --config train/configs/ctx-small.json --out W.pt
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import export_graphs  # noqa: E402
from model import Config, CtxModel  # noqa: E402


def graph_inputs(path):
    """What each node of an ONNX graph reads: {(node name, input slot): float32 array} for the inputs that are
    weights, whether stored in the graph or cast from weights.bin (export.py share_weights' Cast nodes)."""
    g = onnx.load(path).graph
    value = {i.name: numpy_helper.to_array(i, os.path.dirname(path)).astype(np.float32) for i in g.initializer}
    plumbing = ('Cast', 'Identity')   # Identity: a weight stored once for two equal parameters, under the other name
    for n in g.node:                  # in order: an ONNX graph's nodes are sorted, a Cast comes before its Identity
        if n.op_type in plumbing and n.input[0] in value:
            value[n.output[0]] = value[n.input[0]]
    return {(n.name, k): value[x] for n in g.node if n.op_type not in plumbing
            for k, x in enumerate(n.input) if x in value}


def state_dict_from_export(cfg: Config, folder):
    with open(f'{folder}/config.json') as f:
        cfg_int8 = 'int8_fold' in json.load(f)
    torch.manual_seed(0)
    probe = CtxModel(cfg).eval()
    with torch.no_grad():
        for p in probe.parameters():   # distinct values everywhere (trained-init zeros would all look alike)
            p.normal_()
    # values -> [(parameter, how)]: how is 'same', 'T' (the exporter folds x @ W.T into a constant) or a row
    # index (ShortConv's weights are stored row by row); tied parameters (tie_qk) are one tensor under two names.
    which = {}
    for name, p in probe.state_dict().items():
        a = p.numpy().astype(np.float32)
        which.setdefault(a.tobytes(), []).append((name, 'same'))
        if p.dim() == 2:
            which.setdefault(a.T.tobytes(), []).append((name, 'T'))
            for j, row in enumerate(a):
                which.setdefault(row.tobytes(), []).append((name, j))
    shapes = {k: v.shape for k, v in probe.state_dict().items()}
    found, rows = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        export_graphs(probe, tmp)
        for graph in ('fold.onnx', 'decode.onnx'):
            fresh, shipped = graph_inputs(f'{tmp}/{graph}'), graph_inputs(f'{folder}/{graph}')
            for slot, a in fresh.items():
                b = shipped.get(slot)
                if b is None and cfg_int8 and graph == 'fold.onnx':
                    continue   # an int8 MatMul (export.py --int8_fold): its weight's float16 values are in decode.onnx
                if b is None or b.shape != a.shape:
                    raise SystemExit(f'{graph}: the export does not have the graph this config exports (another config?)')
                for name, how in which.get(a.tobytes(), []):
                    if how == 'same' or how == 'T':
                        found[name] = torch.from_numpy((b.T if how == 'T' else b).copy()).reshape(shapes[name])
                    else:
                        rows.setdefault(name, {})[how] = torch.from_numpy(b.copy()).reshape(shapes[name][1:])
    for name, got in rows.items():
        if name not in found and len(got) == shapes[name][0]:
            found[name] = torch.stack([got[j] for j in range(len(got))])
    missing = sorted(set(shapes) - set(found))
    if missing:
        raise SystemExit(f'not found in the export: {", ".join(missing)}')
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', required=True, help='exported model folder')
    ap.add_argument('--config', required=True, help='the training config it was exported from')
    ap.add_argument('--out', required=True, help='checkpoint (.pt) to write')
    a = ap.parse_args()
    sd = state_dict_from_export(Config.load(a.config), a.model)
    torch.save(sd, a.out)
    print(f'{a.out}: {len(sd)} tensors, {sum(v.numel() for v in sd.values())} parameters')


if __name__ == '__main__':
    main()
