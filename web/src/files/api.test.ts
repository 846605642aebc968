import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/client';
import { ApiError } from '../api/errors';
import { testUser } from '../test/fixtures';
import { errorResponse, jsonResponse, routes } from '../test/helpers';
import {
  absoluteUrl,
  filesApi,
  localUploadStore,
  RateMeter,
  resumableUpload,
  simpleUpload,
  uploadFile,
  uploadKey,
  type UploadProgress,
  type UploadStore,
} from './api';
import { FakeXHR, fileView, signedIn } from './testing';
import type { UploadSession } from './types';

beforeEach(() => {
  FakeXHR.reset();
  vi.stubGlobal('XMLHttpRequest', FakeXHR);
});
afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
});

/** Waits until `n` requests have gone through the fake XHR. */
async function sentCount(n: number) {
  await vi.waitFor(() => expect(FakeXHR.sent.length).toBeGreaterThanOrEqual(n));
}

function memoryStore(initial: Record<string, string> = {}): UploadStore & { entries: Record<string, string>; saved: string[] } {
  const entries = { ...initial };
  const saved: string[] = [];
  return {
    entries,
    saved,
    get: (k) => entries[k] ?? null,
    set: (k, id) => {
      entries[k] = id;
      saved.push(id);
    },
    remove: (k) => {
      delete entries[k];
    },
  };
}

/** A blob's bytes (jsdom's Blob has no arrayBuffer()). */
function read(blob: Blob): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(new Uint8Array(reader.result as ArrayBuffer));
    reader.onerror = () => reject(reader.error);
    reader.readAsArrayBuffer(blob);
  });
}

/** A file of `size` bytes, byte i being i % 251. */
function bytes(size: number, name = 'big.bin', type = 'application/octet-stream') {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = i % 251;
  return new File([data], name, { type, lastModified: 1_700_000_000_000 });
}

describe('files api', () => {
  it('builds the routes and share addresses', async () => {
    const server = routes({
      'GET /api/v1/files': () => jsonResponse(200, { files: [], next: null }),
      'POST /api/v1/files/f1/links': () => jsonResponse(201, { id: 'l1', url: '/f/tok', expires_at: '', revoked: false, created_at: '' }),
      'GET /api/v1/admin/files': () => jsonResponse(200, { files: [], next: null }),
    });
    const api = filesApi(signedIn(server.fetch));
    await api.list('f9', 30);
    await api.createLink('f1', 168);
    await api.adminList('infected', null, 50);
    expect(server.calls('GET /api/v1/files')[0]!.url).toBe('/api/v1/files?before=f9&limit=30');
    expect(server.calls('POST /api/v1/files/f1/links')[0]!.body).toEqual({ hours: 168 });
    expect(server.calls('GET /api/v1/admin/files')[0]!.url).toBe('/api/v1/admin/files?state=infected&limit=50');
    expect(absoluteUrl('/f/tok', 'https://chat.example.com')).toBe('https://chat.example.com/f/tok');
    expect(absoluteUrl('/f/tok')).toBe(`${window.location.origin}/f/tok`);
  });

  it('measures the rate over its window', () => {
    let t = 0;
    const meter = new RateMeter(() => t, 0, 3_000);
    t = 100;
    expect(meter.sample(1_000)).toBe(0); // too soon to tell
    t = 1_000;
    expect(meter.sample(2_000_000)).toBe(2_000_000);
    t = 5_000;
    // The first samples left the window.
    expect(meter.sample(6_000_000)).toBe(1_000_000);
  });
});

describe('simple upload', () => {
  it('posts the file as multipart part "file" with the token, reporting progress', async () => {
    const server = routes({});
    const file = bytes(1000, 'notes.txt', 'text/plain');
    const progress: UploadProgress[] = [];
    const handle = uploadFile(signedIn(server.fetch), file, { onProgress: (p) => progress.push(p) });
    expect(handle.resumable).toBe(false);
    await sentCount(1);
    const xhr = FakeXHR.sent[0]!;
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/v1/files');
    expect(xhr.headers.authorization).toBe('Bearer tok');
    expect(xhr.body).toBeInstanceOf(FormData);
    const part = (xhr.body as FormData).get('file') as File;
    expect(part.name).toBe('notes.txt');
    expect(part.size).toBe(1000);
    // The request is the file and its multipart framing: progress is scaled to the file.
    xhr.progress(600, 1200);
    expect(progress.at(-1)).toMatchObject({ sent: 500, total: 1000 });
    xhr.respond(201, fileView('f1', 'notes.txt', { kind: 'text' }));
    await expect(handle.promise).resolves.toMatchObject({ id: 'f1', name: 'notes.txt' });
    expect(progress.at(-1)).toMatchObject({ sent: 1000, total: 1000 });
  });

  it('rejects with the server’s error envelope', async () => {
    const handle = simpleUpload(signedIn(routes({}).fetch), bytes(10));
    await sentCount(1);
    FakeXHR.sent[0]!.respond(413, { error: { code: 'quota_exceeded', message: 'Your files would take 1.1 GB of your 1 GB.', request_id: 'r' } });
    const error = await handle.promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 413, code: 'quota_exceeded', message: 'Your files would take 1.1 GB of your 1 GB.' });
  });

  it('is cancelled with abort, and says so', async () => {
    const handle = simpleUpload(signedIn(routes({}).fetch), bytes(10));
    await sentCount(1);
    await handle.cancel();
    expect(FakeXHR.sent[0]!.aborted).toBe(true);
    await expect(handle.promise).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refreshes the token once after a 401 and sends again', async () => {
    const server = routes({
      'POST /api/v1/auth/refresh': () =>
        jsonResponse(200, { access_token: 'tok2', refresh_token: 'r', token_type: 'Bearer', expires_in: 900, user: testUser }),
    });
    // The refresh needs the CSRF cookie.
    const client = new ApiClient({ fetch: server.fetch, cookies: () => 'confab_csrf=c' });
    client.setSession({ access_token: 'tok', expires_in: 900, user: testUser });
    const handle = simpleUpload(client, bytes(10));
    await sentCount(1);
    FakeXHR.sent[0]!.respond(401, { error: { code: 'token_expired', message: 'expired' } });
    await sentCount(2);
    expect(FakeXHR.sent[1]!.headers.authorization).toBe('Bearer tok2');
    FakeXHR.sent[1]!.respond(201, fileView('f1', 'big.bin'));
    await expect(handle.promise).resolves.toMatchObject({ id: 'f1' });
  });
});

describe('resumable upload', () => {
  const PART = 100;
  const session = (extra: Partial<UploadSession> = {}): UploadSession => ({
    id: 'up1',
    name: 'big.bin',
    size: 350,
    part_bytes: PART,
    parts: 4,
    received: [],
    expires_at: '2099-01-01T00:00:00Z',
    ...extra,
  });

  it('resumes a remembered upload: asks which parts the server has, sends only the others, retries a failed one', async () => {
    const file = bytes(350);
    const store = memoryStore({ [uploadKey(file)]: 'up1' });
    const server = routes({
      'GET /api/v1/files/uploads/up1': () => jsonResponse(200, session({ received: [0, 2] })),
      'POST /api/v1/files/uploads/up1/complete': () => jsonResponse(201, fileView('f1', 'big.bin', { size: 350 })),
    });
    const sleeps: number[] = [];
    const progress: UploadProgress[] = [];
    let failures = 0;
    FakeXHR.onSend = (xhr) => {
      queueMicrotask(() => {
        // Part 3 fails once for the network, then goes through.
        if (xhr.part === 3 && failures++ === 0) xhr.fail();
        else {
          xhr.progress((xhr.body as Blob).size, (xhr.body as Blob).size);
          xhr.respond(204);
        }
      });
    };
    const handle = resumableUpload(signedIn(server.fetch), file, {
      store,
      concurrency: 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      onProgress: (p) => progress.push(p),
    });
    await expect(handle.promise).resolves.toMatchObject({ id: 'f1' });

    expect(server.calls('POST /api/v1/files/uploads')).toEqual([]);
    expect(FakeXHR.sent.map((x) => `${x.method} ${x.url}`)).toEqual([
      'PUT /api/v1/files/uploads/up1/parts/1',
      'PUT /api/v1/files/uploads/up1/parts/3',
      'PUT /api/v1/files/uploads/up1/parts/3',
    ]);
    expect(sleeps).toEqual([1_000]);
    // Part n is the bytes [n·100, min(350, (n+1)·100)).
    const part1 = await read(FakeXHR.sent[0]!.body as Blob);
    expect(part1.length).toBe(100);
    expect(part1[0]).toBe(100 % 251);
    expect((FakeXHR.sent[2]!.body as Blob).size).toBe(50);
    expect(FakeXHR.sent[0]!.headers.authorization).toBe('Bearer tok');
    // The parts the server had count from the start.
    expect(progress[0]).toMatchObject({ sent: 200, total: 350 });
    expect(progress.at(-1)).toMatchObject({ sent: 350, total: 350 });
    expect(server.calls('POST /api/v1/files/uploads/up1/complete')).toHaveLength(1);
    expect(store.entries).toEqual({});
  });

  it('creates an upload, remembers it, and backs off longer after each network failure', async () => {
    const file = bytes(150, 'movie.mp4', 'video/mp4');
    const store = memoryStore();
    const server = routes({
      'POST /api/v1/files/uploads': () => jsonResponse(201, session({ parts: 2 })),
      'POST /api/v1/files/uploads/up1/complete': () => jsonResponse(201, fileView('f2', 'movie.mp4', { kind: 'video' })),
    });
    let part1Tries = 0;
    FakeXHR.onSend = (xhr) =>
      queueMicrotask(() => {
        if (xhr.part === 1 && part1Tries++ < 3) xhr.respond(503, { error: { code: 'unavailable', message: 'busy' } });
        else xhr.respond(204);
      });
    const sleeps: number[] = [];
    const handle = resumableUpload(signedIn(server.fetch), file, {
      store,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    await expect(handle.promise).resolves.toMatchObject({ id: 'f2' });
    expect(store.saved).toEqual(['up1']);
    expect(server.calls('POST /api/v1/files/uploads')[0]!.body).toEqual({ name: 'movie.mp4', size: 150, content_type: 'video/mp4' });
    expect(sleeps).toEqual([1_000, 2_000, 4_000]);
    expect(store.entries).toEqual({});
  });

  it('gives up after the last retry, keeping the upload to resume', async () => {
    const file = bytes(150);
    const store = memoryStore();
    const server = routes({ 'POST /api/v1/files/uploads': () => jsonResponse(201, session({ parts: 2 })) });
    FakeXHR.onSend = (xhr) => queueMicrotask(() => (xhr.part === 1 ? xhr.fail() : xhr.respond(204)));
    const handle = resumableUpload(signedIn(server.fetch), file, { store, concurrency: 1, retryDelays: [1, 1], sleep: async () => {} });
    await expect(handle.promise).rejects.toMatchObject({ code: 'network_error' });
    expect(FakeXHR.sent.filter((x) => x.part === 1)).toHaveLength(3);
    expect(store.entries[uploadKey(file)]).toBe('up1');
  });

  it('does not retry a part the server refused', async () => {
    const server = routes({ 'POST /api/v1/files/uploads': () => jsonResponse(201, session({ parts: 1 })) });
    FakeXHR.onSend = (xhr) =>
      queueMicrotask(() => xhr.respond(413, { error: { code: 'file_too_large', message: 'Files can be 10 MB at most.' } }));
    const handle = resumableUpload(signedIn(server.fetch), bytes(50), { store: null, sleep: async () => {} });
    await expect(handle.promise).rejects.toMatchObject({ code: 'file_too_large', message: 'Files can be 10 MB at most.' });
    expect(FakeXHR.sent).toHaveLength(1);
  });

  it('starts anew when the remembered upload is gone', async () => {
    const file = bytes(50);
    const store = memoryStore({ [uploadKey(file)]: 'old' });
    const server = routes({
      'GET /api/v1/files/uploads/old': () => errorResponse(404, 'not_found', 'No such upload.'),
      'POST /api/v1/files/uploads': () => jsonResponse(201, session({ parts: 1 })),
      'POST /api/v1/files/uploads/up1/complete': () => jsonResponse(201, fileView('f3', 'big.bin')),
    });
    FakeXHR.onSend = (xhr) => queueMicrotask(() => xhr.respond(204));
    await expect(resumableUpload(signedIn(server.fetch), file, { store }).promise).resolves.toMatchObject({ id: 'f3' });
    expect(server.calls('POST /api/v1/files/uploads')).toHaveLength(1);
  });

  it('cancels: aborts the parts in flight and deletes the upload', async () => {
    const file = bytes(350);
    const store = memoryStore();
    const server = routes({
      'POST /api/v1/files/uploads': () => jsonResponse(201, session()),
      'DELETE /api/v1/files/uploads/up1': () => new Response(null, { status: 204 }),
    });
    const handle = resumableUpload(signedIn(server.fetch), file, { store });
    // Two parts at a time.
    await sentCount(2);
    expect(FakeXHR.sent.map((x) => x.part)).toEqual([0, 1]);
    await handle.cancel();
    expect(FakeXHR.sent.every((x) => x.aborted)).toBe(true);
    await expect(handle.promise).rejects.toMatchObject({ name: 'AbortError' });
    expect(server.calls('DELETE /api/v1/files/uploads/up1')).toHaveLength(1);
    expect(store.entries).toEqual({});
    expect(FakeXHR.sent).toHaveLength(2);
  });

  it('is chosen for files over the threshold', async () => {
    const server = routes({ 'POST /api/v1/files/uploads': () => jsonResponse(201, session({ parts: 1 })) });
    const handle = uploadFile(signedIn(server.fetch), bytes(20), { resumableAbove: 10, store: null });
    expect(handle.resumable).toBe(true);
    handle.stop();
    await expect(handle.promise).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('localUploadStore', () => {
  it('remembers uploads until they expire', () => {
    const store = localUploadStore(localStorage)!;
    store.set('a', 'up-a', '2099-01-01T00:00:00Z');
    store.set('b', 'up-b', '2000-01-01T00:00:00Z');
    expect(store.get('a')).toBe('up-a');
    expect(store.get('b')).toBeNull();
    store.remove('a');
    expect(store.get('a')).toBeNull();
    expect(localStorage.getItem('confab.files.uploads')).toBeNull();
  });
});
