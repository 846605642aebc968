// YouTube's limits, counted the way YouTube (and the server, crates/seo/src/domain/rules.rs)
// counts them.

export const MAX_TITLE_CHARS = 100;
export const MAX_DESCRIPTION_BYTES = 5_000;
export const MAX_TAGS_LENGTH = 500;
/** More hashtags than this and YouTube ignores them all. */
export const MAX_HASHTAGS = 60;

/** A title's length in Unicode code points. */
export function titleLength(title: string): number {
  return [...title].length;
}

/** A description's size in UTF-8 bytes. */
export function descriptionBytes(description: string): number {
  return new TextEncoder().encode(description).length;
}

/**
 * The tags' length as YouTube counts it: every tag's characters, a comma between tags, and two
 * more for a tag with a space (YouTube quotes it). `Foo-Baz` is 7, `Foo Baz` 9, `a` and `b` 3.
 */
export function tagsLength(tags: string[]): number {
  const chars = tags.reduce((n, tag) => n + [...tag].length + (tag.includes(' ') ? 2 : 0), 0);
  return chars + Math.max(0, tags.length - 1);
}

const HASHTAG_CHAR = /[\p{Alphabetic}\p{N}_]/u;

/**
 * The hashtags of a description as YouTube finds them: `#` at the start of a word, then letters,
 * digits and underscores, at least one not a digit; URLs skipped; each once, as first spelled.
 */
export function hashtagsIn(description: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const word of description.split(/\s+/)) {
    if (!word || word.includes('://') || word.startsWith('www.')) continue;
    const chars = [...word];
    let previous: string | null = null;
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i]!;
      const startsWord = previous === null || !(HASHTAG_CHAR.test(previous) || previous === '&' || previous === '#');
      previous = c;
      if (c !== '#' || !startsWord) continue;
      let tag = '';
      while (i + 1 < chars.length && HASHTAG_CHAR.test(chars[i + 1]!)) {
        i++;
        tag += chars[i];
        previous = chars[i]!;
      }
      if (/[^0-9]/.test(tag) && !seen.has(tag.toLowerCase())) {
        seen.add(tag.toLowerCase());
        out.push(`#${tag}`);
      }
    }
  }
  return out;
}
