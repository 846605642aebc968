import { vi } from 'vitest';

/** A ReadableStream of the given text chunks, as UTF-8 bytes. */
export function streamOf(chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === 'string' ? encoder.encode(c) : c);
      controller.close();
    },
  });
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

export function errorResponse(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return jsonResponse(status, { error: { code, message, request_id: 'req-1', ...extra } });
}

/** The answer of `window.matchMedia(query)` in jsdom, which has none. */
export function mediaQueryList(query: string, matches: boolean): MediaQueryList {
  return {
    matches,
    media: query,
    onchange: null,
    addListener: () => {},
    removeListener: () => {},
    addEventListener: () => {},
    removeEventListener: () => {},
    dispatchEvent: () => false,
  } as MediaQueryList;
}

/** A desktop-wide window: antd's breakpoints match. */
export function desktop() {
  vi.spyOn(window, 'matchMedia').mockImplementation((query: string) => mediaQueryList(query, query.includes('min-width')));
}

export type Handler = (init: RequestInit | undefined, url: string) => Response | Promise<Response>;

/**
 * A fetch that answers `METHOD /path` (query left out) from the routes, and 404 otherwise.
 * `calls(key)` gives the requests to a route, with their JSON bodies.
 */
export function routes(table: Record<string, Handler>) {
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const key = `${init?.method ?? 'GET'} ${url.split('?')[0]}`;
    const route = table[key];
    return route ? route(init, url) : errorResponse(404, 'not_found', `no route ${key}`);
  });
  const calls = (key: string) =>
    fetch.mock.calls
      .filter(([u, init]) => `${init?.method ?? 'GET'} ${String(u).split('?')[0]}` === key)
      .map(([u, init]) => ({ url: String(u), body: init?.body ? JSON.parse(String(init.body)) : undefined }));
  return { fetch, calls };
}

/** A server-sent event stream the test writes to; it fails when the request is aborted. */
export function sseStream(signal?: AbortSignal | null) {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  signal?.addEventListener('abort', () => {
    if (open) {
      open = false;
      controller.error(new DOMException('Aborted', 'AbortError'));
    }
  });
  return {
    response: () => new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    send(event: string, data: unknown) {
      if (open) controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
    },
    close() {
      if (open) {
        open = false;
        controller.close();
      }
    },
  };
}
