/** Plain-text formatting shared by the Ink components and the line mode (no colours, no layout). */
import { humanBytes, humanCount } from '../cli/base.js';
import { sizeNote } from '../snapshot/file.js';
import type { IngestEstimate, IngestProgress, ModelInfo, SnapshotInfo } from './types.js';

/** A probability as a percentage; tiny ones (the untrained model's) read "<0.1%" rather than "0.0%". */
export function formatProb(p: number): string {
  if (!(p > 0)) return '0%';
  if (p < 0.001) return '<0.1%';
  return `${(p * 100).toFixed(1)}%`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** "just now", "12 min ago", "5 h ago", else the date: how fresh the snapshot is, at a glance. */
export function formatAge(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = (now - t) / 1000;
  if (s < 45) return 'just now';
  if (s < 90 * 60) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return iso.slice(0, 10);
}

export function plural(n: number, word: string): string {
  return `${humanCount(n)} ${word}${n === 1 ? '' : 's'}`;
}

export function modelLabel(m: ModelInfo): string {
  return `${m.name} ${m.id.slice(0, 8)}`;
}

export function trainedLabel(m: ModelInfo): string {
  return m.trained ? 'trained' : 'untrained model (random weights: answers are meaningless)';
}

/** The header's facts, each short enough to sit beside the others on a wide terminal. */
export function headerFacts(s: SnapshotInfo, now = Date.now()): string[] {
  const c = s.header.counts;
  return [
    humanBytes(s.bytes),
    `${plural(c.tokens, 'token')} folded`,
    `${plural(c.documents, 'document')} from ${plural(c.sources, 'source')}`,
    `updated ${formatAge(s.header.updated, now)}`,
  ];
}

/** /info: everything the header has room for and more, as label/value rows. */
export function infoRows(s: SnapshotInfo, model?: ModelInfo, now = Date.now()): [string, string][] {
  const h = s.header;
  const m = h.model;
  const c = h.counts;
  return [
    ['snapshot', s.path],
    ['size', `${humanBytes(s.bytes)} (${s.bytes} bytes; ${sizeNote(h)})`],
    ['model', `${m.name} ${m.model_id.slice(0, 12)}${model && !model.trained ? ' (untrained)' : ''}`],
    ['shape', `${m.n_layers} layers × d_model ${m.d_model}, ${m.memory} memory d_key ${m.d_key}, segments of ${m.seg_len} tokens`],
    ['folded', `${plural(c.tokens, 'token')} in ${plural(c.segments, 'segment')}, ${plural(c.documents, 'document')} from ${plural(c.sources, 'source')}`],
    ['created', `${h.created} (${formatAge(h.created, now)})`],
    ['updated', `${h.updated} (${formatAge(h.updated, now)})`],
  ];
}

/** Remaining time, when the expected total is known and not yet passed; undefined otherwise. */
export function etaMs(p: IngestProgress, estimate?: IngestEstimate): number | undefined {
  if (!estimate?.tokens || p.tokensPerSec <= 0 || p.tokens >= estimate.tokens) return undefined;
  return ((estimate.tokens - p.tokens) / p.tokensPerSec) * 1000;
}

/** The progress facts, in the order they matter: how much, how fast, how long. */
export function progressFacts(p: IngestProgress, estimate?: IngestEstimate): string[] {
  const eta = etaMs(p, estimate);
  const docs = estimate && estimate.documents >= p.documents ? `${humanCount(p.documents)}/${plural(estimate.documents, 'document')}` : plural(p.documents, 'document');
  return [
    docs + (p.pages ? ` (${plural(p.pages, 'page')})` : ''),
    ...(p.skipped ? [`${humanCount(p.skipped)} skipped`] : []),
    `${plural(p.tokens, 'token')}`,
    `${humanCount(Math.round(p.tokensPerSec))} tok/s`,
    `${formatDuration(p.elapsedMs)} elapsed`,
    eta === undefined ? 'ETA unknown' : `ETA ${formatDuration(eta)}`,
  ];
}

/** Share of the expected tokens done, 0..1, or undefined while unknown. */
export function progressFraction(p: IngestProgress, estimate?: IngestEstimate): number | undefined {
  if (!estimate?.tokens) return undefined;
  return Math.min(1, p.tokens / estimate.tokens);
}

/**
 * Text from the model or the user made safe to lay out: a tab or a control character has no width for Ink
 * but moves the terminal's cursor, which breaks wrapping (and an escape sequence could restyle the screen).
 * Tabs become two spaces, other control characters a visible "�"; newlines stay.
 */
export function displayText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\r\n?/g, '\n').replace(/\t/g, '  ').replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '\uFFFD');
}
