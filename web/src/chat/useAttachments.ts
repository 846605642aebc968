// The files a message being written carries: each uploaded at once through the files service,
// then watched until its virus scan says whether it may go with the message.
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, friendlyMessage } from '../api/errors';
import { MAX_ATTACHMENTS, type ChatAttachment } from '../api/types';
import { isCancelled, type FilesApi, type UploadHandle } from '../files/api';
import type { FileKind, FileView } from '../files/types';

/** How often a file being scanned is asked for again. */
export const SCAN_POLL_MS = 1_000;
/** How many times it is asked for before the composer gives up waiting (about two minutes). */
export const SCAN_POLL_LIMIT = 120;

/**
 * `uploading`: being sent; `checking`: asked for again (after a refused message); `scanning`:
 * stored, waiting for the virus scan; `ready`: may be sent; `error`: cannot be sent (why in
 * `error`).
 */
export type DraftStatus = 'uploading' | 'checking' | 'scanning' | 'ready' | 'error';

export interface DraftAttachment {
  key: string;
  /** The file as chosen here (for its local preview, and to upload it again). */
  file: File;
  status: DraftStatus;
  /** Bytes sent so far (while uploading). */
  sent: number;
  /** The stored file, once uploaded. */
  view: FileView | null;
  error?: string;
  /** Whether trying again may help (a failed upload, a scan that took too long). */
  canRetry?: boolean;
}

/** What a file is, from its type, before the server has said. */
export function guessKind(type: string, name = ''): FileKind {
  const t = type.toLowerCase();
  if (t.startsWith('image/')) return 'image';
  if (t === 'application/pdf' || /\.pdf$/i.test(name)) return 'pdf';
  if (t === 'text/markdown' || /\.(md|markdown)$/i.test(name)) return 'markdown';
  if (t.startsWith('text/')) return 'text';
  if (t.startsWith('audio/')) return 'audio';
  if (t.startsWith('video/')) return 'video';
  if (/zip|tar|gzip|x-7z|rar|compressed/.test(t)) return 'archive';
  return 'document';
}

/** A stored file as a message's attachment. */
export function toAttachment(view: FileView): ChatAttachment {
  return { file_id: view.id, name: view.name, content_type: view.content_type, kind: view.kind, size: view.size };
}

export interface UseAttachmentsOptions {
  pollMs?: number;
  pollLimit?: number;
}

/**
 * The composer's attachments: `add` uploads files (at most MAX_ATTACHMENTS in all), `remove`
 * cancels or drops one, `take` hands the ready ones over for sending and empties the list,
 * `restore` puts taken ones back (and asks the server about each again).
 */
export function useAttachments(api: FilesApi | undefined, { pollMs = SCAN_POLL_MS, pollLimit = SCAN_POLL_LIMIT }: UseAttachmentsOptions = {}) {
  const [drafts, setDrafts] = useState<DraftAttachment[]>([]);
  const draftsRef = useRef(drafts);
  draftsRef.current = drafts;
  const uploads = useRef(new Map<string, UploadHandle>());
  const watches = useRef(new Map<string, AbortController>());
  const counter = useRef(0);

  const update = useCallback(
    (key: string, changes: Partial<DraftAttachment>) =>
      setDrafts((old) => old.map((d) => (d.key === key ? { ...d, ...changes } : d))),
    [],
  );

  const unwatch = useCallback((key: string) => {
    watches.current.get(key)?.abort();
    watches.current.delete(key);
  }, []);

  /** Shows what the server says of a stored file; true while it is still being scanned. */
  const apply = useCallback(
    (key: string, view: FileView): boolean => {
      switch (view.state) {
        case 'clean':
        case 'unscanned':
          update(key, { view, status: 'ready', error: undefined, canRetry: false });
          return false;
        case 'infected':
          update(key, {
            view,
            status: 'error',
            canRetry: false,
            error: `The virus scanner found ${view.threat ? `a threat (${view.threat})` : 'a threat'}: the file is quarantined.`,
          });
          return false;
        default:
          update(key, { view, status: 'scanning', error: undefined, canRetry: false });
          return true;
      }
    },
    [update],
  );

  /** Asks for a stored file now and then every `pollMs` until its scan has ended (or too long). */
  const watch = useCallback(
    (key: string, id: string, firstDelay: number) => {
      if (!api) return;
      unwatch(key);
      const controller = new AbortController();
      watches.current.set(key, controller);
      const { signal } = controller;
      let tries = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
      const tick = async () => {
        if (signal.aborted) return;
        tries += 1;
        try {
          const view = await api.get(id, signal);
          if (signal.aborted) return;
          if (!apply(key, view)) {
            watches.current.delete(key);
            return;
          }
        } catch (e) {
          if (signal.aborted) return;
          if (e instanceof ApiError && e.status === 404) {
            watches.current.delete(key);
            update(key, { status: 'error', canRetry: false, error: 'The file is no longer among your files.' });
            return;
          }
          // Anything else (the network, a busy server) may pass: asked again below.
        }
        if (tries >= pollLimit) {
          watches.current.delete(key);
          update(key, {
            status: 'error',
            canRetry: true,
            error: 'The virus scan is taking long. Try again later, or remove the file.',
          });
          return;
        }
        timer = setTimeout(() => void tick(), pollMs);
      };
      timer = setTimeout(() => void tick(), firstDelay);
    },
    [api, apply, pollLimit, pollMs, unwatch, update],
  );

  const upload = useCallback(
    (key: string, file: File) => {
      if (!api) return;
      let handle: UploadHandle | null = null;
      handle = api.upload(file, {
        onProgress: (p) => {
          if (!handle || uploads.current.get(key) === handle) update(key, { sent: p.sent });
        },
      });
      uploads.current.set(key, handle);
      update(key, { status: 'uploading', sent: 0, error: undefined, canRetry: false });
      const mine = handle;
      mine.promise.then(
        (view) => {
          if (uploads.current.get(key) !== mine) return;
          uploads.current.delete(key);
          if (apply(key, view)) watch(key, view.id, pollMs);
        },
        (e: unknown) => {
          if (uploads.current.get(key) !== mine) return;
          uploads.current.delete(key);
          if (isCancelled(e)) setDrafts((old) => old.filter((d) => d.key !== key));
          else update(key, { status: 'error', canRetry: !(e instanceof ApiError && e.status === 413), error: friendlyMessage(e) });
        },
      );
    },
    [api, apply, pollMs, update, watch],
  );

  /** Uploads the files that fit under the limit; returns how many did not. */
  const add = useCallback(
    (files: File[]): number => {
      if (!api) return files.length;
      const room = Math.max(0, MAX_ATTACHMENTS - draftsRef.current.length);
      const taken = files.slice(0, room);
      const fresh: DraftAttachment[] = taken.map((file) => ({
        key: `attachment-${++counter.current}`,
        file,
        status: 'uploading',
        sent: 0,
        view: null,
      }));
      draftsRef.current = [...draftsRef.current, ...fresh];
      setDrafts(draftsRef.current);
      for (const d of fresh) upload(d.key, d.file);
      return files.length - taken.length;
    },
    [api, upload],
  );

  /** Cancels an upload, or takes a file off the message (it stays among the user's files). */
  const remove = useCallback(
    (key: string) => {
      const handle = uploads.current.get(key);
      uploads.current.delete(key);
      unwatch(key);
      setDrafts((old) => old.filter((d) => d.key !== key));
      void handle?.cancel();
    },
    [unwatch],
  );

  /** Tries a failed one again: the upload, or the wait for its scan. */
  const retry = useCallback(
    (key: string) => {
      const d = draftsRef.current.find((x) => x.key === key);
      if (!d) return;
      if (d.view) {
        update(key, { status: 'checking', error: undefined, canRetry: false });
        watch(key, d.view.id, 0);
      } else {
        upload(key, d.file);
      }
    },
    [update, upload, watch],
  );

  /** The attachments to send (all must be ready) and an empty list; the drafts to restore. */
  const take = useCallback((): { attachments: ChatAttachment[]; drafts: DraftAttachment[] } => {
    const taken = draftsRef.current;
    const attachments = taken.flatMap((d) => (d.status === 'ready' && d.view ? [toAttachment(d.view)] : []));
    draftsRef.current = [];
    setDrafts([]);
    return { attachments, drafts: taken };
  }, []);

  /** Puts taken drafts back (a refused message) and asks the server about each again. */
  const restore = useCallback(
    (back: DraftAttachment[]) => {
      const fresh = back.filter((d) => !draftsRef.current.some((x) => x.key === d.key));
      const room = Math.max(0, MAX_ATTACHMENTS - draftsRef.current.length);
      const kept = fresh.slice(0, room).map((d) => (d.view ? { ...d, status: 'checking' as const, error: undefined } : d));
      draftsRef.current = [...kept, ...draftsRef.current];
      setDrafts(draftsRef.current);
      for (const d of kept) if (d.view) watch(d.key, d.view.id, 0);
    },
    [watch],
  );

  // Uploads and watches still running when the composer goes are stopped (a large upload can
  // resume when the same file is attached again).
  useEffect(() => {
    const running = uploads.current;
    const watching = watches.current;
    return () => {
      for (const h of running.values()) h.stop();
      running.clear();
      for (const c of watching.values()) c.abort();
      watching.clear();
    };
  }, []);

  const ready = drafts.every((d) => d.status === 'ready');
  return { drafts, add, remove, retry, take, restore, ready, full: drafts.length >= MAX_ATTACHMENTS };
}
