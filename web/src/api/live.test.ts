import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from './client';
import { LiveEvents, type LiveEvent } from './live';

class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
}

const client = { freshToken: async () => 'token' } as unknown as ApiClient;
const flush = () => new Promise((r) => setTimeout(r, 0));

describe('LiveEvents', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal('WebSocket', FakeSocket);
  });
  afterEach(() => vi.unstubAllGlobals());

  it('keeps its socket when a page re-subscribes at once, and closes it when nobody listens', async () => {
    const live = new LiveEvents(client, 50);
    const off = live.subscribe(() => {});
    await flush();
    expect(FakeSocket.all).toHaveLength(1);
    off();
    const seen: LiveEvent[] = [];
    const off2 = live.subscribe((e) => seen.push(e));
    await flush();
    expect(FakeSocket.all).toHaveLength(1);
    expect(FakeSocket.all[0].closed).toBe(false);
    FakeSocket.all[0].onmessage?.({ data: JSON.stringify({ type: 'message.created', data: {} }) });
    expect(seen.map((e) => e.type)).toEqual(['message.created']);
    off2();
    await new Promise((r) => setTimeout(r, 80));
    expect(FakeSocket.all[0].closed).toBe(true);
  });

  it('ignores a replaced socket: its close does not open a second connection', async () => {
    vi.useFakeTimers();
    try {
      const live = new LiveEvents(client, 0);
      const off = live.subscribe(() => {});
      await vi.advanceTimersByTimeAsync(0);
      const first = FakeSocket.all[0];
      off();
      await vi.advanceTimersByTimeAsync(1);
      expect(first.closed).toBe(true);
      const seen: string[] = [];
      live.subscribe((e) => seen.push(e.type));
      await vi.advanceTimersByTimeAsync(0);
      expect(FakeSocket.all).toHaveLength(2);
      // The old socket's close event arrives late, and its messages are not delivered.
      first.onclose?.();
      first.onmessage?.({ data: JSON.stringify({ type: 'stale', data: null }) });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(FakeSocket.all).toHaveLength(2);
      expect(seen).toEqual([]);
      // The live socket's loss reconnects, and the reconnect says: resync.
      FakeSocket.all[1].onclose?.();
      await vi.advanceTimersByTimeAsync(1000);
      expect(FakeSocket.all).toHaveLength(3);
      FakeSocket.all[2].onopen?.();
      expect(seen).toEqual(['resync']);
    } finally {
      vi.useRealTimers();
    }
  });
});
