// The files service's routes (/api/v1/files, /api/v1/admin/files) over the app's client, and
// uploads: one request with XMLHttpRequest (for its upload progress) or, for large files, a
// resumable upload sent part by part, retried after network errors and resumed after a reload.
import type { ApiClient } from '../api/client';
import { download } from '../api/download';
import { ApiError, errorFromResponse } from '../api/errors';
import { query } from '../api/query';
import type {
  AdminFilePage,
  CreatedLink,
  CreateUpload,
  FilePage,
  FileState,
  FilesUsage,
  FileView,
  LinkList,
  StorageReport,
  UploadSession,
} from './types';

const BASE = '/api/v1/files';

/** Files larger than this go as a resumable upload (the server's parts are about this big). */
export const RESUMABLE_ABOVE = 16 * 1024 * 1024;

/** Milliseconds to wait before each new try of a part that failed for a network or server error. */
export const RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000];

/** Parts sent at once. */
const CONCURRENT_PARTS = 2;

export type FileVariant = 'content' | 'thumbnail' | 'preview';

/** A share link's path (`/f/<token>`) as an address to hand out: on this site's origin. */
export function absoluteUrl(path: string, origin: string = window.location.origin): string {
  try {
    return new URL(path, origin).href;
  } catch {
    return `${origin}${path}`;
  }
}

export function filesApi(client: ApiClient) {
  const file = (id: string) => `${BASE}/${encodeURIComponent(id)}`;
  return {
    list: (before?: string | null, limit?: number, signal?: AbortSignal) =>
      client.get<FilePage>(`${BASE}${query({ before, limit })}`, { signal }),
    usage: () => client.get<FilesUsage>(`${BASE}/usage`),
    get: (id: string, signal?: AbortSignal) => client.get<FileView>(file(id), { signal }),
    remove: (id: string) => client.delete(file(id)),
    /** A file's bytes (or an image's JPEG/PNG variant), read with the session's token. */
    async blob(id: string, variant: FileVariant = 'content', signal?: AbortSignal): Promise<Blob> {
      const response = await client.fetch(`${file(id)}/${variant}`, { method: 'GET' }, { signal });
      return response.blob();
    },
    /** Saves a file through the browser, named as the server says (else its name here). */
    download: (f: Pick<FileView, 'id' | 'name'>) => download(client, `${file(f.id)}/content`, f.name),
    links: (id: string) => client.get<LinkList>(`${file(id)}/links`),
    createLink: (id: string, hours: number) => client.post<CreatedLink>(`${file(id)}/links`, { hours }),
    revokeLink: (id: string, linkId: string) => client.delete(`${file(id)}/links/${encodeURIComponent(linkId)}`),
    upload: (f: File, options?: UploadOptions) => uploadFile(client, f, options),
    adminList: (state?: FileState, before?: string | null, limit?: number) =>
      client.get<AdminFilePage>(`/api/v1/admin/files${query({ state, before, limit })}`),
    storage: () => client.get<StorageReport>('/api/v1/admin/files/storage'),
  };
}

export type FilesApi = ReturnType<typeof filesApi>;

// ---------------------------------------------------------------------------------------------
// Uploads

export interface UploadProgress {
  /** Bytes of the file the server has or is receiving. */
  sent: number;
  total: number;
  /** Bytes a second over the last few seconds; 0 until it can be told. */
  rate: number;
}

/** Where the ids of unfinished resumable uploads are kept, so that a reload can resume them. */
export interface UploadStore {
  get(key: string): string | null;
  set(key: string, id: string, expiresAt: string): void;
  remove(key: string): void;
}

export interface UploadOptions {
  onProgress?(progress: UploadProgress): void;
  /** Files larger than this are sent as a resumable upload (default RESUMABLE_ABOVE). */
  resumableAbove?: number;
  /** Parts sent at once (default 2). */
  concurrency?: number;
  /** The waits before each retry of a failed part; the part fails after the last. */
  retryDelays?: number[];
  /** Waits `ms`, or rejects when `signal` aborts (tests make it instant). */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  now?(): number;
  /** Default: the browser's localStorage; null keeps nothing. */
  store?: UploadStore | null;
}

export interface UploadHandle {
  /** The stored file; rejects with an ApiError, or an AbortError once cancelled. */
  promise: Promise<FileView>;
  /**
   * Stops the upload and discards what the server has of a resumable one (also after it
   * failed, when it could otherwise be resumed). Resolves once that is done.
   */
  cancel(): Promise<void>;
  /**
   * Stops sending and keeps what the server has: uploading the same file again resumes a
   * resumable upload (its id is remembered in the store).
   */
  stop(): void;
  /** Sent in parts (and resumable)? */
  resumable: boolean;
}

/** The error an upload's promise rejects with once cancelled. */
export function cancelledError(): DOMException {
  return new DOMException('The upload was cancelled.', 'AbortError');
}

export function isCancelled(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}

/** Sends `file`, whole or (over `resumableAbove`) in parts, reporting progress. */
export function uploadFile(client: ApiClient, file: File, options: UploadOptions = {}): UploadHandle {
  return file.size > (options.resumableAbove ?? RESUMABLE_ABOVE)
    ? resumableUpload(client, file, options)
    : simpleUpload(client, file, options);
}

/** One multipart POST of the file as the part `file`. */
export function simpleUpload(client: ApiClient, file: File, options: UploadOptions = {}): UploadHandle {
  const abort = new AbortController();
  const meter = new RateMeter(options.now ?? Date.now, 0);
  const report = (sent: number) => options.onProgress?.({ sent, total: file.size, rate: meter.sample(sent) });
  const promise = (async () => {
    const form = new FormData();
    form.append('file', file, file.name);
    report(0);
    const result = await sendXhr(client, {
      method: 'POST',
      path: BASE,
      body: form,
      signal: abort.signal,
      // The request is a little larger than the file (the multipart framing).
      onProgress: (loaded, total) => report(Math.min(file.size, total > 0 ? Math.round((loaded / total) * file.size) : loaded)),
    });
    report(file.size);
    return parseJson<FileView>(result.text);
  })();
  return {
    promise,
    resumable: false,
    cancel: async () => abort.abort(),
    stop: () => abort.abort(),
  };
}

/** The key a resumable upload of `file` is remembered under. */
export function uploadKey(file: File): string {
  return `${file.name}\u0000${file.size}\u0000${file.lastModified}`;
}

/**
 * A resumable upload: created (or, when one for the same file is remembered, asked which parts
 * the server has), its missing parts PUT a few at a time, each retried with backoff after a
 * network or server error, then completed.
 */
export function resumableUpload(client: ApiClient, file: File, options: UploadOptions = {}): UploadHandle {
  const store = options.store === undefined ? localUploadStore() : options.store;
  const delays = options.retryDelays ?? RETRY_DELAYS_MS;
  const sleep = options.sleep ?? abortableSleep;
  const key = uploadKey(file);
  const abort = new AbortController();
  let uploadId: string | null = null;
  let discarded: Promise<void> | null = null;

  const promise = (async () => {
    const signal = abort.signal;
    let session: UploadSession | null = null;
    const known = store?.get(key);
    if (known) {
      try {
        session = await client.get<UploadSession>(uploadPath(known), { signal });
      } catch (e) {
        if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 410)) throw e;
        store?.remove(key);
      }
    }
    if (!session) {
      const body: CreateUpload = { name: file.name, size: file.size };
      if (file.type) body.content_type = file.type;
      session = await client.post<UploadSession>(`${BASE}/uploads`, body, { signal });
      store?.set(key, session.id, session.expires_at);
    }
    uploadId = session.id;
    if (signal.aborted) throw cancelledError();
    const path = uploadPath(session.id);
    const partBytes = session.part_bytes;
    const range = (n: number) => [n * partBytes, Math.min(file.size, (n + 1) * partBytes)] as const;

    const received = new Set(session.received);
    let done = 0;
    for (const n of received) {
      const [start, end] = range(n);
      done += Math.max(0, end - start);
    }
    const inFlight = new Map<number, number>();
    const meter = new RateMeter(options.now ?? Date.now, done);
    const report = () => {
      let sent = done;
      for (const loaded of inFlight.values()) sent += loaded;
      options.onProgress?.({ sent, total: file.size, rate: meter.sample(sent) });
    };
    report();

    // The parts still to send; one failing for good stops the others.
    const queue: number[] = [];
    for (let n = 0; n < session.parts; n++) if (!received.has(n)) queue.push(n);
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort);

    const sendPart = async (n: number) => {
      const [start, end] = range(n);
      for (let attempt = 0; ; attempt++) {
        try {
          await sendXhr(client, {
            method: 'PUT',
            path: `${path}/parts/${n}`,
            body: file.slice(start, end),
            headers: { 'content-type': 'application/octet-stream' },
            signal: stop.signal,
            onProgress: (loaded) => {
              inFlight.set(n, Math.min(loaded, end - start));
              report();
            },
          });
          inFlight.delete(n);
          done += end - start;
          report();
          return;
        } catch (e) {
          inFlight.delete(n);
          report();
          if (!retryable(e) || attempt >= delays.length) throw e;
          const wait = Math.max(delays[attempt]!, e instanceof ApiError && e.retryAfter ? e.retryAfter * 1000 : 0);
          await sleep(Math.min(wait, 60_000), stop.signal);
        }
      }
    };
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) await sendPart(n);
    };
    try {
      const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? CONCURRENT_PARTS, queue.length)) }, worker);
      await Promise.all(workers.map((w) => w.catch((e: unknown) => {
        stop.abort();
        throw e;
      })));
    } catch (e) {
      // The first real error, not the AbortErrors of the parts it stopped.
      throw signal.aborted ? cancelledError() : e;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }

    const view = await client.post<FileView>(`${path}/complete`, undefined, { signal });
    store?.remove(key);
    return view;
  })().catch((e: unknown) => {
    throw abort.signal.aborted ? cancelledError() : e;
  });

  return {
    promise,
    resumable: true,
    stop: () => abort.abort(),
    cancel() {
      abort.abort();
      if (!discarded) {
        discarded = (async () => {
          // Settled either way before the upload is deleted: it cannot be created after this.
          await promise.catch(() => undefined);
          const id = uploadId ?? store?.get(key) ?? null;
          store?.remove(key);
          if (id) await client.delete(uploadPath(id)).catch(() => undefined);
        })();
      }
      return discarded;
    },
  };
}

/** Whether a failed part is worth sending again: the network, or a server that may recover. */
function retryable(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  return e.status === 0 || e.status === 408 || e.status === 429 || (e.status >= 500 && e.status !== 501);
}

function uploadPath(id: string): string {
  return `${BASE}/uploads/${encodeURIComponent(id)}`;
}

function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(cancelledError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Bytes a second over a sliding window of samples. */
export class RateMeter {
  private samples: { t: number; sent: number }[];
  constructor(
    private readonly now: () => number,
    start: number,
    private readonly windowMs = 3_000,
  ) {
    this.samples = [{ t: now(), sent: start }];
  }

  sample(sent: number): number {
    const t = this.now();
    this.samples.push({ t, sent });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const elapsed = t - first.t;
    return elapsed >= 200 ? Math.max(0, ((sent - first.sent) * 1000) / elapsed) : 0;
  }
}

const STORE_KEY = 'confab.files.uploads';

/** Unfinished resumable uploads in localStorage, by file; expired ones are dropped. */
export function localUploadStore(storage: Storage | undefined = globalThis.localStorage): UploadStore | null {
  if (!storage) return null;
  type Entry = { id: string; expires_at: string };
  const read = (): Record<string, Entry> => {
    try {
      const value = JSON.parse(storage.getItem(STORE_KEY) ?? '{}') as unknown;
      return value && typeof value === 'object' ? (value as Record<string, Entry>) : {};
    } catch {
      return {};
    }
  };
  const write = (entries: Record<string, Entry>) => {
    try {
      if (Object.keys(entries).length === 0) storage.removeItem(STORE_KEY);
      else storage.setItem(STORE_KEY, JSON.stringify(entries));
    } catch {
      // storage full or unavailable: the upload just cannot be resumed after a reload
    }
  };
  const live = () => {
    const entries = read();
    const now = Date.now();
    for (const [k, v] of Object.entries(entries)) {
      const expires = Date.parse(v?.expires_at ?? '');
      if (typeof v?.id !== 'string' || (Number.isFinite(expires) && expires <= now)) delete entries[k];
    }
    return entries;
  };
  return {
    get: (key) => live()[key]?.id ?? null,
    set(key, id, expiresAt) {
      const entries = live();
      entries[key] = { id, expires_at: expiresAt };
      write(entries);
    },
    remove(key) {
      const entries = live();
      delete entries[key];
      write(entries);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// XMLHttpRequest with the client's token

interface XhrRequest {
  method: string;
  path: string;
  body: XMLHttpRequestBodyInit;
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Bytes of the request body sent so far, and its length when known (else 0). */
  onProgress?(loaded: number, total: number): void;
}

interface XhrResult {
  status: number;
  text: string;
}

function networkError(): ApiError {
  return new ApiError(0, { code: 'network_error', message: 'Cannot reach the server.' });
}

function sendOnce(request: XhrRequest, token: string | null): Promise<XhrResult & { retryAfter: string | null }> {
  return new Promise((resolve, reject) => {
    if (request.signal.aborted) {
      reject(cancelledError());
      return;
    }
    const xhr = new XMLHttpRequest();
    const onAbort = () => xhr.abort();
    const finish = () => request.signal.removeEventListener('abort', onAbort);
    xhr.open(request.method, request.path);
    if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
    for (const [k, v] of Object.entries(request.headers ?? {})) xhr.setRequestHeader(k, v);
    if (request.onProgress) {
      const onProgress = request.onProgress;
      xhr.upload.onprogress = (e: ProgressEvent) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    }
    xhr.onload = () => {
      finish();
      resolve({ status: xhr.status, text: xhr.responseText, retryAfter: xhr.getResponseHeader('retry-after') });
    };
    xhr.onerror = () => {
      finish();
      reject(networkError());
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      finish();
      reject(cancelledError());
    };
    request.signal.addEventListener('abort', onAbort, { once: true });
    xhr.send(request.body);
  });
}

/**
 * Sends a request as the client would (Bearer token, refreshed when about to expire and once
 * after a 401), through XMLHttpRequest for its upload progress. Throws ApiError when not ok.
 */
export async function sendXhr(client: ApiClient, request: XhrRequest): Promise<XhrResult> {
  const token = await client.freshToken();
  let result = await sendOnce(request, token);
  if (result.status === 401 && token) {
    const tokens = await client.refresh().catch(() => null);
    if (tokens) result = await sendOnce(request, tokens.access_token);
  }
  if (result.status >= 200 && result.status < 300) return result;
  if (result.status < 200 || result.status > 599) throw networkError();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (result.retryAfter) headers['retry-after'] = result.retryAfter;
  const bodyless = result.status === 204 || result.status === 205 || result.status === 304;
  const response = new Response(bodyless ? null : result.text || null, { status: result.status, headers });
  const error = await errorFromResponse(response);
  if (result.status === 401 && token) client.clearSession();
  throw error;
}
