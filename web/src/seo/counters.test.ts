import { describe, expect, it } from 'vitest';
import { descriptionBytes, hashtagsIn, tagsLength, titleLength } from './counters';
import { formatDuration, parseDuration } from './duration';

describe('the counters', () => {
  it('counts a title in code points, not UTF-16 units or bytes', () => {
    expect(titleLength('é'.repeat(100))).toBe(100);
    expect(titleLength('é'.repeat(101))).toBe(101);
    expect(titleLength('😀'.repeat(100))).toBe(100);
  });

  it('counts a description in UTF-8 bytes', () => {
    expect(descriptionBytes('é'.repeat(2_500))).toBe(5_000);
    expect(descriptionBytes(`${'é'.repeat(2_500)}x`)).toBe(5_001);
  });

  it('counts tags the way YouTube does', () => {
    expect(tagsLength(['Foo-Baz'])).toBe(7);
    expect(tagsLength(['Foo Baz'])).toBe(9);
    expect(tagsLength(['a', 'b'])).toBe(3);
    expect(tagsLength([])).toBe(0);
    // 50 tags of 9 characters: 450 + 49 commas.
    expect(tagsLength(Array.from({ length: 50 }, () => 'x'.repeat(9)))).toBe(499);
  });

  it('finds hashtags like YouTube', () => {
    expect(hashtagsIn('Hi #rust and #Rust, #日本語 #a_b #2024 #x#y a#b https://e.com/#top &#38; ##z')).toEqual([
      '#rust',
      '#日本語',
      '#a_b',
      '#x',
    ]);
  });
});

describe('durations', () => {
  it('reads m:ss, h:mm:ss and seconds', () => {
    expect(parseDuration('3:05')).toBe(185);
    expect(parseDuration('1:02:03')).toBe(3723);
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('')).toBeNull();
    expect(parseDuration('3:75')).toBeNaN();
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(formatDuration(185)).toBe('3:05');
  });
});
