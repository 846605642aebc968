import type { CatalogEntry, InstalledModel } from './types';

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];

/** A byte count in decimal units: `98.4 MB`, `1.06 GB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  if (bytes < 1000) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** A count of tokens: `8,192 tokens`. */
export function formatTokens(tokens: number | null | undefined): string {
  if (tokens === null || tokens === undefined) return '—';
  return `${tokens.toLocaleString('en-US')} tokens`;
}

export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(Math.round(bytesPerSecond))}/s` : '';
}

export function formatWhen(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

/**
 * The name a pulled catalog entry gets in the local store: its source's file name without
 * `.gguf` (as `Source::model_name` on the server).
 */
export function storedName(entry: CatalogEntry): string {
  const file = entry.source.split(/[?#]/)[0]!.split('/').pop() ?? entry.source;
  return file.endsWith('.gguf') ? file.slice(0, -'.gguf'.length) : file;
}

/** The installed model a catalog entry became, if any. */
export function installedAs(entry: CatalogEntry, installed: InstalledModel[]): InstalledModel | undefined {
  const names = new Set([storedName(entry).toLowerCase(), entry.name.toLowerCase()]);
  return installed.find((m) => names.has(m.id.toLowerCase()) || (m.local && names.has(m.local.name.toLowerCase())));
}
