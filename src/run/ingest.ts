/**
 * The ingest flow: sources -> documents -> stream format -> segments -> fold -> snapshot.
 *
 * What lives on disk, for a snapshot S (`ask` reads only S and its manifest):
 *   S                 the snapshot. Replaced only when an ingest completes (S.partial renamed onto it), so an
 *                     interrupted or crashed ingest never costs the snapshot that was there before.
 *   S.partial         the ingest in progress, written atomically at every checkpoint.
 *   S.partial.json    its resume record (ResumeRecord below), written atomically right after S.partial.
 *   S.lock            the pid of the ingest writing S while it runs (src/snapshot/lock.ts): a second ingest
 *                     into S is refused instead of overwriting the first one's checkpoints.
 *   S.manifest.json   the source files folded into S, with size, mtime and the path each was folded under
 *                     (src/ingest/manifest.ts): saved when an ingest completes; `--append` skips files
 *                     unchanged since and folds only what a log appended (its tail hash), and `ask` ranks
 *                     those paths for "where / which file" questions
 *                     (it reads nothing else but S).
 *
 * A checkpoint writes S.partial and S.partial.json; the open segment (the last < 512 tokens read) is not folded
 * but kept in the record, so that where segments are cut — and so the snapshot — never depends on when
 * checkpoints happened to fall (a slower machine checkpoints at other places). Completing, and every save
 * while following a log, fold it: a snapshot holds all the text read. `ctx ingest` with the same paths (and
 * mode) finds them and continues: documents already folded are skipped, and so are the parts already folded
 * of the document that was being read (a huge log is not read twice into the memory). Other paths, or
 * `restart`, discard them.
 *
 * Following a log (`follow`): the file's current content is folded like any ingest (into S.partial); once it
 * has caught up with the end of the file, S.partial becomes S, and from then on every save writes S itself:
 * each save is then a complete ingest of the log up to its last line.
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { Model } from '../engine/model.js';
import { emptyMemory, foldMemory } from '../engine/fold.js';
import { CtxError } from '../errors.js';
import {
  emptyManifest, followLog, ingestSources, isUnchanged, loadManifest, logPartsFrom, logTail, recordSource, saveManifest,
  sourceFiles, tailHash, type IngestOptions as SourceOptions, type Manifest, type ManifestSource,
} from '../ingest/index.js';
import type { DocKind, DocPart, Document, Skipped } from '../ingest/types.js';
import { Segmenter } from '../stream/segmenter.js';
import {
  checkCompatible, newHeader, readSnapshot, writeFileAtomic, writeSnapshot, type Snapshot, type SnapshotCounts,
} from '../snapshot/file.js';
import { lockSnapshot } from '../snapshot/lock.js';
import { snapshotFiles } from '../snapshot/path.js';

export interface IngestProgress {
  documents: number;
  skipped: number;
  pages: number;
  tokens: number;
  segments: number;
  elapsedMs: number;
  tokensPerSec: number;
  path?: string;
  /** True once a followed log has caught up: what comes now are appended lines (no end, no ETA). */
  following?: boolean;
}

export interface IngestSummary {
  /** The snapshot this ingest is for (unchanged when `interrupted`: see `partial`). */
  snapshot: string;
  /** Size of the file written last (the snapshot, or the partial when interrupted); fixed by the model. */
  snapshotBytes: number;
  documents: Partial<Record<DocKind, number>>;
  skipped: Skipped[];
  /** Tokens and segments folded by this run. */
  tokens: number;
  segments: number;
  pages: number;
  /** Totals held by the snapshot (this run, what it resumed, and what it was appended to). */
  total: Snapshot['header']['counts'];
  ms: number;
  interrupted: boolean;
  /** Documents folded by an interrupted ingest that this run resumed (0 when it started afresh). */
  resumed: number;
  /** When interrupted: where what was folded so far is saved (run the same ingest again to resume). */
  partial?: string;
  append: boolean;
  follow: boolean;
}

export interface IngestRunOptions {
  model: Model;
  paths: string[];
  snapshotPath: string;
  append?: boolean;
  /** Discard the partial state of an interrupted ingest instead of resuming it. */
  restart?: boolean;
  /** `paths` is one log file: after its content, fold appended lines until the signal aborts. */
  follow?: boolean;
  checkpointMs?: number;
  signal?: AbortSignal;
  sources?: SourceOptions;
  onProgress?: (p: IngestProgress) => void;
  onSkip?: (s: Skipped) => void;
  /** One-line messages for the user: resuming, discarding a partial ingest, following. */
  onNotice?: (line: string) => void;
  /** After every save (checkpoint, completion, follow save): what the saved state holds. */
  onCheckpoint?: (c: CheckpointInfo) => void;
}

export interface CheckpointInfo {
  /** The file written: `<snapshot>.partial` while the ingest is incomplete, the snapshot once it is. */
  file: string;
  counts: SnapshotCounts;
  /** The document being read and how many of its parts (pieces, see `pieces`) are folded; null between documents. */
  current: { absPath: string; parts: number } | null;
}

/**
 * The resume record, `<snapshot>.partial.json` (a file of its own rather than the sidecar manifest: the
 * manifest describes a complete snapshot, this an ingest in progress; `ask` never reads this one):
 *
 *   { "version": 1,
 *     "paths": ["/abs/repo", "/abs/app.log"],  the ingest's arguments, resolved, in order
 *     "append": false, "follow": false,        the mode: resuming needs the same paths and mode
 *     "base": null,                            append: `updated` of the snapshot appended to; a snapshot
 *                                              replaced since then voids the record
 *     "counts": {"tokens":..,"segments":..,"documents":..,"sources":..},
 *                                              the partial's header counts when this was written: a partial
 *                                              and a record of different checkpoints (a crash between the two
 *                                              writes) do not match, and are discarded
 *     "done": ["/abs/repo/a.ts", ...],         Document.absPath of every document completely folded
 *     "current": {"absPath": "/abs/app.log", "parts": 1234} | null,
 *                                              the document being read, and how many of its parts are
 *                                              folded: the ingestor's parts (DocPart) cut by `pieces` below
 *                                              into about 4 KiB each, the unit of folding and checkpoints
 *     "sources": {"/abs/repo/a.ts": {"absPath":..,"size":..,"mtimeMs":..,"kind":"code","docPath":"a.ts"}, ...}
 *                                              the files of the done documents, as the manifest will list them
 *     "open": [5, 812, ...]                    the open segment's tokens, read but not yet folded (absent in
 *                                              records of older versions, which folded it at every checkpoint)
 *   }
 */
export interface ResumeRecord {
  version: typeof RECORD_VERSION;
  paths: string[];
  append: boolean;
  follow: boolean;
  base: string | null;
  counts: SnapshotCounts;
  done: string[];
  current: { absPath: string; parts: number } | null;
  sources: Record<string, ManifestSource>;
  open?: number[];
}

const RECORD_VERSION = 1;
const DEFAULT_CHECKPOINT_MS = 30_000;

export const partialPath = (snapshotPath: string): string => `${snapshotPath}.partial`;
export const resumeRecordPath = (snapshotPath: string): string => `${snapshotPath}.partial.json`;

/** User mistakes, found before anything is read or written: no path, a path that does not exist, --follow
 *  on anything but one file. */
export function checkIngestPaths(paths: string[], follow = false): void {
  if (paths.length === 0) throw new CtxError('nothing to ingest: name at least one file or folder');
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length) throw new CtxError(`no such file or folder: ${missing.join(', ')}`);
  if (!follow) return;
  if (paths.length !== 1) throw new CtxError(`--follow takes exactly one log file, not ${paths.length} paths`);
  if (!statSync(paths[0]).isFile()) throw new CtxError(`--follow takes a log file, and ${paths[0]} is not a file`);
}

export async function runIngest(o: IngestRunOptions): Promise<IngestSummary> {
  checkIngestPaths(o.paths, o.follow);
  const unlock = lockSnapshot(o.snapshotPath);
  try {
    return await lockedIngest({ ...o, sources: { ...o.sources, exclude: snapshotFiles(o.snapshotPath) } });
  } finally {
    unlock();
  }
}

async function lockedIngest(o: IngestRunOptions): Promise<IngestSummary> {
  const t0 = performance.now();
  const store = await IngestStore.open(o);
  const run = new FoldRun(o, store, t0);
  let interrupted: boolean;
  try {
    interrupted = o.follow ? await run.follow() : await run.foldSources();
  } catch (e) {
    await run.saveAfterError();
    throw e;
  }
  if (!interrupted && !o.follow) await run.complete();
  return run.summary(interrupted);
}

/** Where an ingest keeps what it folded: the one place that decides between resuming and starting, and
 *  that writes checkpoints and completes (or, following a log, saves the snapshot itself). */
class IngestStore {
  /** Following a log that caught up: saves go to the snapshot itself. */
  private live = false;
  private readonly done: Set<string>;

  private constructor(
    readonly target: string,
    readonly snap: Snapshot,
    readonly record: ResumeRecord,
    /** The manifest of the snapshot appended to (empty for a fresh ingest): for skipping unchanged files. */
    private readonly manifest: Manifest,
    /** Documents folded by the interrupted ingest resumed here. */
    readonly resumed: number,
  ) {
    this.done = new Set(record.done);
  }

  static async open(o: IngestRunOptions): Promise<IngestStore> {
    const target = o.snapshotPath;
    const paths = o.paths.map((p) => resolve(p));
    const append = o.append ?? false;
    const follow = o.follow ?? false;
    const base = append && existsSync(target) ? readSnapshot(target) : undefined;
    if (base) checkCompatible(base.header, o.model.config, target);
    const manifest = append ? await loadManifest(target) : emptyManifest();

    const found = readPartial(target);
    if (found) {
      const why = o.restart ? 'restart' : ('reason' in found ? found.reason : mismatch(found, { paths, append, follow, base, model: o.model }));
      if (!why) {
        const { snap, record } = found as { snap: Snapshot; record: ResumeRecord };
        o.onNotice?.(resumeNotice(record));
        return new IngestStore(target, snap, record, manifest, record.done.length);
      }
      o.onNotice?.(`${o.restart ? 'restarting: ' : ''}discarding the interrupted ingest in ${partialPath(target)}${o.restart ? '' : ` (${why})`}`);
      removePartial(target);
    }

    const snap: Snapshot = base ?? { header: newHeader(o.model.config), ...emptyMemory(o.model) };
    snap.header.counts.sources += paths.length;
    const record: ResumeRecord = {
      version: RECORD_VERSION, paths, append, follow, base: base?.header.updated ?? null,
      counts: { ...snap.header.counts }, done: [], current: null, sources: {},
    };
    return new IngestStore(target, snap, record, manifest, 0);
  }

  /** The file the next save writes. */
  get file(): string {
    return this.live ? this.target : partialPath(this.target);
  }

  isDone(absPath: string): boolean {
    return this.done.has(absPath);
  }

  /** Parts of this document folded before the interruption (0 unless it is the one that was being read). */
  partsDone(absPath: string): number {
    return this.record.current?.absPath === absPath ? this.record.current.parts : 0;
  }

  /** Append mode: every file of the document has the size and mtime the manifest recorded. */
  isUnchanged(files: ManifestSource[]): boolean {
    return this.record.append && files.length > 0 && files.every((f) => isUnchanged(this.manifest, f.absPath, f));
  }

  /** Append mode: the byte a log grown since it was folded continues from (only what was appended is new). */
  async grownFrom(files: ManifestSource[]): Promise<number | undefined> {
    return this.record.append && files.length === 1 ? logTail(this.manifest, files[0]) : undefined;
  }

  setCurrent(absPath: string, parts: number): void {
    this.record.current = { absPath, parts };
  }

  finishDocument(absPath: string, files: ManifestSource[]): void {
    if (!this.done.has(absPath)) {
      this.done.add(absPath);
      this.record.done.push(absPath);
    }
    this.updateSources(files);
    this.record.current = null;
  }

  /** New sizes and mtimes for files already folded (a followed log that grew). */
  updateSources(files: ManifestSource[]): void {
    for (const f of files) this.record.sources[f.absPath] = f;
  }

  /** A checkpoint's write: the partial and its record (each atomic), or, following live, the snapshot and
   *  its manifest (the caller has then folded the open segment). */
  async save(): Promise<void> {
    this.snap.header.updated = new Date().toISOString();
    if (this.live) {
      writeSnapshot(this.target, this.snap);
      await this.saveManifest();
      return;
    }
    writeSnapshot(partialPath(this.target), this.snap);
    this.record.counts = { ...this.snap.header.counts };
    writeFileAtomic(resumeRecordPath(this.target), `${JSON.stringify(this.record)}\n`);
  }

  /** The ingest is complete (and was just saved): the partial becomes the snapshot. Renamed before the
   *  manifest is saved: a crash in between makes a later --append fold some files twice, never lose one. */
  async complete(): Promise<void> {
    renameSync(partialPath(this.target), this.target);
    await this.saveManifest();
    rmSync(resumeRecordPath(this.target), { force: true });
    this.live = true;
  }

  private async saveManifest(): Promise<void> {
    const m: Manifest = { ...this.manifest, sources: { ...this.manifest.sources } };
    for (const s of Object.values(this.record.sources)) recordSource(m, s);
    await saveManifest(this.target, m);
  }
}

type Found = { snap: Snapshot; record: ResumeRecord } | { reason: string };

/** The partial ingest next to the snapshot, if any (either file alone is a leftover, reported as such). */
function readPartial(target: string): Found | undefined {
  const hasPartial = existsSync(partialPath(target));
  const hasRecord = existsSync(resumeRecordPath(target));
  if (!hasPartial && !hasRecord) return undefined;
  if (!hasPartial || !hasRecord) return { reason: hasPartial ? 'no resume record' : 'no partial snapshot' };
  try {
    const record = JSON.parse(readFileSync(resumeRecordPath(target), 'utf8')) as ResumeRecord;
    return { snap: readSnapshot(partialPath(target)), record };
  } catch (e) {
    return { reason: `unreadable: ${(e as Error).message.replace(/\s+/g, ' ').trim()}` };
  }
}

/** Why a partial ingest cannot be resumed by this one; undefined when it can. */
function mismatch(f: { snap: Snapshot; record: ResumeRecord },
  want: { paths: string[]; append: boolean; follow: boolean; base?: Snapshot; model: Model }): string | undefined {
  const r = f.record;
  if (r?.version !== RECORD_VERSION) return `resume record version ${String(r?.version)}`;
  if (!Array.isArray(r.paths) || !Array.isArray(r.done) || typeof r.sources !== 'object' || r.sources === null) return 'malformed resume record';
  const { seg_len: segLen, vocab_size: vocab } = want.model.config;
  if (r.open !== undefined && !(Array.isArray(r.open) && r.open.length < segLen && r.open.every((t) => Number.isInteger(t) && t >= 0 && t < vocab))) {
    return 'malformed resume record';
  }
  if (JSON.stringify(r.paths) !== JSON.stringify(want.paths)) return `it was of ${r.paths.join(' ')}`;
  if (r.append !== want.append) return r.append ? 'it was started with --append' : 'it was started without --append';
  if (r.follow !== want.follow) return r.follow ? 'it was started with --follow' : 'it was started without --follow';
  try {
    checkCompatible(f.snap.header, want.model.config);
  } catch {
    return 'it was made with another model';
  }
  if (JSON.stringify(r.counts) !== JSON.stringify(f.snap.header.counts)) return 'its record and partial snapshot do not match';
  if (r.append && r.base !== (want.base?.header.updated ?? null)) return 'the snapshot it appends to has changed since';
  return undefined;
}

function removePartial(target: string): void {
  rmSync(partialPath(target), { force: true });
  rmSync(resumeRecordPath(target), { force: true });
}

function resumeNotice(r: ResumeRecord): string {
  const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;
  const cur = r.current && `${count(r.current.parts, 'part')} of ${r.current.absPath}`;
  if (r.done.length === 0 && cur) return `resuming: ${cur} already folded`;
  return `resuming: ${count(r.done.length, 'document')} already folded${cur ? `, and ${cur}` : ''}`;
}

/** A marker in a followed log's parts: nothing arrived for a while (time to save, or we have caught up). */
const TICK = Symbol('tick');
type Tick = typeof TICK;

type DocOutcome = { done: true } | { done: false; aborted: true } | { done: false; aborted: false; error: string };

/** Folding: the segmenter, the state, this run's counts, and when to checkpoint. */
class FoldRun {
  private readonly seg: Segmenter;
  private readonly model: Model;
  private readonly checkpointMs: number;
  private readonly run = { tokens: 0, segments: 0, pages: 0, docCount: 0, documents: {} as Partial<Record<DocKind, number>> };
  private readonly skipped: Skipped[] = [];
  private lastSave = performance.now();
  /** Something was folded, buffered or recorded since the last save. */
  private dirty = false;
  private current?: string;
  private following = false;

  constructor(private readonly o: IngestRunOptions, private readonly store: IngestStore, private readonly t0: number) {
    this.model = o.model;
    this.seg = new Segmenter(o.model.tokenizer, o.model.config.seg_len);
    this.checkpointMs = o.checkpointMs ?? DEFAULT_CHECKPOINT_MS;
    // Resuming: the segment that was open when the interrupted ingest saved goes on where it stopped.
    if (store.record.open?.length) this.seg.restore(store.record.open);
  }

  private get aborted(): boolean {
    return this.o.signal?.aborted ?? false;
  }

  /** Every source, document by document; true when interrupted. */
  async foldSources(): Promise<boolean> {
    for await (const item of ingestSources(this.o.paths, this.o.sources)) {
      if (this.aborted) return this.interrupt();
      if (item.type === 'skipped') {
        this.skip(item.skipped);
        continue;
      }
      const doc = item.doc;
      if (this.store.isDone(doc.absPath)) continue;
      const files = await statSources(doc);
      if (this.store.isUnchanged(files)) {
        this.skip({ path: doc.path, reason: 'unchanged since last ingest' });
        continue;
      }
      const from = await this.store.grownFrom(files);
      if (from !== undefined) this.o.onNotice?.(`${doc.path} grew since last ingest: folding only the ${files[0].size - from} bytes appended`);
      const parts = from === undefined ? doc.parts() : logPartsFrom(doc.absPath, from);
      this.current = doc.path;
      const outcome = await this.foldDocument(doc, parts, this.store.partsDone(doc.absPath));
      if (!outcome.done && outcome.aborted) return this.interrupt();
      if (!outcome.done) this.skip({ path: doc.path, reason: outcome.error });
      if (outcome.done || this.store.partsDone(doc.absPath) > 0) this.finishDocument(doc, files);
      await this.maybeCheckpoint();
    }
    return false;
  }

  /**
   * Follows one log: folds its content, then its appended lines until the signal aborts. Interrupted only
   * when stopped before catching up with the end of the file (the content as it was is then incomplete).
   */
  async follow(): Promise<boolean> {
    const arg = this.o.paths[0];
    const absPath = resolve(arg);
    const path = arg.split(sep).join('/');
    const [file] = await statSources({ kind: 'log', absPath, path });
    // Appending a log unchanged since it was folded: only the lines appended from now on are new.
    const fromStart = !this.store.isUnchanged([file]);
    const initialBytes = fromStart ? file.size : 0;
    const signal = this.o.signal ?? new AbortController().signal;
    const doc: Document = { kind: 'log', path, absPath, parts: () => followLog(absPath, { signal, fromStart }) };
    this.current = doc.path;
    if (!fromStart) this.o.onNotice?.(`${doc.path} is unchanged since last ingest: folding only the lines appended from now on`);

    let read = 0; // bytes of the parts handed out, skipped ones included
    const counted = tap(doc.parts(), (part) => { read += Buffer.byteLength(part.text); });
    const catchUp = async () => {
      this.finishDocument(doc, await statSources(doc));
      await this.complete();
      this.following = true;
      this.o.onNotice?.(`caught up with ${doc.path}: following it (Ctrl-C stops and saves)`);
    };
    // Ticks are the follower's "nothing new": short enough to save on time, long enough that reading the
    // file's content never pauses for one (an early tick would only make the snapshot current sooner).
    const tickMs = Math.min(1000, Math.max(250, this.checkpointMs));
    const outcome = await this.foldDocument(doc, withTicks(counted, tickMs), this.store.partsDone(absPath), {
      stop: () => this.aborted && !this.following,
      after: async (part) => {
        // Caught up: all the bytes the file had were read, or the follower had nothing to give for a tick.
        if (!this.following && (read >= initialBytes || !part)) await catchUp();
        else await this.maybeCheckpoint(this.following ? () => this.store.updateSources([file]) : undefined);
      },
    });
    if (!outcome.done && !outcome.aborted) throw new CtxError(`cannot follow ${doc.path}: ${outcome.error}`);
    if (!this.following) return this.interrupt();
    this.store.updateSources(await statSources(doc));
    this.dirty = true;
    await this.checkpoint();
    return false;
  }

  /**
   * Folds one document's parts, each cut into pieces (see `pieces`), skipping the first `skip` pieces
   * (folded before an interruption: the segmenter is only told of them, so that the next segment starts
   * with the right continuation header, exactly as after the checkpoint that saved them). `after` runs after
   * every piece and tick (default: checkpoint when due); the signal is looked at before every piece.
   */
  private async foldDocument(doc: Document, parts: AsyncIterable<DocPart | Tick>, skip: number,
    hooks: { stop?: () => boolean; after?: (part?: DocPart) => Promise<void> } = {}): Promise<DocOutcome> {
    const stop = hooks.stop ?? (() => this.aborted);
    const after = hooks.after ?? (() => this.maybeCheckpoint());
    let n = 0;
    let begun = false;
    // The header is folded with the first part, so that a file that cannot be read leaves no trace.
    const begin = async () => {
      if (begun) return;
      begun = true;
      if (skip > 0) this.seg.enter(doc);
      else await this.fold(this.seg.beginDocument(doc));
      this.dirty = true;
    };
    for await (const part of readErrorsAsItems(parts)) {
      if (stop()) return { done: false, aborted: true };
      if (isReadFailure(part)) {
        const what = `unreadable (${part.readFailure})`;
        return { done: false, aborted: false, error: n > skip ? `${what} after ${n} parts; those are folded` : what };
      }
      await begin();
      if (part === TICK) {
        await after();
        continue;
      }
      for (const [i, text] of pieces(part.text).entries()) {
        if (i > 0 && stop()) return { done: false, aborted: true };
        const page = i === 0 ? part.page : undefined;
        n += 1;
        if (n <= skip) {
          if (page !== undefined) this.seg.enter(doc, page);
          continue;
        }
        if (page !== undefined) {
          this.run.pages += 1;
          await this.fold(this.seg.beginPage(page));
        }
        await this.fold(this.seg.text(text));
        this.store.setCurrent(doc.absPath, n);
        this.dirty = true;
        await after({ text, page });
      }
    }
    if (stop()) return { done: false, aborted: true };
    await begin();
    return { done: true };
  }

  private finishDocument(doc: Document, files: ManifestSource[]): void {
    this.run.documents[doc.kind] = (this.run.documents[doc.kind] ?? 0) + 1;
    this.run.docCount += 1;
    this.store.snap.header.counts.documents += 1;
    this.store.finishDocument(doc.absPath, files);
    this.dirty = true;
    this.progress();
  }

  private skip(s: Skipped): void {
    this.skipped.push(s);
    this.o.onSkip?.(s);
  }

  private async fold(segments: Int32Array[]): Promise<void> {
    const { header } = this.store.snap;
    for (const s of segments) {
      const { state, alone } = await foldMemory(this.model, this.store.snap, s, header.counts.segments);
      Object.assign(this.store.snap, { state, alone });
      this.run.tokens += s.length;
      this.run.segments += 1;
      header.counts.tokens += s.length;
      header.counts.segments += 1;
    }
    if (segments.length) this.progress();
  }

  private progress(): void {
    const elapsedMs = performance.now() - this.t0;
    this.o.onProgress?.({
      documents: this.run.docCount, skipped: this.skipped.length, pages: this.run.pages, tokens: this.run.tokens,
      segments: this.run.segments, elapsedMs, tokensPerSec: this.run.tokens / Math.max(1e-3, elapsedMs / 1000),
      path: this.current, following: this.following,
    });
  }

  /** Checkpoint when the interval has passed and there is something new to save. */
  private async maybeCheckpoint(beforeSave?: () => void): Promise<void> {
    if (!this.dirty || performance.now() - this.lastSave < this.checkpointMs) return;
    beforeSave?.();
    await this.checkpoint();
  }

  /** Save: the partial and its record, with the open segment kept in the record; or, completing or following
   *  a log, the open segment folded first (a snapshot holds everything read). */
  private async checkpoint(final = false): Promise<void> {
    if (final || this.following) {
      const last = this.seg.flush();
      if (last) await this.fold([last]);
    }
    this.store.record.open = this.seg.pending();
    await this.store.save();
    this.lastSave = performance.now();
    this.dirty = false;
    const { snap, record } = this.store;
    this.o.onCheckpoint?.({ file: this.store.file, counts: { ...snap.header.counts }, current: record.current && { ...record.current } });
  }

  /** Stopped before the end: save what was folded (if anything) to the partial, for resuming. */
  private async interrupt(): Promise<true> {
    if (this.dirty) await this.checkpoint();
    return true;
  }

  /** A crash: keep what the last complete part left, so that the same command resumes. */
  async saveAfterError(): Promise<void> {
    try {
      if (this.dirty && !this.following) await this.checkpoint();
    } catch {
      // the original error matters more than a failed save
    }
  }

  /** Every source was folded: save, and make the partial the snapshot. A fresh ingest that found nothing
   *  to fold leaves the old snapshot alone: replacing it with an empty memory is never what was meant. */
  async complete(): Promise<void> {
    const { counts } = this.store.snap.header;
    if (!this.store.record.append && counts.documents === 0) {
      removePartial(this.store.target);
      throw new CtxError(`nothing to ingest: ${skipSummary(this.skipped)}; the snapshot was left as it was`);
    }
    await this.checkpoint(true); // always: the partial must exist to become the snapshot
    await this.store.complete();
    this.o.onCheckpoint?.({ file: this.store.target, counts: { ...counts }, current: null });
  }

  summary(interrupted: boolean): IngestSummary {
    const { snap } = this.store;
    const written = this.store.file;
    const partial = interrupted && existsSync(written) ? written : undefined;
    return {
      snapshot: this.store.target,
      snapshotBytes: existsSync(written) ? statSync(written).size : 0,
      documents: this.run.documents, skipped: this.skipped, tokens: this.run.tokens, segments: this.run.segments,
      pages: this.run.pages, total: snap.header.counts, ms: Math.round(performance.now() - this.t0), interrupted,
      resumed: this.store.resumed, ...(partial ? { partial } : {}),
      append: this.store.record.append, follow: this.store.record.follow,
    };
  }
}

/** The unit of folding, of checkpoints and of the resume record's `parts`. A log part holds 64K characters,
 *  about 50K tokens and 100 segments, which is 10-30 s of folding: too long to wait for Ctrl-C or a
 *  checkpoint. Cut after a newline, and only before a line that starts with a non-space (the tokenizer
 *  begins every text with a word boundary, which would change how an indented line is cut into tokens). */
export const PIECE_CHARS = 4096;

export function pieces(text: string, max = PIECE_CHARS): string[] {
  const out: string[] = [];
  const cuttable = (at: number) => text.charCodeAt(at - 1) === 10 && /\S/.test(text[at]);
  let start = 0;
  while (text.length - start > max) {
    let cut = start + max;
    while (cut > start && !cuttable(cut)) cut--;
    if (cut === start) { // no cut point within max: the first one after it (a long line, or a block of indented lines)
      cut = start + max + 1;
      while (cut < text.length && !cuttable(cut)) cut++;
      if (cut >= text.length) break;
    }
    out.push(text.slice(start, cut));
    start = cut;
  }
  out.push(text.slice(start));
  return out;
}

/** "every source was skipped (binary: 2, not found: 1)", for a one-line message. */
function skipSummary(skipped: Skipped[]): string {
  return skipped.length === 0 ? 'no files found' : `every source was skipped (${skipReasons(skipped, 4)})`;
}

/** "binary: 3, too large: 1", most frequent first; a reason's detail in parentheses does not split it. */
export function skipReasons(skipped: Skipped[], limit = Infinity): string {
  const by = new Map<string, number>();
  for (const s of skipped) {
    const reason = s.reason.replace(/\s*\(.*\)$/, ''); // "too large (3 MiB > 2 MiB cap)" counts as "too large"
    by.set(reason, (by.get(reason) ?? 0) + 1);
  }
  const sorted = [...by].sort((a, b) => b[1] - a[1]);
  return sorted.slice(0, limit).map(([r, n]) => `${r}: ${n}`).join(', ') + (sorted.length > limit ? ', ...' : '');
}

/** Average characters per token of the shipped tokenizer: 3.6 on code and prose; 1.3 on access logs (measured on
 *  nginx lines: timestamps, IPs and paths cut into short tokens). Used only for progress estimates. */
const CHARS_PER_TOKEN = 3.6;
const LOG_CHARS_PER_TOKEN = 1.3;

/** Tokens a listing of sources should give, from their sizes (for the ETA of the CLI and the TUI). */
export function estimateTokens(documents: { kind: DocKind; bytes: number }[]): number {
  return documents.reduce((s, d) => s + d.bytes / (d.kind === 'log' ? LOG_CHARS_PER_TOKEN : CHARS_PER_TOKEN), 0);
}

/** Size and mtime of a document's files, and the path the document is folded under (its header's), as the
 *  manifest records them (read before the file is). */
async function statSources(doc: Pick<Document, 'kind' | 'absPath' | 'path'>): Promise<ManifestSource[]> {
  const out: ManifestSource[] = [];
  for (const absPath of sourceFiles(doc as Document)) {
    const st = await stat(absPath).catch(() => undefined);
    const size = st?.size ?? 0;
    // A plain log's last bytes, so that a later --append can tell it was only appended to (manifest logTail).
    const tail = doc.kind === 'log' && !/\.gz$/i.test(absPath) && size > 0 ? await tailHash(absPath, size) : undefined;
    out.push({ absPath, size, mtimeMs: st?.mtimeMs ?? 0, kind: doc.kind, docPath: doc.path, ...(tail && { tailSha256: tail }) });
  }
  return out;
}

/** The source's items, and TICK whenever none arrived for `ms`: a quiet log still gets saved on time. */
async function* withTicks<T>(source: AsyncIterable<T>, ms: number): AsyncGenerator<T | Tick> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  next.catch(() => {}); // rejections are awaited below; this only keeps a pending one from counting as unhandled
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const tick = new Promise<Tick>((res) => { timer = setTimeout(() => res(TICK), ms); });
      const r = await Promise.race([next, tick]);
      clearTimeout(timer);
      if (r === TICK) {
        yield TICK;
        continue;
      }
      if (r.done) return;
      yield r.value;
      next = it.next();
      next.catch(() => {});
    }
  } finally {
    clearTimeout(timer);
    // Not awaited: with a read still pending, the follower ends only when its signal aborts.
    it.return?.().catch(() => {});
  }
}

/** Calls `see` on every item as it passes. */
async function* tap<T>(source: AsyncIterable<T>, see: (item: T) => void): AsyncGenerator<T> {
  for await (const item of source) {
    see(item);
    yield item;
  }
}

interface ReadFailure {
  readFailure: string;
}

function isReadFailure(x: unknown): x is ReadFailure {
  return typeof x === 'object' && x !== null && 'readFailure' in x;
}

/** A file that cannot be read (deleted since it was listed, no permission, corrupt gzip) ends its document
 *  with a ReadFailure item instead of failing the ingest. Only the source's own errors are caught here:
 *  the consumer's (a failed save) are not thrown into this generator. */
async function* readErrorsAsItems<T>(source: AsyncIterable<T>): AsyncGenerator<T | ReadFailure> {
  try {
    yield* source;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw e;
    yield { readFailure: `${code}: ${(e as Error).message}` };
  }
}
