"""The ctx model: a decoder-only transformer over segments with a compressive associative memory per layer.

Inside a segment: causal softmax attention with RoPE (positions restart at 0 in every segment).
Across segments: in every layer a fixed-size memory that every token reads and that is written once per
segment. Two memory rules (config "memory"):

  armt   (default) the delta-rule associative block of ARMT (Rodkin et al. 2024): m learned memory tokens
         are appended to each segment and only they write; keys/queries pass through DPFP (d_mem -> d_key =
         2*nu*d_mem) and are L2-normalised; memory M (d_key x d_model) and normaliser z (d_key):
           read   x += phi(q) M / (phi(q).z)                         (added to the layer's input)
           write  M += phi(k)^T (sigmoid(w.x) * (v - phi(k) M / (phi(k).z)));  z += coef * phi(k)
         write_rows 'all': every row writes (text and memory tokens, same gate), so a name's own token can key the
         memory, where a memory token must first gather the name by attention (where_defined never bound names
         that way). Meant to be trained from scratch: on weights trained with 'mem', the text rows' writes swamp
         the memory (RUNS.md, run 4).
         tie_qk: keys and queries share one projection. With untied ones a question reads the memory blind to the
         name it asks about (binding_probe.py: the same path wins whatever the name, RUNS.md run 5): the
         gradients of "a" and "b" questions on a shared generic key cancel. Tied, a name's row in the question
         already matches the rows that wrote the same name (it did not bind either, run 5).
         qk_conv: keys and queries mix the few rows before them (a short causal convolution), so a key can carry
         the name just before it without an attention head learning to fetch it first: the fix linear-attention
         models use for associative recall (Based, DeltaNet). With it two random-token facts bind when the name
         comes before its value (RUNS.md run 6); a name after its value binds only in short segments. Cached
         decoding carries each layer's last qk_conv-1 query projections beside the KV cache (export.py past_q).
         doc_value: every written value also carries the header of the document its row belongs to (the mean of
         the embeddings of the header's tokens, "<doc>code src/auth.py\n" or a segment's "<cont>..." line, through
         a per-layer projection). A definition comes after its file's path, and a name's row could only write the
         path if attention learned to fetch it from the header first: on random tokens that was learned only in
         16-token segments and lost at 128 (RUNS.md run 6). Given the header, a name's row writes "this name ->
         this file" from the first step. The header rows are found from the token ids alone (the stream format's
         fixed <doc>/<cont> ids and nl_id, the tokenizer's newline), so the fold graph needs no extra input.
         key_map 'l2': keys and queries are only L2-normalised (d_key = d_mem), with no normaliser: read x += q M,
         write M += k^T (gate * (v - k M)) / s, the delta rule of DeltaNet (Yang et al. 2024), whose every token
         writes (s keeps the all-rows-at-once update stable; delta_write).
         DPFP features are non-negative, so two unrelated rows' keys still overlap (cosine ~0.25 measured on a
         trained every-row model): a question then reads a blend of every row written, and training closes the
         text rows' write gates (RUNS.md run 7). Signed unit keys overlap ~0 on average. z stays in the state, unused.
         seq_delta: the rows write one after another (the delta rule as DeltaNet states it, in chunks), where the
         all-at-once write divides every row's update by a bound that shared key directions make large: with it
         names bind to their files (RUNS.md run 8). value_norm: values are written from the layer-normed row, so
         that a large memory cannot make larger values and a still larger memory over a long fold.
         layers: one memory kind per layer (the fields above except the model's shape, Config.LAYER_FIELDS): e.g.
         the shipped model's memory tokens, which keep a pass key over a million tokens, in layers 1-5 and an
         every-row memory that binds names in layer 0 (configs/ctx-small-hybrid.json, RUNS.md run 17).
  infini the paper's Infini-attention (Munkhdalai et al. 2024) as a baseline: sigma = ELU+1 on every head's
         q/k, read normalised by z, delta write by every token, per-head gate between memory and local attention.

The memory state of all layers is one flat float32 vector (state_size), so the engine and the snapshot file do
not depend on the rule. Runs on torch 1.13 (Debian, CPU) and torch 2.x; export.py turns it into ONNX graphs.
"""
import contextlib
import json
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    name: str = 'ctx-small'
    vocab_size: int = 8192
    d_model: int = 384
    n_layers: int = 6
    n_heads: int = 6
    seg_len: int = 512
    mem_tokens: int = 16
    d_mem: int = 64
    dpfp_nu: int = 3
    memory: str = 'armt'   # 'armt' | 'infini'
    write_rows: str = 'mem'   # armt: which rows write the memory: 'mem' (the memory tokens, ARMT) | 'all' (every row)
    tie_qk: bool = False      # armt: keys use the read's query projection (mq), so a token matches its own earlier writes
    qk_conv: int = 0          # armt: >1: a causal depthwise convolution of this width over the rows' keys and queries
    key_map: str = 'dpfp'     # armt: 'dpfp' (ARMT: widened, non-negative, read normalised by z) | 'l2' (DeltaNet)
    keys_from_input: bool = False   # armt: write keys from the layer's input, as its queries (see armt_write)
    gate_from_input: bool = False   # armt: write gates from the layer's input too (see armt_write)
    seq_delta: bool = False   # key_map l2: the rows of a segment write one after another (seq_delta), not all at once
    value_norm: bool = False  # armt: values are written from the layer-normed row (no parameters), see Block.value
    doc_value: bool = False   # armt: written values also carry the row's document header (see the module doc)
    write_topk: int = 0       # armt: >0: only the rows with the k largest write gates of a segment write (see keep_top)
    nl_id: int = 18           # the tokenizer's newline id: ends a header (doc_value)
    memory_layers: list = None   # armt: the layers that read and write a memory (None: all); the others keep a zero
                                 # state, so the state's layout does not change (see Block.has_memory)
    mem_decay: list = None    # armt: per layer, a factor on M before each folded segment's write (1: none; see Block)
    mlp_mult: int = 4
    layers: dict = None       # armt: per layer (key: its index), memory fields that differ from the ones above, e.g.
                              # {"0": {"write_rows": "all", "key_map": "l2", "d_mem": 384}}: one memory kind per layer
                              # (RUNS.md run 17; see Config.layer)

    # The fields a layer may set for itself: its memory's kind and width. The rest shape the whole model.
    LAYER_FIELDS = ('write_rows', 'tie_qk', 'qk_conv', 'key_map', 'keys_from_input', 'gate_from_input', 'seq_delta',
                    'value_norm', 'doc_value', 'd_mem', 'dpfp_nu', 'write_topk')

    def layer(self, i):
        """The config layer i builds its memory from: this one with the layer's own fields (Config.layers)."""
        own = (self.layers or {}).get(str(i), {})
        bad = sorted(set(own) - set(self.LAYER_FIELDS))
        if bad:
            raise ValueError(f'layers.{i}: {", ".join(bad)} cannot differ per layer (only {", ".join(self.LAYER_FIELDS)})')
        return Config(**{**asdict(self), **own, 'layers': None})

    @property
    def q_cache(self):
        """(rows, width) of the query projections each layer carries in the decoding cache (export.py past_q):
        the last qk_conv-1 rows of a layer with a short convolution, zeros in the others; (0, 0) with none."""
        if self.memory != 'armt':
            return (0, 0)
        convs = {(c.qk_conv, c.d_mem) for c in map(self.layer, range(self.n_layers)) if c.qk_conv > 1}
        if len(convs) > 1:
            raise ValueError(f'layers with qk_conv must share qk_conv and d_mem (one cache shape), got {sorted(convs)}')
        if not convs:
            return (0, 0)
        width, d_mem = convs.pop()
        return (width - 1, d_mem)

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    @property
    def d_key(self):
        return 2 * self.dpfp_nu * self.d_mem if self.key_map == 'dpfp' else self.d_mem

    def layer_state_shapes(self, i=0):
        """Shapes of (M, z) for layer i, batch excluded."""
        if self.memory == 'armt':
            d_key = self.layer(i).d_key
            return (d_key, self.d_model), (d_key,)
        return (self.n_heads, self.d_head, self.d_head), (self.n_heads, self.d_head)

    @property
    def state_size(self):
        return sum(math.prod(m) + math.prod(z) for m, z in map(self.layer_state_shapes, range(self.n_layers)))

    @staticmethod
    def load(path):
        with open(path) as f:
            raw = json.load(f)
        return Config(**{k: v for k, v in raw.items() if k in Config.__dataclass_fields__})

    def to_dict(self):
        return {**asdict(self), 'd_key': self.d_key, 'state_size': self.state_size, 'q_cache': list(self.q_cache)}


def rope(x, pos):
    """Rotary embedding of x [..., T, dh] at integer positions pos [T]."""
    dh = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, dh, 2, device=x.device, dtype=torch.float32) / dh))
    ang = pos.to(torch.float32)[:, None] * inv[None]
    c, s = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).flatten(-2)


def attention(q, k, v, q_pos, k_pos):
    """Causal attention of queries at q_pos over keys at k_pos (explicit, so that it exports to ONNX)."""
    att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    future = k_pos[None, :] > q_pos[:, None]
    att = att.masked_fill(future, float('-inf'))
    return att.softmax(-1) @ v


def dpfp(x, nu):
    """Deterministic parameter-free projection (Schlag et al. 2021): widens keys nu*2 times, then L2-normalised."""
    x = torch.cat((F.relu(x), F.relu(-x)), -1)
    rolled = torch.cat([torch.roll(x, shifts=i, dims=-1) for i in range(1, nu + 1)], -1)
    return F.normalize(torch.cat([x] * nu, -1) * rolled, dim=-1)


class ShortConv(nn.Module):
    """Causal depthwise convolution along the rows: out[t] = sum_j w[j] * h[t-j], j < width.

    The earlier rows start with random weights, not zero: started as the identity, a question's answer row
    (whose own token names nothing) reads the same for every name, both names' gradients cancel, and the
    earlier rows' weights never leave zero (RUNS.md run 6: exact stuck at 0.48 of 1 with the identity start)."""

    def __init__(self, dim, width):
        super().__init__()
        self.w = nn.Parameter(torch.randn(width, dim) * 0.5)
        with torch.no_grad():
            self.w[0] = 1.0

    def forward(self, h):
        out = h * self.w[0]
        for j in range(1, self.w.shape[0]):
            out = out + F.pad(h, (0, 0, j, 0))[:, :h.shape[1]] * self.w[j]
        return out


def seq_delta(M, key, val, beta, rows_max, chunk=64, base=16):
    """seq_delta in float32 whatever autocast says: under bfloat16 autocast the matmuls below ran in bfloat16 (8 bits
    of mantissa) where the block inverse's repeated squaring and M's chunk-by-chunk update were meant to be exact (the
    likely cause of session 20's from-scratch run that went non-finite at step 14 and never came back).
    M is float32 already (the state is); casting it again would add a node to the exported graph, which re-exports
    the shipped model byte for byte without it."""
    with torch.autocast(key.device.type, enabled=False):
        return _seq_delta(M, key, val, beta, rows_max, chunk, base)


def _seq_delta(M, key, val, beta, rows_max, chunk=64, base=16):
    """M [B,d,D] after rows i = 1..T (unit keys [B,T,d], values [B,T,D], gates [B,T,1]) write one after another,
    M += beta_i k_i^T (v_i - k_i M): DeltaNet's rule as written (Yang et al. 2024, chunked form). Each step is a
    contraction, so no scale is needed; the all-rows-at-once write (delta_write) must divide by a bound on the
    largest eigenvalue of K^T G K, which keys sharing one direction make 6-140 (measured on run 7's weights):
    every row, a name's too, then writes at a tenth of its strength or less.
    Within a chunk the rows' updates are M += K^T (U - W M) with W = T beta K, U = T beta V and T the inverse of the
    unit triangular I + tril(beta K K^T, -1). T is formed for blocks of `base` rows at once by repeated squaring
    (sum_m (-N)^m; entries stay below C(15,7) for 16 rows: safe in float32, not for 64), then blocks are merged in
    pairs up to `chunk` rows: the second block's w and u lose what the first block's rows wrote before them
    (w2 -= (w2 K1^T) w1, likewise u2), forward substitution by blocks, exact. Only M's update runs chunk by chunk:
    9 products of 64 rows per segment, not 33 of 16 (RUNS.md run 9: ingest 12 % faster on 2 CPU cores, training
    ~25 % faster on the GPU).
    Rows are padded with zero keys (a zero key writes nothing) to a multiple of `chunk` at least rows_max, so that
    the exported graph has a fixed number of chunks."""
    B, T, d = key.shape
    n = -(-rows_max // chunk)
    pad = lambda x: torch.cat([x, x.new_zeros(B, n * chunk, x.shape[-1])], 1)[:, :n * chunk].reshape(B, -1, base, x.shape[-1])
    k, v, b = pad(key.float()), pad(val.float()), pad(beta.float())
    strict = torch.ones(base, base, device=k.device).tril(-1)
    x = -(b * (k @ k.transpose(-1, -2))) * strict                 # -N, [B,blocks,base,base]
    eye = torch.eye(base, device=k.device)
    inv = eye + x
    for _ in range(int(math.log2(base)) - 1):
        x = x @ x
        inv = inv @ (eye + x)
    w, u = inv @ (b * k), inv @ (b * v)
    c = base
    while c < chunk:        # merge neighbouring blocks: [first; second - (w2 K1^T) first]
        w, u, kk = (t.reshape(B, -1, 2, c, t.shape[-1]) for t in (w, u, k))
        p = w[:, :, 1] @ kk[:, :, 0].transpose(-1, -2)
        w = torch.stack([w[:, :, 0], w[:, :, 1] - p @ w[:, :, 0]], 2)
        u = torch.stack([u[:, :, 0], u[:, :, 1] - p @ u[:, :, 0]], 2)
        c *= 2
        w, u, k = (t.reshape(B, -1, c, t.shape[-1]) for t in (w, u, kk))
    for i in range(n):
        M = M + k[:, i].transpose(-1, -2) @ (u[:, i] - w[:, i] @ M)
    return M


def keep_top(gate, k):
    """Gates [B,T,1] with all but the k largest of each row of the batch set to 0 (all kept when T <= k). Session 36:
    hg-l2's layer 0 opens its gates by ~108 units per 512-row segment (gate > 0.5 on 10 % of rows), so its 384-wide
    memory is rewritten every few segments; k bounds the writes per segment. The zeros appended make the k-th
    largest exist for a short segment (the graph is exported with a dynamic row count); gradients reach the kept
    gates only, as in top-k routing."""
    padded = torch.cat([gate.detach(), gate.new_zeros(gate.shape[0], k, 1)], 1)
    kth = padded.topk(k, dim=1).values[:, -1:]
    return gate * (gate.detach() >= kth).to(gate.dtype)


class Block(nn.Module):
    def __init__(self, model_cfg: Config, layer: int = 0):
        super().__init__()
        cfg = model_cfg.layer(layer)
        d, self.cfg, self.q_cache = cfg.d_model, cfg, model_cfg.q_cache
        # Run 12: trained on carried memories, seq_delta models answer from layers 0, 4 and 5 alone (zeroing 1-3
        # before the question loses nothing), while layer 3's memory grows largest over a long fold (1,692 at 256
        # segments): memory there only adds what a long input makes large.
        self.has_memory = cfg.memory == 'armt' and (cfg.memory_layers is None or layer in cfg.memory_layers)
        self.own_memory = self.has_memory   # has_memory may be switched off for a step (CtxModel.use_memories)
        # mem_decay: in run 12's model the keys of layers 4-5 share one direction (cosine 0.97 between any two rows),
        # so the delta rule fits their differing values along the small differences between keys, and M grows
        # ~1.7 times per doubling of the input (state_norm.py) into sizes training never met. These layers read a
        # running summary anyway; a decay below 1 bounds it. Layer 0's keys are distinct (cosine 0.27): it keeps 1.
        self.decay = 1.0 if cfg.mem_decay is None else float(cfg.mem_decay[layer])
        # A memory kind per layer (Config.layers, runs 16-17): every row writing makes a 1M-token input a million
        # delta-rule writes into the layer's matrix, and a pass key is overwritten long before the question
        # (long_probe.py: capping the memory's size or skipping weak writes did not help); memory tokens alone
        # write 16 rows per segment and keep it. One model can have both.
        self.write_all = cfg.write_rows == 'all'
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.o = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_mult * d), nn.GELU(), nn.Linear(cfg.mlp_mult * d, d))
        if cfg.memory == 'armt':
            self.mq = nn.Linear(d, cfg.d_mem, bias=False)
            self.mk = self.mq if cfg.tie_qk else nn.Linear(d, cfg.d_mem, bias=False)
            conv = (lambda: ShortConv(cfg.d_mem, cfg.qk_conv)) if cfg.qk_conv > 1 else nn.Identity
            self.qconv = conv()
            self.kconv = self.qconv if cfg.tie_qk else conv()
            self.mv = nn.Linear(d, d, bias=False)
            self.mh = nn.Linear(d, d, bias=False) if cfg.doc_value else None   # the row's document header -> value
            self.mb = nn.Linear(d, 1)       # write gate
            self.gate_open = False          # training only: every row writes at full strength (train.py --gate_open_steps)
            self.gate_log = None            # training only: a list that collects each write's mean gate (--gate_cost)
        else:
            self.beta = nn.Parameter(torch.zeros(cfg.n_heads))   # per-head gate memory vs local attention

    # ---- ARMT memory -------------------------------------------------------------------------------------
    def features(self, h):
        """Key/query features of (convolved) projections h: unit vectors (key_map l2) or DPFP's widened ones."""
        if self.cfg.key_map == 'l2':
            return F.normalize(h.float(), dim=-1)
        return dpfp(h.float(), self.cfg.dpfp_nu)

    def query(self, x, q_past=None):
        """Memory query features of rows x. With qk_conv, q_past [B, width-1, d_mem] holds the query projections
        of the rows before x (decoding with a cache; zeros = none, as at a segment's start). Returns the features
        and the query projections of the last width-1 rows (None without qk_conv)."""
        h, tail = self.mq(x), None
        if self.cfg.qk_conv > 1:     # (without it qconv is the identity)
            if q_past is None:
                q_past = h.new_zeros(h.shape[0], self.cfg.qk_conv - 1, h.shape[2])
            h = torch.cat([q_past.to(h.dtype), h], 1)
            tail = h[:, -(self.cfg.qk_conv - 1):]
            h = self.qconv(h)[:, q_past.shape[1]:]
        return self.features(h), tail

    def key(self, rows):
        """Write key features of rows [B,T,D]."""
        return self.features(self.kconv(self.mk(rows)))

    def gate(self, t):
        """Write gate [B,T,1] of rows t (its mean goes to gate_log when collecting, --gate_cost)."""
        if self.gate_open:
            g = t.new_ones(t.shape[0], t.shape[1], 1, dtype=torch.float32)
        else:
            g = torch.sigmoid(self.mb(t).float())
        if self.gate_log is not None:
            self.gate_log.append(g.mean())
        return g

    def value(self, t, head):
        """What rows t write. value_norm: from the rows layer-normed, so that a value's size does not follow the
        memory read the row took in: without it, a large memory makes large rows, large values and a larger memory
        (RUNS.md run 8: seq_delta weights trained on 8 segments grew the state by 10^17 in 128 segments)."""
        if self.cfg.value_norm:
            t = t.float() - t.float().mean(-1, keepdim=True)   # written out: ONNX 17's LayerNormalization needs a scale
            t = (t * torch.rsqrt((t * t).mean(-1, keepdim=True) + 1e-5)).to(self.mv.weight.dtype)
        return self.mv(t).float() if head is None else (self.mv(t) + self.mh(head)).float()

    def armt_read(self, x, M, z, q_past=None):
        """x plus what the memory holds for each row (q_past: see query). Returns x and the query rows' tail."""
        q, tail = self.query(x, q_past)
        if self.cfg.key_map == 'l2':
            return x + (q @ M).to(x.dtype), tail
        return x + ((q @ M) / ((q @ z.unsqueeze(-1)) + 1e-5)).to(x.dtype), tail

    def armt_write(self, t, M, z, head=None, x_in=None):
        """Writes rows t [B,T,D] (the layer's output); x_in: the same rows of the layer's input (needed with
        keys_from_input or gate_from_input). keys_from_input computes the keys from x_in, what the queries read
        with. Keyed by the output (ARMT's memory tokens, which gather in the layer what they write), a name's row in
        a definition and in a question have different keys even with tied projections and the same tokens, as
        attention mixed in each one's context (RUNS.md run 7: at initialisation a question's name matched its
        definition no better than any row). gate_from_input computes the gate from x_in as well: a row's tokens
        decide whether it writes, as they decide its key."""
        key = self.key(x_in if self.cfg.keys_from_input else t)
        gate_rows = x_in if self.cfg.gate_from_input else t
        if self.cfg.key_map == 'l2':
            return self.delta_write(t, M, head, key, gate_rows), z
        val = self.value(t, head)
        norm = (key @ z.unsqueeze(-1)) + 1e-5
        prev = (key @ M) / norm
        coef = torch.clamp(1 - norm / (key.norm(dim=-1, keepdim=True) ** 2), 0, 1).detach()
        gate = self.gate(gate_rows)
        return M + key.transpose(-1, -2) @ (gate * (val - prev)), z + (coef * key).sum(1)

    def delta_write(self, t, M, head, key, gate_rows):
        """key_map 'l2': M after the delta rule with unit keys. With seq_delta the rows write one after another
        (seq_delta, padded to the most rows that can write: a whole segment and its memory tokens, or the memory
        tokens alone). Otherwise all rows write at once from the same M; that is the sequential delta rule only while
        their keys do not overlap. Scaled by the Frobenius norm of K^T G K (a bound on its largest eigenvalue) when
        above 1, M' = (I - K^T G K / s) M + ... cannot grow from segment to segment: few open gates write at full
        strength, many share."""
        cfg = self.cfg
        gate = self.gate(gate_rows)
        if cfg.write_topk:
            gate = keep_top(gate, cfg.write_topk)
        if cfg.seq_delta:
            rows_max = cfg.mem_tokens + (cfg.seg_len if self.write_all else 0)
            return seq_delta(M, key, self.value(t, head), gate, rows_max)
        s = (key.transpose(-1, -2) @ (gate * key)).flatten(1).norm(dim=-1).clamp(min=1.0)[:, None, None]
        return M + key.transpose(-1, -2) @ (gate * (self.value(t, head) - key @ M)) / s

    # ---- forward -----------------------------------------------------------------------------------------
    def forward(self, x, M, z, pos, write, past=None, head=None):
        """x [B,T,D]; M, z this layer's memory; pos [T] positions of x; write: update memory from the last
        mem_tokens rows (armt) or all rows (infini); past: cache of earlier tokens, (k, v) [B,H,P,dh] and the
        memory queries' last rows [B,qk_conv-1,d_mem] (None without qk_conv); head [B,T,D]: each row's document
        header (doc_value) when writing.
        Returns x, M, z, the cache including past."""
        cfg = self.cfg
        B, T, D = x.shape
        q_rows, x_in = None, x
        if self.has_memory:
            x, q_rows = self.armt_read(x, M, z, None if past is None else past[2])
        if q_rows is None and self.q_cache[0] > 0:   # keeps the decoding cache's shape (export.py past_q)
            q_rows = x.new_zeros(B, *self.q_cache)
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, cfg.n_heads, cfg.d_head).permute(2, 0, 3, 1, 4)
        q, k = rope(q, pos), rope(k, pos)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        k_pos = torch.arange(k.shape[2], device=x.device)
        a = attention(q, k, v, pos, k_pos)
        if cfg.memory == 'infini':
            a, M, z = self.infini(a, q, k[:, :, -T:], v[:, :, -T:], M, z, write)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        x = x + self.mlp(self.ln2(x))
        if self.has_memory and write:
            if self.decay != 1.0:
                M = M * self.decay
            rows = slice(None) if self.write_all else slice(-cfg.mem_tokens, None)
            M, z = self.armt_write(x[:, rows], M, z, None if head is None or not cfg.doc_value else head[:, rows],
                                   x_in[:, rows] if cfg.keys_from_input or cfg.gate_from_input else None)
        return x, M, z, (k, v, q_rows)

    def infini(self, a_dot, q, k, v, M, z, write):
        sq, sk = F.elu(q.float()) + 1, F.elu(k.float()) + 1
        a_mem = (sq @ M) / ((sq @ z.unsqueeze(-1)) + 1e-6)
        g = torch.sigmoid(self.beta).view(1, -1, 1, 1)
        a = (g * a_mem + (1 - g) * a_dot.float()).to(a_dot.dtype)
        if write:
            prev = (sk @ M) / ((sk @ z.unsqueeze(-1)) + 1e-6)
            M = M + sk.transpose(-1, -2) @ (v.float() - prev)
            z = z + sk.sum(-2)
        return a, M, z


class CtxModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.state_shapes = [cfg.layer_state_shapes(i) for i in range(cfg.n_layers)]   # (M, z) per layer, for unpack
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.lnf = nn.LayerNorm(cfg.d_model)
        self.mem = nn.Parameter(torch.randn(cfg.mem_tokens, cfg.d_model) * 0.02) if cfg.memory == 'armt' else None
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        if cfg.memory == 'armt':   # start with an empty-writing memory and an open write gate (as ARMT)
            for b in self.blocks:
                nn.init.zeros_(b.mv.weight)
                nn.init.ones_(b.mb.bias)
                if b.mh is not None:
                    nn.init.zeros_(b.mh.weight)

    # ---- training switches for the write gates (train.py) --------------------------------------------------
    def use_memories(self, off=()):
        """The memories of layers `off` are neither read nor written (their state passes through unchanged) until the
        next call; use_memories() switches every configured memory back on. train.py --drop_memory: a memory added
        beside others that already answer is left unused (RUNS.md run 16) unless the others are sometimes away."""
        for i, b in enumerate(self.blocks):
            b.has_memory = b.own_memory and i not in off

    @contextlib.contextmanager
    def memories_off(self, off):
        """use_memories(off) for the length of a with-block, every memory switched back on after it, whatever happens."""
        self.use_memories(off)
        try:
            yield
        finally:
            self.use_memories()

    def open_gates(self, on):
        for b in self.blocks:
            b.gate_open = on

    def log_gates(self, on):
        """Collect (on) or stop collecting the mean write gate of every write in layers with memory."""
        for b in self.blocks:
            b.gate_log = [] if on and b.has_memory else None

    def gate_means(self):
        """Mean write gate of each layer that wrote since log_gates(True), {layer index: mean}, with gradients."""
        return {i: torch.stack(b.gate_log).mean() for i, b in enumerate(self.blocks) if b.gate_log}

    @torch.no_grad()
    def reset_gates(self, bias):
        for b in self.blocks:
            nn.init.zeros_(b.mb.weight)
            nn.init.constant_(b.mb.bias, bias)

    # ---- the flat state ----------------------------------------------------------------------------------
    def empty_state(self, batch=1, device='cpu'):
        return torch.zeros(batch, self.cfg.state_size, device=device)

    def unpack(self, state):
        """[B, state_size] -> list of (M, z) per layer (views)."""
        B, out, i = state.shape[0], [], 0
        for ms, zs in self.state_shapes:
            nm, nz = math.prod(ms), math.prod(zs)
            out.append((state[:, i:i + nm].reshape(B, *ms), state[:, i + nm:i + nm + nz].reshape(B, *zs)))
            i += nm + nz
        return out

    def memory_layers(self, every_row):
        """Indices of the layers whose memory every row writes (every_row) or the memory tokens alone write (not)."""
        return [i for i, b in enumerate(self.blocks) if b.has_memory and b.write_all == every_row]

    def mask_without(self, every_row):
        """[state_size]: 0 over the memories of memory_layers(every_row), 1 elsewhere: what of a state is kept when
        those memories are emptied."""
        off = self.memory_layers(every_row)
        return self.pack([(torch.full_like(M, float(i not in off)), torch.full_like(z, float(i not in off)))
                          for i, (M, z) in enumerate(self.unpack(self.empty_state()))])[0]

    @staticmethod
    def pack(layers):
        B = layers[0][0].shape[0]
        return torch.cat([t.reshape(B, -1) for mz in layers for t in mz], 1)

    # ---- the two computations the product runs -----------------------------------------------------------
    def document_heads(self, tokens, emb):
        """Each row's document header: the mean embedding of the header rows ('<doc>'/'<cont>' up to and including
        its first newline) of the last header at or before the row, over [B,T] tokens with embeddings emb [B,T,D];
        zeros before a segment's first header. Written with cumsum, comparisons and one [T,T] matmul so that it
        exports to ONNX as it is."""
        start = ((tokens == 3) | (tokens == 4)).float()          # stream.py SPECIAL doc, cont
        doc = start.cumsum(1)                                     # which header a row follows (0: none yet)
        nl = (tokens == self.cfg.nl_id).float()
        T = tokens.shape[1]
        earlier = torch.ones(T, T, device=tokens.device).tril()  # earlier[t, j] = j <= t
        same = (doc[:, :, None] == doc[:, None, :]).float() * earlier
        nl_before = (same * nl[:, None, :]).sum(-1) - nl           # newlines of its document strictly before a row
        in_head = (doc > 0).float() * (nl_before == 0).float()
        w = same * in_head[:, None, :]
        return ((w @ emb.float()) / w.sum(-1, keepdim=True).clamp(min=1.0)).to(emb.dtype)

    def fold(self, tokens, state, return_hidden=False):
        """Fold one segment into the memory: tokens [B,T] -> new state (and hidden states of the text tokens)."""
        cfg = self.cfg
        x = self.emb(tokens)
        head = self.document_heads(tokens, x) if any(b.cfg.doc_value for b in self.blocks) else None
        if cfg.memory == 'armt':
            x = torch.cat([x, self.mem.to(x.dtype).expand(x.shape[0], -1, -1)], 1)
            if head is not None:   # memory tokens follow the segment's last row, in its document
                head = torch.cat([head, head[:, -1:].expand(-1, cfg.mem_tokens, -1)], 1)
        pos = torch.arange(x.shape[1], device=x.device)
        layers = []
        for blk, (M, z) in zip(self.blocks, self.unpack(state)):
            x, M, z, _ = blk(x, M, z, pos, write=True, head=head)
            layers.append((M, z))
        new_state = self.pack(layers)
        if return_hidden:
            return new_state, x[:, :tokens.shape[1]]
        return new_state

    def decode(self, tokens, state, past=None, offset=0):
        """Read-only step: tokens [B,t] at positions offset.. with the cache past (per layer (k, v, q_rows) as
        Block.forward returns it, or None) -> logits [B,t,V], new cache. The memory is read, never written."""
        pos = torch.arange(tokens.shape[1], device=tokens.device) + offset
        x, cache = self.emb(tokens), []
        for i, (blk, (M, z)) in enumerate(zip(self.blocks, self.unpack(state))):
            x, _, _, kv = blk(x, M, z, pos, write=False, past=None if past is None else past[i])
            cache.append(kv)
        return self.logits(x), cache

    def logits(self, x):
        return self.lnf(x) @ self.emb.weight.T   # tied embedding: saves vocab x d parameters

    def forward(self, segments, qa, targets, use_memory=True, ans_weight=5.0, lm=True, owner=None, state=None):
        """Training step. segments [B,nseg,N], qa [R,L] question+answer tokens, targets [R,L] (-100 = ignore),
        owner [R]: the stream each question row asks about (None: row i asks about stream i); state: the memory
        to start from (None: empty).
        Returns loss, lm loss, answer loss, exact-match rate of answers (mean over rows)."""
        B, nseg, _ = segments.shape
        state = self.empty_state(B, segments.device) if state is None else state
        lm_loss = segments.new_zeros((), dtype=torch.float32)
        for i in range(nseg):
            tok = segments[:, i]
            if lm:
                new_state, l = self.fold_lm(tok, state)
                lm_loss = lm_loss + l / nseg
            else:
                new_state = self.fold(tok, state)
            if use_memory:
                state = new_state
        return self.answer_loss(qa, targets, state if owner is None else state[owner], lm_loss, ans_weight)

    def fold_lm(self, tokens, state):
        """fold, and the segment's next-token loss: one training step over a segment (train.run_stream runs it
        under activation checkpointing)."""
        new_state, h = self.fold(tokens, state, return_hidden=True)
        lg = self.logits(h[:, :-1])
        return new_state, F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), tokens[:, 1:].reshape(-1))

    def answer_loss(self, qa, targets, state, lm_loss, ans_weight):
        """The questions decoded from their streams' memory state [R, state_size]: loss (lm_loss + weighted answer
        loss), lm loss, answer loss, exact-match rate."""
        logits, _ = self.decode(qa, state)
        ans = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        mask = targets != -100
        exact = ((logits.argmax(-1) == targets) | ~mask).all(-1).float().mean()
        return lm_loss + ans_weight * ans, lm_loss.detach(), ans.detach(), exact.detach()
