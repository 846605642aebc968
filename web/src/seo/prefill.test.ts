import { describe, expect, it } from 'vitest';
import { prefillFrom } from './prefill';

describe('a chat message sent to the SEO studio', () => {
  it('is the topic when short', () => {
    expect(prefillFrom('  Sourdough for beginners ')).toEqual({ topic: 'Sourdough for beginners' });
  });
  it('is the transcript when longer than 500 characters', () => {
    const long = 'word '.repeat(101);
    expect(prefillFrom(long)).toEqual({ transcript: long.trim() });
  });
  it('is the transcript when it looks like SRT or WebVTT', () => {
    const srt = '1\n00:00:00,000 --> 00:00:02,000\nHi';
    expect(prefillFrom(srt)).toEqual({ transcript: srt });
    expect(prefillFrom('WEBVTT\n\n00:01.000 --> 00:02.000\nHi')).toHaveProperty('transcript');
  });
});
