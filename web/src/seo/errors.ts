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
};

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
