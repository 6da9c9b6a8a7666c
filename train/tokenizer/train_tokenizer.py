"""Build the tokenizer: gather real text available offline (code, prose, logs) and run spm_train.

Sources (all on a stock Debian machine with the project's npm install):
  code   Python's standard library, the JavaScript/TypeScript in node_modules
  prose  man pages rendered by man(1), READMEs and changelogs under /usr/share/doc
  logs   the machine's own logs under /var/log (dpkg, apt, alternatives)
spm_train reads one sentence per line, so newlines never enter a piece: a newline is always the single
byte-fallback token <0x0A>. The stream format's markers are control symbols: they have fixed ids and can
never be produced by encoding text, so a file containing "<doc>" cannot forge a header.

Usage: python3 train/tokenizer/train_tokenizer.py --out models/ctx-small/tokenizer [--mb 40]
"""
import argparse, gzip, os, random, subprocess, sys, tempfile

CONTROL = ['<doc>', '<cont>', '<page>', '<q>', '<a>']   # ids 3..7, after <pad>=0 <unk>=1 </s>=2


def files_under(root, exts):
    for dp, dn, fn in os.walk(root):
        dn[:] = sorted(d for d in dn if d not in ('.git', 'test', 'tests', '__pycache__'))
        for f in sorted(fn):
            if f.endswith(exts):
                yield os.path.join(dp, f)


def read_text(path, limit=200_000):
    try:
        opener = gzip.open if path.endswith('.gz') else open
        with opener(path, 'rb') as fh:
            b = fh.read(limit)
        if b'\0' in b:
            return None
        return b.decode('utf-8')
    except (OSError, UnicodeDecodeError, EOFError):
        return None


def man_page(path):
    try:
        r = subprocess.run(['man', '-l', path], capture_output=True, timeout=20,
                           env={**os.environ, 'MANWIDTH': '80', 'MAN_KEEP_FORMATTING': '0'})
        out = subprocess.run(['col', '-bx'], input=r.stdout, capture_output=True).stdout
        return out.decode('utf-8', 'replace')
    except (OSError, subprocess.TimeoutExpired):
        return None


def gather(budget_bytes, node_modules, rng):
    """Returns a list of text blobs, each group capped at its share of the budget."""
    groups = {
        'python': (list(files_under('/usr/lib/python3.11', ('.py',))), read_text, 0.30),
        'js': (list(files_under(node_modules, ('.js', '.ts', '.mjs', '.cjs', '.md', '.json'))), read_text, 0.25),
        'man': (list(files_under('/usr/share/man/man1', ('.gz',)))
                + list(files_under('/usr/share/man/man8', ('.gz',))), man_page, 0.15),
        'doc': ([p for p in files_under('/usr/share/doc', ('README', 'README.md', '.txt', 'changelog.Debian.gz',
                                                          'NEWS.gz', 'README.gz', 'changelog.gz'))], read_text, 0.15),
        'logs': (list(files_under('/var/log', ('.log',))) + list(files_under('/var/log/apt', ('.log', '.gz'))),
                 read_text, 0.15),
    }
    blobs = []
    for name, (paths, reader, share) in groups.items():
        rng.shuffle(paths)
        used = 0
        for p in paths:
            if used >= share * budget_bytes:
                break
            t = reader(p)
            if t:
                t = t[: int(share * budget_bytes) - used]
                blobs.append(t)
                used += len(t)
        print(f'{name}: {used / 1e6:.1f} MB from {len(paths)} candidate files', file=sys.stderr)
    return blobs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True, help='output prefix (writes PREFIX.model and PREFIX.vocab)')
    ap.add_argument('--mb', type=float, default=40)
    ap.add_argument('--vocab', type=int, default=8192)
    ap.add_argument('--node_modules', default='node_modules')
    args = ap.parse_args()
    rng = random.Random(0)
    blobs = gather(int(args.mb * 1e6), args.node_modules, rng)
    with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False, encoding='utf-8') as tmp:
        for b in blobs:
            for line in b.split('\n'):
                if line.strip():
                    tmp.write(line[:4000] + '\n')
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    cmd = ['spm_train', f'--input={tmp.name}', f'--model_prefix={args.out}', f'--vocab_size={args.vocab}',
           '--model_type=unigram', '--character_coverage=0.9995', '--byte_fallback=true',
           '--normalization_rule_name=identity', '--remove_extra_whitespaces=false', '--add_dummy_prefix=false',
           '--split_digits=true', '--allow_whitespace_only_pieces=true', '--max_sentencepiece_length=16',
           '--pad_id=0', '--unk_id=1', '--bos_id=-1', '--eos_id=2', '--control_symbols=' + ','.join(CONTROL),
           '--input_sentence_size=2000000', '--shuffle_input_sentence=true', '--num_threads=2',
           '--random_seed=1', '--minloglevel=1']
    print(' '.join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    os.unlink(tmp.name)


if __name__ == '__main__':
    main()
