import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { ApiError } from './errors';
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
        let body: ErrorBody = { code: 'stream_error', message: event.data };
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
