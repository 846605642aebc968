import { describe, expect, it } from 'vitest';
import { applyDelta } from '../chat/useConversation';
import { streamOf } from '../test/helpers';
import { charLength, followAnswer, readSse } from './sse';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const start = JSON.stringify({
  user_message: { id: 'u1', role: 'user', content: 'hi' },
  assistant_message: { id: 'a1', role: 'assistant', content: '', status: 'streaming' },
});

describe('readSse', () => {
  it('parses events split at awkward places', async () => {
    const text =
      `event: message\ndata: ${start}\n\n` +
      ': ping\n\n' +
      'event: delta\nid: 5\ndata: {"message_id":"a1","offset":0,"content":"Hello"}\n\n' +
      'event: delta\r\nid: 11\r\ndata: {"message_id":"a1","offset":5,"content":", wörld"}\r\n\r\n' +
      'event: done\ndata: {"id":"a1","content":"Hello, wörld","status":"complete"}\n\n';
    const bytes = new TextEncoder().encode(text);
    // Split every 7 bytes: lines, field names and the two bytes of "ö" fall apart.
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.slice(i, i + 7));
    const events = await collect(readSse(streamOf(chunks)));
    expect(events.map((e) => e.event)).toEqual(['message', 'delta', 'delta', 'done']);
    expect(events[1].id).toBe('5');
    expect(JSON.parse(events[2].data).content).toBe(', wörld');
    expect(JSON.parse(events[3].data).content).toBe('Hello, wörld');
  });

  it('splits a multi-byte character across chunks without corrupting it', async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"content":"😀"}\n\n');
    const at = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
    const events = await collect(readSse(streamOf([bytes.slice(0, at), bytes.slice(at)])));
    expect(JSON.parse(events[0].data).content).toBe('😀');
  });

  it('yields a final event that lacks its blank line', async () => {
    const events = await collect(readSse(streamOf(['event: done\ndata: {}\n'])));
    expect(events).toHaveLength(1);
    expect(events[0].event).toBe('done');
  });
});

describe('followAnswer', () => {
  it('calls the handlers in order and resolves with the saved message', async () => {
    const seen: string[] = [];
    let text = '';
    const saved = await followAnswer(
      streamOf([
        `event: message\ndata: ${start}\n\nevent: del`,
        'ta\ndata: {"message_id":"a1","offset":0,"content":"Hel"}\n\nevent: delta\ndata: {"message_id":"a1","offset":3,',
        '"content":"lo"}\n\nevent: done\ndata: {"id":"a1","content":"Hello","status":"complete"}\n\n',
      ]),
      {
        onStart: (s) => seen.push(`start:${s.assistant_message.id}`),
        onDelta: (d) => {
          seen.push(`delta:${d.offset}`);
          text = applyDelta(text, d.offset, d.content);
        },
        onDone: (m) => seen.push(`done:${m.status}`),
      },
    );
    expect(seen).toEqual(['start:a1', 'delta:0', 'delta:3', 'done:complete']);
    expect(text).toBe('Hello');
    expect(saved?.content).toBe('Hello');
  });

  it('resolves null when the stream ends before done', async () => {
    const r = await followAnswer(streamOf(['event: delta\ndata: {"message_id":"a","offset":0,"content":"x"}\n\n']), {});
    expect(r).toBeNull();
  });

  it('rejects on an error event with its code', async () => {
    await expect(
      followAnswer(streamOf(['event: error\ndata: {"error":{"code":"model_unavailable","message":"down"}}\n\n']), {}),
    ).rejects.toMatchObject({ code: 'model_unavailable' });
  });
});

describe('offsets', () => {
  it('counts characters as the server does (code points, not UTF-16 units)', () => {
    expect(charLength('a😀b')).toBe(3);
    expect(applyDelta('a😀b', 2, 'c')).toBe('a😀c');
    expect(applyDelta('ab', 2, 'c')).toBe('abc');
    // A re-attach from an earlier offset replaces the overlap instead of duplicating it.
    expect(applyDelta('Hello', 3, 'lo!')).toBe('Hello!');
  });
});
