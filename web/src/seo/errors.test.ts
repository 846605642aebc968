import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/errors';
import { seoMessage, videoMessage } from './errors';

const err = (status: number, code: string, retryAfter?: number) => new ApiError(status, { code, message: `server says ${code}` }, retryAfter);

describe('YouTube errors in words', () => {
  it('has words for every YouTube code', () => {
    for (const code of [
      'youtube_not_configured',
      'too_many_researches',
      'youtube_quota_exceeded',
      'youtube_refused',
      'youtube_unavailable',
      'youtube_rate_limited',
      'youtube_reconnect',
      'no_channel',
      'youtube_forbidden',
      'invalid_days',
    ]) {
      expect(seoMessage(err(409, code))).not.toContain('server says');
    }
  });

  it('tells how long to wait', () => {
    expect(seoMessage(err(429, 'youtube_quota_exceeded', 7200))).toBe(
      'Today’s YouTube quota is used up. It resets at midnight Pacific time (in 2 hours).',
    );
    expect(seoMessage(err(429, 'too_many_researches', 600))).toContain('in 10 minutes');
    expect(seoMessage(err(422, 'youtube_bad_request'))).toBe('YouTube did not accept this: server says youtube_bad_request.');
  });

  it('says a video is missing on YouTube, not the project', () => {
    const missing = new ApiError(404, { code: 'not_found', message: 'not found on YouTube (videoNotFound)' });
    expect(videoMessage(missing)).toBe('YouTube has no such video, or it is private. Check the id or URL.');
    expect(videoMessage(new ApiError(404, { code: 'not_found', message: 'project not found' }))).toContain('This project');
  });
});
