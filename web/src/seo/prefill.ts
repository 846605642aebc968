import type { NewProjectPrefill } from './NewProjectPage';

/** Text this long (or longer) goes in as a transcript rather than a topic. */
export const TRANSCRIPT_MIN_CHARS = 500;

/** Whether text looks like an SRT or WebVTT subtitle file. */
export function looksLikeSubtitles(text: string): boolean {
  const t = text.trimStart();
  return t.startsWith('WEBVTT') || /\d{1,2}:\d{2}:\d{2}[,.]\d{3}\s*-->\s*\d{1,2}:\d{2}:\d{2}[,.]\d{3}/.test(t);
}

/** A chat message as the start of a new SEO project: a transcript when long or subtitles, else the topic. */
export function prefillFrom(text: string): NewProjectPrefill {
  const t = text.trim();
  return [...t].length > TRANSCRIPT_MIN_CHARS || looksLikeSubtitles(t) ? { transcript: t } : { topic: t };
}
