import { useCallback, useEffect, useRef, useState, type Dispatch, type SetStateAction } from 'react';
import { friendlyMessage } from '../api/errors';
import type { Page } from '../api/types';

export interface CursorPages<T> {
  /** The pages loaded so far, in order. */
  items: T[];
  setItems: Dispatch<SetStateAction<T[]>>;
  /** The cursor of the next page; null when there is none. */
  cursor: string | null;
  loading: boolean;
  /** Why the last page could not be read, in words; the screen may set its own errors here too. */
  error: string | null;
  setError: Dispatch<SetStateAction<string | null>>;
  /** Loads the first page again, replacing the list. */
  reload(): Promise<void>;
  /** Appends the next page. */
  loadMore(): Promise<void>;
}

/**
 * A list read a page at a time with "Load more". `fetchPage` (memoised: a new one reloads the
 * list from its first page) reads the page at a cursor, or the first at null. Only the answer to
 * the latest request counts: an older one that arrives late is dropped. With `key`, items
 * already listed are left out of the next page.
 */
export function useCursorPages<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  key?: (item: T) => string,
): CursorPages<T> {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ticket = useRef(0);
  const keyOf = useRef(key);
  keyOf.current = key;

  const load = useCallback(
    async (more: string | null) => {
      const mine = ++ticket.current;
      setLoading(true);
      try {
        const page = await fetchPage(more);
        if (mine !== ticket.current) return;
        setItems((old) => {
          if (!more) return page.items;
          const k = keyOf.current;
          return [...old, ...(k ? page.items.filter((i) => !old.some((o) => k(o) === k(i))) : page.items)];
        });
        setCursor(page.next_cursor ?? null);
        setError(null);
      } catch (e) {
        if (mine === ticket.current) setError(friendlyMessage(e));
      } finally {
        if (mine === ticket.current) setLoading(false);
      }
    },
    [fetchPage],
  );

  useEffect(() => {
    void load(null);
  }, [load]);

  const reload = useCallback(() => load(null), [load]);
  const loadMore = useCallback(() => load(cursor), [load, cursor]);

  return { items, setItems, cursor, loading, error, setError, reload, loadMore };
}
