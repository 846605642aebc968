import { api, type ApiClient } from './client';

export interface LiveEvent {
  type: string;
  data: unknown;
  at?: string;
}

type Listener = (event: LiveEvent) => void;

/**
 * The user's live events over `/api/v1/ws`, reconnecting with backoff while anyone listens.
 * Listeners get every event; a `resync` (missed events) or a reconnect means: reload.
 */
export class LiveEvents {
  private socket: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = true;
  private idle: ReturnType<typeof setTimeout> | null = null;

  /** `idleMs`: how long the socket stays open after the last listener leaves. */
  constructor(
    private client: ApiClient = api,
    private idleMs = 2000,
  ) {}

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    if (this.closed) {
      this.closed = false;
      void this.connect();
    }
    return () => {
      this.listeners.delete(listener);
      // A page that re-subscribes at once (new dependencies, a route change) keeps the socket.
      if (this.listeners.size === 0 && !this.idle) {
        this.idle = setTimeout(() => {
          this.idle = null;
          if (this.listeners.size === 0) this.close();
        }, this.idleMs);
      }
    };
  }

  private emit(event: LiveEvent) {
    this.listeners.forEach((l) => l(event));
  }

  private async connect() {
    if (this.closed || typeof WebSocket === 'undefined') return;
    const token = await this.client.freshToken();
    if (!token || this.closed) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws?access_token=${encodeURIComponent(token)}`);
    this.socket = socket;
    // Events of a socket that was replaced or closed are ignored.
    const current = () => this.socket === socket && !this.closed;
    socket.onopen = () => {
      if (!current()) return;
      if (this.retry > 0) this.emit({ type: 'resync', data: null });
      this.retry = 0;
    };
    socket.onmessage = (m) => {
      if (!current()) return;
      try {
        this.emit(JSON.parse(String(m.data)) as LiveEvent);
      } catch {
        // not ours
      }
    };
    socket.onclose = () => {
      if (!current()) return;
      this.socket = null;
      const delay = Math.min(30_000, 1000 * 2 ** this.retry++);
      this.timer = setTimeout(() => void this.connect(), delay);
    };
  }

  close() {
    this.closed = true;
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.close();
    this.socket = null;
  }
}

export const live = new LiveEvents();
