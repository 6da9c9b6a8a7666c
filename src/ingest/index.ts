/**
 * Ingestors: sources (repositories and folders, files, PDFs, logs) to documents. They know nothing of
 * tokens; the stream format (src/stream) turns documents into segments.
 */
export type { DocKind, DocPart, Document, IngestItem, Skipped } from './types.js';
export { ingestSources, planSources, sourceFiles, type IngestOptions } from './sources.js';
export { followLog, logPartsFrom, type FollowOptions } from './log.js';
export {
  documentPaths, emptyManifest, isUnchanged, loadManifest, logTail, manifestPath, readManifestSync, recordSource, saveManifest,
  tailHash, type Manifest, type ManifestSource,
} from './manifest.js';
