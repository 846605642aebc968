import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { ApiClient } from './client';
import { ApiError, type ErrorInfo } from './errors';
import type { DeltaEvent, ErrorBody, Message, StreamStart } from './types';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * The server-sent events of a byte stream, in order. Chunks may split lines, events and
 * multi-byte characters anywhere.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const queue: SseEvent[] = [];
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      queue.push({ event: message.event ?? 'message', data: message.data, id: message.id });
    },
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      while (queue.length) yield queue.shift()!;
    }
    const rest = decoder.decode();
    if (rest) parser.feed(rest);
    // A last event without its blank line is incomplete by the spec; a trailing newline
    // flushes one that only lacks the final terminator.
    parser.feed('\n\n');
    while (queue.length) yield queue.shift()!;
  } finally {
    reader.releaseLock();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export interface EventStreamHandlers {
  /** The stream is open (a first connection or a reconnection). */
  onOpen?(): void;
  /** One event; returning true ends the following (nothing more is to come). */
  onEvent(event: SseEvent): boolean | void;
  /** The request or the stream failed; returning true ends the following (asking again would not help). */
  onError?(error: unknown): boolean | void;
  /** The stream ended or failed: the pause before reconnecting, in ms, or null to give up. */
  onDrop(): number | null;
}

/**
 * Follows the server-sent events of a GET `path` (over the client's fetch, so the bearer token
 * goes along and is refreshed), reconnecting after the pause `onDrop` asks for whenever the
 * stream ends or fails, until a handler ends it or `signal` aborts.
 */
export async function followEventStream(
  client: ApiClient,
  path: string,
  signal: AbortSignal,
  handlers: EventStreamHandlers,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const response = await client.fetch(path, { headers: { accept: 'text/event-stream' } }, { signal });
      if (!response.body) throw new Error('The server sent no event stream.');
      handlers.onOpen?.();
      for await (const event of readSse(response.body)) {
        if (signal.aborted) break;
        if (handlers.onEvent(event)) return;
      }
    } catch (e) {
      if (signal.aborted) return;
      if (handlers.onError?.(e)) return;
    }
    if (signal.aborted) return;
    const pause = handlers.onDrop();
    if (pause === null) return;
    await sleep(pause, signal);
  }
}

export interface AnswerHandlers {
  /** The stored user message (absent on regenerate/re-attach) and the new assistant message. */
  onStart?: (start: StreamStart) => void;
  onDelta?: (delta: DeltaEvent) => void;
  onDone?: (message: Message) => void;
}

/**
 * Follows an answer's stream (send, regenerate, re-attach) and calls the handlers.
 * Resolves with the saved message on `done`, or null when the stream ended early.
 * An `error` event rejects with an ApiError.
 */
export async function followAnswer(
  body: ReadableStream<Uint8Array>,
  handlers: AnswerHandlers,
): Promise<Message | null> {
  for await (const event of readSse(body)) {
    switch (event.event) {
      case 'message':
        handlers.onStart?.(JSON.parse(event.data) as StreamStart);
        break;
      case 'delta':
        handlers.onDelta?.(JSON.parse(event.data) as DeltaEvent);
        break;
      case 'done': {
        const message = JSON.parse(event.data) as Message;
        handlers.onDone?.(message);
        return message;
      }
      case 'error': {
        let body: ErrorInfo = { code: 'stream_error', message: event.data };
        try {
          const parsed = JSON.parse(event.data) as { error?: ErrorBody } & Partial<ErrorBody>;
          if (parsed.error) body = parsed.error;
          else if (parsed.code && parsed.message) body = parsed as ErrorBody;
        } catch {
          // plain text
        }
        throw new ApiError(200, body);
      }
      default:
        break;
    }
  }
  return null;
}

/** Length in Unicode scalar values, the unit of the server's stream offsets. */
export function charLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
