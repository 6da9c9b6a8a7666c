"""Integer weights for exported fold graphs (train/export.py --int8_fold; train/RUNS.md runs 33-34).

Every MatMul whose weight is a large initializer (directly, or through share_weights' float16 Cast) becomes ONNX
Runtime's com.microsoft DynamicQuantizeMatMul: the weight stored as int8 with one scale per output column, the
activations quantized to uint8 per call. On "dev" (2 cores, AVX512-VNNI) it took ~20 % off fold.onnx and ~28 % off
fold_alone.onnx. `emulated` makes the PyTorch reference compute the same thing, for golden.json.

The weights use 7 bits (-63..63), not 8: without VNNI, ONNX Runtime's x86 kernel multiplies uint8 by int8 with
VPMADDUBSW, which saturates when a pair of products passes 32,767 (2 x 255 x 127 can); 2 x 255 x 63 cannot, so the
integer products are exact on every x86 CPU (ONNX Runtime's quantization docs call this reduce_range).

    /usr/bin/python3 train/quantize.py models/ctx-small/fold.onnx /tmp/q/fold.onnx
"""
import argparse
import contextlib
import os

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

QMAX = 63           # 7-bit weights (see the module doc)
MIN_SIZE = 65536    # weights smaller than this stay float: the small memories' projections, where int8 saves nothing
# The memories' write keys and values stay float: no other graph holds them (decoding reads memory, never writes it),
# and train/from_export.py rebuilds a checkpoint from the float16 weights an export keeps, so every quantized weight
# must also be in decode.onnx. (A write key tied to the queries, tie_qk, is the module mq, and is there.)
FLOAT_ONLY = ('mk', 'mv', 'mh')


def matmul_weight(node, inits, cast_of):
    """The initializer a MatMul multiplies by, directly or through share_weights' float16 Cast; None for any other
    node, a MatMul of two activations, or one of a FLOAT_ONLY module (named /blocks.N/mv/MatMul by the exporter)."""
    if node.op_type != 'MatMul' or any(f'/{m}/' in node.name for m in FLOAT_ONLY):
        return None
    b = node.input[1]
    return cast_of.get(b, b if b in inits else None)


def weight_int8(w, qmax=QMAX):
    """Symmetric int8 of a weight [in, out] (ONNX's MatMul layout), one scale per output column."""
    scale = (np.abs(w).max(0) / qmax + 1e-12).astype(np.float32)
    return np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8), scale


def quantize(model, min_size=MIN_SIZE, qmax=QMAX):
    """Rewrites `model` (an onnx ModelProto with its weights loaded) in place; returns how many MatMuls changed.
    Weights no node uses any more are dropped."""
    inits = {i.name: i for i in model.graph.initializer}
    cast_of = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == 'Cast' and n.input[0] in inits}
    nodes, done = [], 0
    for n in model.graph.node:
        w = matmul_weight(n, inits, cast_of)
        arr = numpy_helper.to_array(inits[w]).astype(np.float32) if w else None
        if arr is None or arr.ndim != 2 or arr.size < min_size:
            nodes.append(n)
            continue
        q, scale = weight_int8(arr, qmax)
        base = f'{w}_int8'
        model.graph.initializer.extend([numpy_helper.from_array(q, base), numpy_helper.from_array(scale, base + '_scale'),
                                        numpy_helper.from_array(np.zeros(arr.shape[1], np.int8), base + '_zero')])
        nodes.append(helper.make_node('DynamicQuantizeMatMul', [n.input[0], base, base + '_scale', base + '_zero'],
                                      list(n.output), name=n.name + '_int8', domain='com.microsoft'))
        done += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_unused(model)
    if done and not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    return done


def drop_unused(model):
    """Removes initializers and Cast nodes that nothing reads (the float weights int8 ones replaced)."""
    while True:
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if n.op_type == 'Cast' and not any(o in used for o in n.output)]
        for n in dead:
            model.graph.node.remove(n)
        if not dead:
            break
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def dynamic_quantize_matmul(x, q, scale):
    """What ONNX Runtime's DynamicQuantizeMatMul computes for x [..., in] and int8 q [in, out] with column scales:
    x quantized to uint8 over the whole tensor (range widened to include 0, zero point rounded half to even), an
    exact integer product (float64 holds it: < 2^53), scaled back."""
    x = x.float()
    lo, hi = torch.clamp(x.min(), max=0), torch.clamp(x.max(), min=0)
    s = (hi - lo) / 255
    if float(s) == 0:
        return x.new_zeros(*x.shape[:-1], q.shape[1])
    zp = torch.round(torch.clamp(-lo / s, 0, 255))
    xq = torch.clamp(torch.round(x / s) + zp, 0, 255) - zp
    acc = xq.double() @ q.double()
    return (acc * (s * scale).double()).float()


@contextlib.contextmanager
def emulated(model, min_size=MIN_SIZE, qmax=QMAX):
    """Within it, the model's Linear layers with at least min_size weights compute as quantize() makes their MatMuls
    compute in ONNX Runtime (golden.json of an --int8_fold export). Yields the list of calls made, for tests."""
    calls, saved = [], []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and m.weight.numel() >= min_size and name.rsplit('.', 1)[-1] not in FLOAT_ONLY:
            q, scale = weight_int8(m.weight.detach().float().t().numpy(), qmax)
            q, scale = torch.from_numpy(q), torch.from_numpy(scale)

            def forward(x, m=m, q=q, scale=scale):
                calls.append(m)
                y = dynamic_quantize_matmul(x, q, scale)
                return (y if m.bias is None else y + m.bias.float()).to(x.dtype)
            saved.append(m)
            m.forward = forward
    try:
        yield calls
    finally:
        for m in saved:
            del m.forward


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('src')
    ap.add_argument('dst', help='written with its weights beside it in DST.data')
    ap.add_argument('--min_size', type=int, default=MIN_SIZE, help='quantize weights of at least this many values')
    args = ap.parse_args()
    model = onnx.load(args.src)
    n = quantize(model, args.min_size)
    onnx.save(model, args.dst, save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(args.dst) + '.data')
    print(f'{n} MatMuls as int8 -> {args.dst}')


if __name__ == '__main__':
    main()
