/**
 * The SentencePiece tokenizer (trained by train/tokenizer/train_tokenizer.py), run through sentencepiece-js
 * (the C++ library compiled to WebAssembly), so that TypeScript and the Python training code split text
 * identically. Round trips are exact: identity normalisation, no dummy prefix, byte fallback.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SentencePieceProcessor } from '@sctg/sentencepiece-js';
import { CtxError } from '../errors.js';

/** Control symbols of the stream format, with the ids spm_train gives them (see train_tokenizer.py). */
export const SPECIAL = { pad: 0, unk: 1, eos: 2, doc: 3, cont: 4, page: 5, q: 6, a: 7 } as const;
const SPECIAL_PIECES: Record<string, number> = { '<doc>': 3, '<cont>': 4, '<page>': 5, '<q>': 6, '<a>': 7 };

export class Tokenizer {
  private constructor(private readonly sp: SentencePieceProcessor, readonly sha256: string) {}

  static async load(path: string): Promise<Tokenizer> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new CtxError(`cannot read tokenizer ${path}: ${(e as Error).message}`);
    }
    const sp = new SentencePieceProcessor();
    await sp.loadFromB64StringModel(bytes.toString('base64'));
    const tok = new Tokenizer(sp, createHash('sha256').update(bytes).digest('hex'));
    tok.checkControlSymbols(path);
    return tok;
  }

  /** A corrupt model loads "successfully" in sentencepiece-js and then encodes nothing: check it here. */
  private checkControlSymbols(path: string): void {
    for (const [piece, id] of Object.entries(SPECIAL_PIECES)) {
      if (this.pieceToId(piece) !== id) throw new CtxError(`${path} is not a ctx tokenizer (control symbol ${piece} is not id ${id})`);
    }
  }

  private pieceToId(piece: string): number {
    const sv = new this.sp.sentencepiece.StringView(piece);
    const view = sv.getView();
    try {
      return this.sp.processor.PieceToId(view) as number;
    } finally {
      view.delete();
      sv.delete();
    }
  }

  encode(text: string): number[] {
    return text.length === 0 ? [] : this.sp.encodeIds(text);
  }

  /** Control symbols decode to nothing; byte-fallback pieces are reassembled into UTF-8. */
  decode(ids: ArrayLike<number>): string {
    return ids.length === 0 ? '' : (this.sp.decodeIds(Int32Array.from(ids)) as string);
  }
}
