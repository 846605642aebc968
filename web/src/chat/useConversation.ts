import { useCallback, useEffect, useRef, useState } from 'react';
import { chat as defaultChat, type ChatApi, type SendBody } from '../api/chat';
import { ApiError, friendlyMessage } from '../api/errors';
import { charLength, type AnswerHandlers } from '../api/sse';
import type { Branches, ChatAttachment, Conversation, Message, Reaction } from '../api/types';

export interface ChatMessage extends Message {
  branches?: Branches;
  reactions?: Reaction[];
}

/** The reactions after the reader toggles `emoji` (added when `add`, else taken back). */
export function toggleReaction(reactions: Reaction[] = [], emoji: string, add: boolean): Reaction[] {
  const at = reactions.findIndex((r) => r.emoji === emoji);
  if (at < 0) return add ? [...reactions, { emoji, count: 1, mine: true }] : reactions;
  const r = reactions[at];
  if (r.mine === add) return reactions;
  const count = Math.max(0, r.count + (add ? 1 : -1));
  const next = [...reactions];
  if (count === 0) next.splice(at, 1);
  else next[at] = { ...r, count, mine: add };
  return next;
}

/** The text after a delta at `offset` (in characters, as the server counts them). */
export function applyDelta(current: string, offset: number, piece: string): string {
  const chars = [...current];
  if (offset >= chars.length) return current + piece;
  return chars.slice(0, offset).join('') + piece;
}

let tempCounter = 0;
function tempMessage(
  role: 'user' | 'assistant',
  content: string,
  parentId: string | null,
  conversationId: string,
  attachments: ChatAttachment[] = [],
): ChatMessage {
  const now = new Date().toISOString();
  return {
    id: `temp-${role}-${++tempCounter}`,
    conversation_id: conversationId,
    parent_id: parentId,
    role,
    content,
    status: role === 'assistant' ? 'streaming' : 'complete',
    model: null,
    error: null,
    prompt_tokens: null,
    completion_tokens: null,
    attachments,
    created_at: now,
    updated_at: now,
  };
}

export interface UseConversationOptions {
  /** Creates the conversation for a first message (no id yet). */
  create?: () => Promise<Conversation>;
  /** Called once the conversation of a first message exists and its answer is starting. */
  onCreated?: (conversation: Conversation) => void;
  model?: string;
  api?: ChatApi;
}

/** One conversation's active branch, with sending, streaming, stop, regenerate, edit and branches. */
export function useConversation(conversationId: string | undefined, options: UseConversationOptions = {}) {
  const chat = options.api ?? defaultChat;
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setErrorText] = useState<string | null>(null);
  /** The error code of the API error shown, if it was one. */
  const [errorCode, setErrorCode] = useState<string | null>(null);
  const setError = useCallback((e: unknown) => {
    if (e === null) {
      setErrorText(null);
      setErrorCode(null);
    } else {
      setErrorText(friendlyMessage(e));
      setErrorCode(e instanceof ApiError ? e.code : null);
    }
  }, []);
  /** The conversation whose answer failed with the error shown: a new chat's first answer can
   * be refused before the page has moved to it, and moving there must not wipe the reason. */
  const errorOf = useRef<string | null>(null);
  const [streamingId, setStreamingId] = useState<string | null>(null);
  const stream = useRef<{ conversationId: string; controller: AbortController; messageId: string | null } | null>(
    null,
  );
  const current = useRef(conversationId);
  current.current = conversationId;
  const messagesRef = useRef(messages);
  messagesRef.current = messages;
  const optionsRef = useRef(options);
  optionsRef.current = options;

  const handlers = useCallback(
    (tempUserId: string | null, tempAssistantId: string | null): AnswerHandlers => ({
      onStart({ user_message, assistant_message }) {
        if (stream.current) stream.current.messageId = assistant_message.id;
        setStreamingId(assistant_message.id);
        setMessages((ms) =>
          ms.map((m) => {
            if (tempUserId && m.id === tempUserId && user_message) return { ...m, ...user_message };
            if (tempAssistantId && m.id === tempAssistantId) return { ...m, ...assistant_message };
            return m;
          }),
        );
      },
      onDelta({ message_id, offset, content }) {
        setMessages((ms) =>
          ms.map((m) => (m.id === message_id ? { ...m, content: applyDelta(m.content, offset, content) } : m)),
        );
      },
      onDone(message) {
        setMessages((ms) => ms.map((m) => (m.id === message.id ? { ...m, ...message } : m)));
      },
    }),
    [],
  );

  const reload = useCallback(
    async (id: string | undefined = current.current) => {
      if (!id) return;
      try {
        const items = await chat.messages(id);
        if (current.current !== id) return;
        // While this tab streams an answer here, its own stream is newer than what the server
        // last saved (answers are checkpointed): the reload after the stream ends shows it.
        if (stream.current?.conversationId === id) return;
        setMessages(items);
        const last = items[items.length - 1];
        if (last && last.role === 'assistant' && last.status === 'streaming' && !stream.current) {
          void run(id, last.id, (h, signal) => chat.follow(id, last.id, charLength(last.content), h, signal), null, null);
        }
      } catch (e) {
        if (current.current === id) setError(e);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [chat],
  );

  /**
   * Runs one answer stream to its end, then reloads the branch (for sibling counts). False when
   * the server refused it (or it failed) before the answer started.
   */
  async function run(
    id: string,
    knownMessageId: string | null,
    start: (h: AnswerHandlers, signal: AbortSignal) => Promise<unknown>,
    tempUserId: string | null,
    tempAssistantId: string | null,
  ): Promise<boolean> {
    const controller = new AbortController();
    stream.current = { conversationId: id, controller, messageId: knownMessageId };
    setStreamingId(knownMessageId ?? tempAssistantId);
    setError(null);
    let started = false;
    const h = handlers(tempUserId, tempAssistantId);
    try {
      await start(
        {
          ...h,
          onStart(event) {
            started = true;
            h.onStart?.(event);
          },
        },
        controller.signal,
      );
      return true;
    } catch (e) {
      // Still this stream's conversation: shown, or just created and about to be (a quick
      // refusal can come before the page has moved to the new conversation).
      const here = current.current === id || stream.current?.controller === controller;
      if (!(e instanceof Error && e.name === 'AbortError') && here) {
        setError(e);
        errorOf.current = id;
        setMessages((ms) =>
          ms
            .filter((m) => m.id !== tempAssistantId)
            .map((m) => (m.id === tempUserId ? { ...m, status: 'error' as const } : m)),
        );
      }
      // Stopped before the answer started: the server may have the question already.
      return started || (e instanceof Error && e.name === 'AbortError');
    } finally {
      if (stream.current?.controller === controller) stream.current = null;
      setStreamingId(null);
      if (current.current === id) {
        const items = await chat.messages(id).catch(() => null);
        if (items && current.current === id && !stream.current) setMessages(items);
      }
    }
  }

  useEffect(() => {
    // A conversation just created by the first message is already streaming here (and an
    // error of that first answer is this conversation's).
    if (conversationId && stream.current?.conversationId === conversationId) return;
    const ownError = conversationId !== undefined && errorOf.current === conversationId;
    errorOf.current = null;
    if (!ownError) setError(null);
    if (!conversationId) {
      stream.current?.controller.abort();
      stream.current = null;
      setMessages([]);
      return;
    }
    stream.current?.controller.abort();
    stream.current = null;
    setMessages([]);
    setLoading(true);
    void reload(conversationId).finally(() => setLoading(false));
  }, [conversationId, reload]);

  useEffect(() => () => stream.current?.controller.abort(), []);

  /**
   * Sends a message (with its attached files) and streams the answer. Resolves once the
   * answer has ended: false when the message was not taken (refused, or the conversation for
   * it could not be made), so that the composer can give it back.
   */
  const send = useCallback(
    async (content: string, parentId?: string | null, attachments: ChatAttachment[] = []): Promise<boolean> => {
      if (stream.current || (!content.trim() && attachments.length === 0)) return false;
      let id = current.current;
      let created: Conversation | null = null;
      if (!id) {
        if (!optionsRef.current.create) return false;
        try {
          created = await optionsRef.current.create();
          id = created.id;
        } catch (e) {
          setError(e);
          return false;
        }
        // Claim it before it is shown, so that showing it does not reload over the stream.
        stream.current = { conversationId: id, controller: new AbortController(), messageId: null };
        optionsRef.current.onCreated?.(created);
      }
      const conversation = id;
      const ms = created ? [] : messagesRef.current;
      // `undefined`: continue from the end; `null`: a new first message (editing the first
      // message); an id: continue from that message (editing any other).
      let base = ms;
      if (parentId === null) {
        base = [];
      } else if (parentId) {
        const at = ms.findIndex((m) => m.id === parentId);
        if (at >= 0) base = ms.slice(0, at + 1);
      }
      const parent = parentId === undefined ? (base[base.length - 1]?.id ?? null) : parentId;
      const user = tempMessage('user', content, parent, conversation, attachments);
      const assistant = tempMessage('assistant', '', user.id, conversation);
      setMessages([...base, user, assistant]);
      const body: SendBody = { content };
      if (parentId !== undefined) body.parent_id = parentId;
      if (optionsRef.current.model) body.model = optionsRef.current.model;
      if (attachments.length > 0) body.attachments = attachments.map((a) => a.file_id);
      return run(conversation, null, (h, signal) => chat.send(conversation, body, h, signal), user.id, assistant.id);
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [chat],
  );

  const regenerate = useCallback(
    async (message: ChatMessage) => {
      const id = current.current;
      if (!id || stream.current || message.role !== 'assistant') return;
      const assistant = tempMessage('assistant', '', message.parent_id ?? null, id);
      setMessages((ms) => {
        const at = ms.findIndex((m) => m.id === message.id);
        return [...(at >= 0 ? ms.slice(0, at) : ms), assistant];
      });
      await run(
        id,
        null,
        (h, signal) => chat.regenerate(id, message.id, h, signal, optionsRef.current.model),
        null,
        assistant.id,
      );
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [chat],
  );

  /** Asks the server to stop; the stream then ends with the kept text. Aborts if it cannot. */
  const stop = useCallback(async () => {
    const s = stream.current;
    if (!s) return;
    if (!s.messageId || s.messageId.startsWith('temp-')) {
      s.controller.abort();
      return;
    }
    try {
      await chat.stop(s.conversationId, s.messageId);
      setTimeout(() => {
        if (stream.current === s) s.controller.abort();
      }, 5000);
    } catch {
      s.controller.abort();
    }
  }, [chat]);

  /** Sends an edited question as a new branch, with the files the question had. */
  const edit = useCallback(
    (message: ChatMessage, content: string) => send(content, message.parent_id, message.attachments ?? []),
    [send],
  );

  const switchBranch = useCallback(
    async (message: ChatMessage, direction: -1 | 1) => {
      const id = current.current;
      const b = message.branches;
      if (!id || !b || stream.current) return;
      const target = b.sibling_ids[b.index + direction];
      if (!target) return;
      try {
        await chat.update(id, { active_message_id: target });
        await reload(id);
      } catch (e) {
        setError(e);
      }
    },
    [chat, reload],
  );

  /** Shows a message's reactions as the server sent them (its answer, or a live event). */
  const setReactions = useCallback((messageId: string, reactions: Reaction[]) => {
    setMessages((ms) => ms.map((m) => (m.id === messageId ? { ...m, reactions } : m)));
  }, []);

  /** Toggles the reader's reaction to a message: shown at once, then as the server has it. */
  const react = useCallback(
    async (message: ChatMessage, emoji: string) => {
      const id = current.current;
      if (!id || message.id.startsWith('temp-')) return;
      const before = messagesRef.current.find((m) => m.id === message.id)?.reactions ?? message.reactions ?? [];
      const add = !before.some((r) => r.emoji === emoji && r.mine);
      setReactions(message.id, toggleReaction(before, emoji, add));
      try {
        const items = add ? await chat.react(id, message.id, emoji) : await chat.unreact(id, message.id, emoji);
        if (current.current === id) setReactions(message.id, items);
      } catch (e) {
        if (current.current === id) {
          setReactions(message.id, before);
          setError(e);
        }
      }
    },
    [chat, setReactions],
  );

  return {
    messages,
    loading,
    error,
    errorCode,
    streaming: streamingId !== null,
    streamingId,
    send,
    stop,
    regenerate,
    edit,
    switchBranch,
    react,
    setReactions,
    reload,
    /** Whether this tab is streaming an answer of that conversation. */
    isStreaming: (id: string) => stream.current?.conversationId === id,
  };
}
