import { Select } from 'antd';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { query } from '../api/query';
import type { Page, User } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { listAllUsers } from './api';

interface DirectoryValue {
  byId: Map<string, User>;
  /** Loads every user once (the first screen that needs names asks). */
  ensure(): void;
  /** Loads them again (after a change). */
  reload(): Promise<void>;
  loaded: boolean;
  error: unknown;
}

const DirectoryContext = createContext<DirectoryValue | null>(null);

/** Users by id, shared by the admin screens that show ids (usage, audit, jobs, groups). */
export function UserDirectoryProvider({ children }: { children: ReactNode }) {
  const { client } = useAuth();
  const [byId, setById] = useState<Map<string, User>>(new Map());
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);

  const reload = useCallback(async () => {
    try {
      const users = await listAllUsers(client);
      setById(new Map(users.map((u) => [u.id, u])));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setLoaded(true);
    }
  }, [client]);

  const ensure = useCallback(() => {
    if (started.current) return;
    started.current = true;
    void reload();
  }, [reload]);

  const value = useMemo(() => ({ byId, ensure, reload, loaded, error }), [byId, ensure, reload, loaded, error]);
  return <DirectoryContext.Provider value={value}>{children}</DirectoryContext.Provider>;
}

/** The users by id; starts loading them on first use. */
export function useUserDirectory(): DirectoryValue {
  const value = useContext(DirectoryContext);
  if (!value) throw new Error('useUserDirectory outside UserDirectoryProvider');
  const { ensure } = value;
  useEffect(() => ensure(), [ensure]);
  return value;
}

/** How to name a user id: the email when known, else the id itself. */
export function userLabel(byId: Map<string, User>, id: string | null | undefined): string {
  if (!id) return '—';
  return byId.get(id)?.email ?? id;
}

export interface UserPickerProps {
  value?: string;
  onChange?(id: string | undefined): void;
  'aria-label': string;
  placeholder?: string;
  /** Ids not to offer (e.g. a group's members). */
  exclude?: string[];
  style?: React.CSSProperties;
  id?: string;
  disabled?: boolean;
}

/** Picks a user by searching email or name on the server. */
export function UserPicker({ value, onChange, exclude, placeholder, style, id, disabled, ...rest }: UserPickerProps) {
  const { client } = useAuth();
  const { byId } = useUserDirectory();
  const [results, setResults] = useState<User[]>([]);
  const [searching, setSearching] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(0);

  const search = useCallback(
    (text: string) => {
      if (timer.current) clearTimeout(timer.current);
      timer.current = setTimeout(async () => {
        const ticket = ++latest.current;
        setSearching(true);
        try {
          const page = await client.get<Page<User>>(`/api/v1/auth/users${query({ q: text.trim(), limit: 20 })}`);
          if (ticket === latest.current) setResults(page.items);
        } catch {
          if (ticket === latest.current) setResults([]);
        } finally {
          if (ticket === latest.current) setSearching(false);
        }
      }, 250);
    },
    [client],
  );
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);

  const options = useMemo(() => {
    const seen = new Set<string>();
    const list: { value: string; label: string }[] = [];
    const add = (u: User) => {
      if (seen.has(u.id) || exclude?.includes(u.id)) return;
      seen.add(u.id);
      list.push({ value: u.id, label: u.name ? `${u.email} (${u.name})` : u.email });
    };
    const chosen = value ? byId.get(value) : undefined;
    if (chosen) add(chosen);
    results.forEach(add);
    if (value && !seen.has(value)) list.unshift({ value, label: value });
    return list;
  }, [results, byId, value, exclude]);

  return (
    <Select
      id={id}
      aria-label={rest['aria-label']}
      showSearch={{ filterOption: false, onSearch: search }}
      allowClear
      disabled={disabled}
      value={value}
      placeholder={placeholder ?? 'Search by email or name'}
      onChange={(v: string | undefined) => onChange?.(v ?? undefined)}
      onOpenChange={(open) => {
        if (open && results.length === 0) search('');
      }}
      loading={searching}
      notFoundContent={searching ? 'Searching…' : 'No matching user'}
      options={options}
      style={{ minWidth: 220, ...style }}
    />
  );
}
