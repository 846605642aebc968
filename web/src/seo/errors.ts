// What to tell a person about the SEO studio's errors: one map, by code, that the SEO pages
// use through `seoMessage`; codes it does not know go to the app's `friendlyMessage`.
import { ApiError, friendlyMessage } from '../api/errors';

type Words = (error: ApiError) => string;

export const SEO_ERRORS: Record<string, Words> = {
  invalid_fields: (e) =>
    e.details.length > 1 ? `Some fields need fixing: ${e.details.join('; ')}.` : `Please fix this field: ${e.message}.`,
  invalid_transcript: (e) => `The transcript could not be read. ${capital(stripPrefix(e.message))}`,
  transcript_too_large: () => 'The transcript is too large. Shorten it or keep only the spoken text.',
  payload_too_large: () => 'The transcript is too large. Shorten it or keep only the spoken text.',
  invalid_package: (e) =>
    e.details.length > 1
      ? `Not saved: ${e.details.length} of YouTube’s rules are broken. ${e.details.join('; ')}.`
      : `Not saved: ${e.message}.`,
  already_generating: () => 'This project is being generated already. Wait for it to finish.',
  too_many_generations: (e) =>
    `You have too many generations running. Try again${e.retryAfter ? ` in ${e.retryAfter} seconds` : ' in a moment'}.`,
  too_many_feeds: () => 'Too many SEO studio tabs are following progress. Close one and reload this page.',
  model_unavailable: () => 'The model is not available right now. Try again in a moment.',
  model_refused: () => 'The model would not write this package. Change the topic or transcript and try again.',
  rate_limited: (e) => friendlyMessage(e),
  unknown_model: () => 'The SEO studio’s model is not installed on this server. Ask an administrator.',
  no_model: () => 'No model is set up for the SEO studio. Ask an administrator to choose one.',
  not_found: () => 'This project does not exist any more, or it is not yours.',
  youtube_not_configured: () =>
    'YouTube access is not set up on this server (YOUTUBE_API_KEY or YOUTUBE_CREDENTIALS). Ask an administrator.',
  too_many_researches: (e) => `You have researched a lot of keywords lately. Try again ${later(e)}.`,
  youtube_quota_exceeded: (e) =>
    `Today’s YouTube quota is used up. It resets at midnight Pacific time${e.retryAfter ? ` (in ${waitWords(e.retryAfter)})` : ''}.`,
  youtube_refused: () => 'YouTube refused this server’s credentials. Ask an administrator to check the YouTube API key.',
  youtube_unavailable: () => 'YouTube cannot be reached right now. Try again later.',
  youtube_rate_limited: (e) => `YouTube is asking us to slow down. Try again ${later(e)}.`,
  youtube_reconnect: () => 'YouTube no longer accepts your channel’s connection. Reconnect your channel and try again.',
  no_channel: () => 'Connect your YouTube channel first.',
  youtube_bad_request: (e) => `YouTube did not accept this: ${stripPeriod(e.message)}.`,
  youtube_forbidden: () => 'YouTube does not allow this. Check that the video belongs to your connected channel.',
  invalid_days: () => 'That period is not available. Choose between 1 and 90 days.',
};

function waitWords(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 90) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.round(minutes / 60);
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}

function later(e: ApiError): string {
  return e.retryAfter ? `in ${waitWords(e.retryAfter)}` : 'in a moment';
}

function stripPeriod(s: string): string {
  return s.replace(/[.\s]+$/, '');
}

function stripPrefix(message: string): string {
  return message.replace(/^the transcript cannot be read:\s*/i, '');
}

function capital(s: string): string {
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** A failed SEO call in words. */
export function seoMessage(error: unknown): string {
  if (error instanceof ApiError) {
    const words = SEO_ERRORS[error.code];
    if (words) return words(error);
  }
  return friendlyMessage(error);
}

/** A failed call about a YouTube video in words: "not found" is about the video there. */
export function videoMessage(error: unknown): string {
  if (error instanceof ApiError && error.code === 'not_found' && /youtube/i.test(error.message)) {
    return 'YouTube has no such video, or it is private. Check the id or URL.';
  }
  return seoMessage(error);
}

/** A failed generation (the feed's `failed` event) in words. */
export function generationFailure(code: string, message: string): string {
  return seoMessage(new ApiError(200, { code, message }));
}

/**
 * The server's `details` of an `invalid_fields` error ("field: message") by field name; a
 * field of a list (`links[1]`) counts for the list.
 */
export function fieldProblems(error: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!(error instanceof ApiError) || error.code !== 'invalid_fields') return out;
  const listed = error.details.length ? error.details : [error.message];
  for (const d of listed) {
    const colon = d.indexOf(':');
    if (colon < 0) continue;
    const field = d.slice(0, colon).trim().replace(/\[\d+\]$/, '');
    const message = d.slice(colon + 1).trim();
    (out[field] ??= []).push(capital(message));
  }
  return out;
}
