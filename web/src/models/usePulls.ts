import { useCallback, useEffect, useRef, useState } from 'react';
import type { ApiClient } from '../api/client';
import { ApiError, friendlyMessage } from '../api/errors';
import { followEventStream } from '../api/sse';
import { isFinal, type PullStatus } from './types';

/** Reconnections of one pull's event stream before giving up. */
const MAX_RETRIES = 5;

export interface PullsValue {
  /** Recent pulls, newest first, with live progress for those still running. */
  pulls: PullStatus[];
  loading: boolean;
  /** Why the list or a pull's progress could not be read. */
  error: string | null;
  reload(): Promise<void>;
  /** Starts a pull (a catalog name, a Hugging Face path, a URL or `ollama:<provider>/<model>`). */
  start(source: string, sha256?: string): Promise<PullStatus>;
  cancel(id: string): Promise<void>;
}

/**
 * The admin's model pulls: the recent list (GET /api/v1/models/pulls) and the live progress of
 * every pull not yet ended (GET /api/v1/models/pulls/{id}/events, server-sent `PullStatus`es,
 * reconnecting when the stream drops). `onFinished` is called once per pull that ends while
 * followed. Does nothing unless `enabled`.
 */
export function usePulls(
  client: ApiClient,
  enabled: boolean,
  onFinished: (status: PullStatus) => void,
): PullsValue {
  const [pulls, setPulls] = useState<PullStatus[]>([]);
  const [loading, setLoading] = useState(enabled);
  const [error, setError] = useState<string | null>(null);
  const followers = useRef(new Map<string, AbortController>());
  const finished = useRef(onFinished);
  finished.current = onFinished;

  const upsert = useCallback((status: PullStatus) => {
    setPulls((prev) => {
      const i = prev.findIndex((p) => p.id === status.id);
      if (i < 0) return [status, ...prev];
      const next = prev.slice();
      next[i] = status;
      return next;
    });
  }, []);

  const follow = useCallback(
    (id: string) => {
      if (followers.current.has(id)) return;
      const controller = new AbortController();
      const { signal } = controller;
      followers.current.set(id, controller);
      let retries = 0;
      void (async () => {
        try {
          await followEventStream(client, `/api/v1/models/pulls/${encodeURIComponent(id)}/events`, signal, {
            onEvent(event) {
              if (event.event !== 'message' || !event.data) return;
              const status = JSON.parse(event.data) as PullStatus;
              retries = 0;
              upsert(status);
              if (isFinal(status.state)) {
                finished.current(status);
                return true;
              }
            },
            onError(e) {
              // A refusal (403, 404) will not change by asking again.
              if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
                setError(`Cannot follow the pull’s progress: ${friendlyMessage(e)}`);
                return true;
              }
            },
            onDrop() {
              // The stream ended before the pull did: reconnect, with growing pauses.
              retries++;
              if (retries > MAX_RETRIES) {
                setError('Lost touch with a running pull. Reload the page to see how it is doing.');
                return null;
              }
              return Math.min(500 * 2 ** retries, 10_000);
            },
          });
        } finally {
          if (followers.current.get(id) === controller) followers.current.delete(id);
        }
      })();
    },
    [client, upsert],
  );

  const reload = useCallback(async () => {
    if (!enabled) return;
    setLoading(true);
    try {
      const { items } = await client.get<{ items: PullStatus[] }>('/api/v1/models/pulls');
      setPulls(items);
      setError(null);
      for (const p of items) if (!isFinal(p.state)) follow(p.id);
    } catch (e) {
      setError(`Cannot list the recent pulls: ${friendlyMessage(e)}`);
    } finally {
      setLoading(false);
    }
  }, [client, enabled, follow]);

  useEffect(() => {
    const current = followers.current;
    void reload();
    return () => {
      for (const controller of current.values()) controller.abort();
      current.clear();
    };
  }, [reload]);

  const start = useCallback(
    async (source: string, sha256?: string) => {
      const body: { source: string; sha256?: string } = { source };
      if (sha256) body.sha256 = sha256;
      const status = await client.post<PullStatus>('/api/v1/models/pulls', body);
      upsert(status);
      if (isFinal(status.state)) finished.current(status);
      else follow(status.id);
      return status;
    },
    [client, follow, upsert],
  );

  const cancel = useCallback(
    async (id: string) => {
      await client.delete(`/api/v1/models/pulls/${encodeURIComponent(id)}`);
      // The event stream brings the end; a pull that runs on another replica reports it here.
      try {
        const status = await client.get<PullStatus>(`/api/v1/models/pulls/${encodeURIComponent(id)}`);
        upsert(status);
      } catch {
        // the stream will tell
      }
    },
    [client, upsert],
  );

  return { pulls, loading, error, reload, start, cancel };
}
