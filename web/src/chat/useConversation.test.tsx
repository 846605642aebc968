import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { ChatApi } from '../api/chat';
import { ApiError } from '../api/errors';
import type { AnswerHandlers } from '../api/sse';
import type { Message, PathMessage } from '../api/types';
import { pathMessage as msg } from '../test/fixtures';
import { toggleReaction, useConversation } from './useConversation';

/** A fake chat API whose answer streams the test drives by hand. */
function fakeApi(initial: PathMessage[]) {
  let path = initial;
  let handlers: AnswerHandlers | null = null;
  let finish: ((m: Message | null) => void) | null = null;
  const streamCall = (h: AnswerHandlers) => {
    handlers = h;
    return new Promise<Message | null>((resolve) => (finish = resolve));
  };
  const api = {
    messages: vi.fn(async () => path),
    send: vi.fn((_id: string, _body: unknown, h: AnswerHandlers) => streamCall(h)),
    regenerate: vi.fn((_id: string, _mid: string, h: AnswerHandlers) => streamCall(h)),
    follow: vi.fn((_id: string, _mid: string, _offset: number, h: AnswerHandlers) => streamCall(h)),
    stop: vi.fn(async () => {}),
    update: vi.fn(async () => ({})),
    react: vi.fn(async (_id: string, _mid: string, emoji: string) => [{ emoji, count: 1, mine: true }]),
    unreact: vi.fn(async () => []),
  };
  return {
    api: api as unknown as ChatApi,
    raw: api,
    setPath: (p: PathMessage[]) => (path = p),
    handlers: () => handlers!,
    finish: (m: Message | null) => finish!(m),
  };
}

const q1 = msg('u1', 'user', 'first question', null);
const a1 = msg('a1', 'assistant', 'first answer', 'u1');
const q2 = msg('u2', 'user', 'second question', 'a1');
const a2 = msg('a2', 'assistant', 'second answer', 'u2');

describe('useConversation', () => {
  it('shows the question at once, streams the answer, then reloads the branch', async () => {
    const fake = fakeApi([q1, a1]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));

    act(() => void result.current.send('another'));
    await waitFor(() => expect(result.current.messages).toHaveLength(4));
    expect(result.current.streaming).toBe(true);
    expect(result.current.messages[2].content).toBe('another');
    expect(fake.raw.send).toHaveBeenCalledWith('c1', { content: 'another' }, expect.anything(), expect.anything());

    const assistant = msg('a3', 'assistant', '', 'u3', { status: 'streaming' });
    act(() => {
      fake.handlers().onStart!({ user_message: msg('u3', 'user', 'another', 'a1'), assistant_message: assistant });
      fake.handlers().onDelta!({ message_id: 'a3', offset: 0, content: 'Hel' });
      fake.handlers().onDelta!({ message_id: 'a3', offset: 3, content: 'lo' });
    });
    expect(result.current.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u3', 'a3']);
    expect(result.current.messages[3].content).toBe('Hello');
    expect(result.current.streamingId).toBe('a3');

    fake.setPath([q1, a1, msg('u3', 'user', 'another', 'a1'), msg('a3', 'assistant', 'Hello', 'u3')]);
    await act(async () => fake.finish({ ...assistant, content: 'Hello', status: 'complete' }));
    await waitFor(() => expect(result.current.streaming).toBe(false));
    expect(fake.raw.messages).toHaveBeenCalledTimes(2);
  });

  it('edits a question as a branch: cuts the path at its parent and sends parent_id', async () => {
    const fake = fakeApi([q1, a1, q2, a2]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(4));
    act(() => void result.current.edit(result.current.messages[2], 'second, edited'));
    await waitFor(() => expect(fake.raw.send).toHaveBeenCalled());
    expect(fake.raw.send.mock.calls[0][1]).toEqual({ content: 'second, edited', parent_id: 'a1' });
    expect(result.current.messages.map((m) => m.content)).toEqual(['first question', 'first answer', 'second, edited', '']);
  });

  it('edits the first question as a new first message: parent_id null, nothing kept above it', async () => {
    const fake = fakeApi([q1, a1, q2, a2]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(4));
    act(() => void result.current.edit(result.current.messages[0], 'first, rewritten'));
    await waitFor(() => expect(fake.raw.send).toHaveBeenCalled());
    expect(fake.raw.send.mock.calls[0][1]).toEqual({ content: 'first, rewritten', parent_id: null });
    expect(result.current.messages.map((m) => m.content)).toEqual(['first, rewritten', '']);
  });

  it('continues from the end when sending without a parent: no parent_id sent', async () => {
    const fake = fakeApi([q1, a1]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    act(() => void result.current.send('next'));
    await waitFor(() => expect(fake.raw.send).toHaveBeenCalled());
    expect(fake.raw.send.mock.calls[0][1]).toEqual({ content: 'next' });
  });

  it('sends attached files by id, shows them on the question at once, and keeps them in an edit', async () => {
    const shot = { file_id: 'f1', name: 'shot.png', content_type: 'image/png', kind: 'image' as const, size: 93 };
    const fake = fakeApi([q1, a1]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    let outcome: Promise<boolean> | undefined;
    act(() => void (outcome = result.current.send('', undefined, [shot])));
    await waitFor(() => expect(fake.raw.send).toHaveBeenCalled());
    expect(fake.raw.send.mock.calls[0][1]).toEqual({ content: '', attachments: ['f1'] });
    expect(result.current.messages[2].attachments).toEqual([shot]);
    await act(async () => fake.finish(null));
    expect(await outcome).toBe(true);

    fake.setPath([q1, a1, msg('u3', 'user', 'what is this?', 'a1', { attachments: [shot] }), msg('a3', 'assistant', 'A cat.', 'u3')]);
    await act(async () => result.current.reload());
    act(() => void result.current.edit(result.current.messages[2], 'and this?'));
    await waitFor(() => expect(fake.raw.send).toHaveBeenCalledTimes(2));
    expect(fake.raw.send.mock.calls[1][1]).toEqual({ content: 'and this?', parent_id: 'a1', attachments: ['f1'] });
  });

  it('says a message was not taken when the server refuses it, with the error’s code', async () => {
    const fake = fakeApi([q1, a1]);
    fake.raw.send.mockRejectedValueOnce(new ApiError(409, { code: 'attachment_not_ready', message: 'scanning' }));
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    let taken: boolean | undefined;
    await act(async () => {
      taken = await result.current.send('look', undefined, [
        { file_id: 'f1', name: 'a.pdf', content_type: 'application/pdf', kind: 'pdf', size: 1 },
      ]);
    });
    expect(taken).toBe(false);
    expect(result.current.errorCode).toBe('attachment_not_ready');
    expect(result.current.error).toBe('An attached file is still being scanned for viruses. Send again once it is ready.');
  });

  it('regenerates from the answer, replacing it and what follows', async () => {
    const fake = fakeApi([q1, a1, q2, a2]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(4));
    act(() => void result.current.regenerate(result.current.messages[1]));
    await waitFor(() => expect(fake.raw.regenerate).toHaveBeenCalled());
    expect(fake.raw.regenerate.mock.calls[0][1]).toBe('a1');
    expect(result.current.messages.map((m) => m.id.startsWith('temp-') ? 'temp' : m.id)).toEqual(['u1', 'temp']);
  });

  it('re-attaches to an answer still streaming after a reload, from its length in characters', async () => {
    const fake = fakeApi([q1, msg('a1', 'assistant', 'Partial 😀', 'u1', { status: 'streaming' })]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(fake.raw.follow).toHaveBeenCalled());
    expect(fake.raw.follow.mock.calls[0].slice(0, 3)).toEqual(['c1', 'a1', 9]);
    expect(result.current.streaming).toBe(true);
    act(() => fake.handlers().onDelta!({ message_id: 'a1', offset: 9, content: ' done' }));
    expect(result.current.messages[1].content).toBe('Partial 😀 done');
  });

  it('stops through the server once the answer has an id', async () => {
    const fake = fakeApi([q1, a1]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    act(() => void result.current.send('go'));
    await waitFor(() => expect(fake.raw.send).toHaveBeenCalled());
    act(() =>
      fake.handlers().onStart!({
        user_message: msg('u9', 'user', 'go', 'a1'),
        assistant_message: msg('a9', 'assistant', '', 'u9', { status: 'streaming' }),
      }),
    );
    await act(async () => result.current.stop());
    expect(fake.raw.stop).toHaveBeenCalledWith('c1', 'a9');
  });

  it('switches branches with active_message_id', async () => {
    const branched = msg('a1', 'assistant', 'first answer', 'u1', { branches: { sibling_ids: ['a0', 'a1'], index: 1 } });
    const fake = fakeApi([q1, branched]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    await act(async () => result.current.switchBranch(result.current.messages[1], -1));
    expect(fake.raw.update).toHaveBeenCalledWith('c1', { active_message_id: 'a0' });
  });

  it('toggles a reaction: POST when not yours, DELETE when yours, the server’s list kept', async () => {
    const fake = fakeApi([q1, msg('a1', 'assistant', 'first answer', 'u1', { reactions: [{ emoji: '🎉', count: 1, mine: true }] })]);
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    await act(async () => result.current.react(result.current.messages[1], '👍'));
    expect(fake.raw.react).toHaveBeenCalledWith('c1', 'a1', '👍');
    expect(result.current.messages[1].reactions).toEqual([{ emoji: '👍', count: 1, mine: true }]);
    await act(async () => result.current.react(result.current.messages[1], '👍'));
    expect(fake.raw.unreact).toHaveBeenCalledWith('c1', 'a1', '👍');
    expect(result.current.messages[1].reactions).toEqual([]);
  });

  it('puts a reaction back as it was when the server refuses it', async () => {
    const fake = fakeApi([q1, a1]);
    fake.raw.react.mockRejectedValueOnce(new Error('refused'));
    const { result } = renderHook(() => useConversation('c1', { api: fake.api }));
    await waitFor(() => expect(result.current.messages).toHaveLength(2));
    await act(async () => result.current.react(result.current.messages[1], '👍'));
    expect(result.current.messages[1].reactions).toEqual([]);
    expect(result.current.error).toBe('refused');
  });
});

describe('toggleReaction', () => {
  it('adds, counts and takes back the reader’s reaction', () => {
    expect(toggleReaction([], '👍', true)).toEqual([{ emoji: '👍', count: 1, mine: true }]);
    expect(toggleReaction([{ emoji: '👍', count: 2, mine: false }], '👍', true)).toEqual([{ emoji: '👍', count: 3, mine: true }]);
    expect(toggleReaction([{ emoji: '👍', count: 2, mine: true }], '👍', false)).toEqual([{ emoji: '👍', count: 1, mine: false }]);
    expect(toggleReaction([{ emoji: '👍', count: 1, mine: true }], '👍', false)).toEqual([]);
    expect(toggleReaction([], '👍', false)).toEqual([]);
  });
});
