// Runs against a real `confab serve` with a scripted model, only when CONFAB_URL is set:
//   CONFAB_URL=http://127.0.0.1:18081 npx vitest run src/api/server.integration.test.ts
// (the server's config: a `scripted` provider as the default model, with `delay_ms` > 0).
import { describe, expect, it } from 'vitest';
import { chatApi } from './chat';
import { ApiClient } from './client';
import type { TokenResponse } from './types';

const base = process.env.CONFAB_URL;

function clientFor(baseUrl: string): ApiClient {
  const jar = new Map<string, string>();
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await globalThis.fetch(baseUrl + String(input), { ...init, headers });
    for (const c of response.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return response;
  };
  return new ApiClient({ fetch, cookies: () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ') });
}

describe.skipIf(!base)('against a running server', () => {
  it('signs up, restores the session, streams, regenerates, edits, switches branches, stops and re-attaches', async () => {
    const client = clientFor(base!);
    const email = `web-${Date.now()}@example.com`;
    const registered = await client.post<TokenResponse>('/api/v1/auth/register', {
      email,
      password: 'correct horse battery 9',
      name: 'Web Test',
    });
    client.setSession(registered);
    client.clearSession();
    expect((await client.refresh())?.user.email).toBe(email);

    const chat = chatApi(client);
    const models = await chat.models();
    expect(models.some((m) => m.default)).toBe(true);
    const conv = await chat.create({});

    let deltas = 0;
    let text = '';
    const done = await chat.send(conv.id, { content: 'hello' }, {
      onDelta: (d) => {
        deltas++;
        text = text.slice(0, d.offset) + d.content;
      },
    });
    expect(deltas).toBeGreaterThan(1);
    expect(done?.status).toBe('complete');
    expect(text).toBe(done?.content);

    let path = await chat.messages(conv.id);
    expect(path.map((m) => m.role)).toEqual(['user', 'assistant']);
    const answer = path[1];
    await chat.regenerate(conv.id, answer.id, {});
    path = await chat.messages(conv.id);
    expect(path[1].branches.sibling_ids).toHaveLength(2);
    expect(path[1].branches.index).toBe(1);

    // switch back to the first answer
    await chat.update(conv.id, { active_message_id: path[1].branches.sibling_ids[0] });
    path = await chat.messages(conv.id);
    expect(path[1].id).toBe(answer.id);

    // edit: a follow-up question, then a sibling of it
    await chat.send(conv.id, { content: 'second' }, {});
    path = await chat.messages(conv.id);
    const second = path[2];
    await chat.send(conv.id, { content: 'second, edited', parent_id: second.parent_id! }, {});
    path = await chat.messages(conv.id);
    expect(path[2].content).toBe('second, edited');
    expect(path[2].branches).toEqual({ sibling_ids: [second.id, path[2].id], index: 1 });

    // stop mid-stream, and re-attach to another answer from an offset
    const controller = new AbortController();
    let started: string | null = null;
    const sending = chat.send(conv.id, { content: 'third' }, {
      onStart: (s) => {
        started = s.assistant_message.id;
      },
    }, controller.signal);
    await new Promise((r) => setTimeout(r, 300));
    expect(started).not.toBeNull();
    await chat.stop(conv.id, started!);
    const stopped = await sending;
    expect(stopped?.status).toBe('stopped');

    const again = new AbortController();
    let id: string | null = null;
    const streaming = chat.send(conv.id, { content: 'fourth' }, { onStart: (s) => (id = s.assistant_message.id) }, again.signal);
    await new Promise((r) => setTimeout(r, 250));
    again.abort(); // as a reload would
    await streaming.catch(() => null);
    path = await chat.messages(conv.id);
    const last = path[path.length - 1];
    expect(last.id).toBe(id);
    let resumed = last.content;
    const final = await chat.follow(conv.id, last.id, [...last.content].length, {
      onDelta: (d) => {
        resumed = [...resumed].slice(0, d.offset).join('') + d.content;
      },
    });
    expect(final?.status).toBe('complete');
    expect(resumed).toBe(final?.content);

    const hits = await chat.search('edited');
    expect(hits.some((h) => h.conversation_id === conv.id && h.snippet.some((p) => p.highlight))).toBe(true);
    await client.logout();
    expect(client.token).toBeNull();
  }, 60_000);
});
