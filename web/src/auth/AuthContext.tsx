import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, type ApiClient } from '../api/client';
import type { RegisterResponse, TokenResponse, User } from '../api/types';

export type SessionState =
  | { status: 'loading' }
  | { status: 'signed-out' }
  | { status: 'signed-in'; user: User };

export interface AuthValue {
  session: SessionState;
  user: User | null;
  signIn(email: string, password: string): Promise<User>;
  /** Returns the new user; signed in unless it waits for approval. */
  signUp(email: string, password: string, name: string): Promise<User>;
  /** Finish an administrator's password reset: temporary password → new one, then signed in. */
  completeReset(email: string, password: string, newPassword: string): Promise<User>;
  signOut(): Promise<void>;
  setUser(user: User): void;
  client: ApiClient;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children, client = api }: { children: ReactNode; client?: ApiClient }) {
  const [session, setSession] = useState<SessionState>({ status: 'loading' });

  useEffect(() => {
    const off = client.onSession((user) =>
      setSession(user ? { status: 'signed-in', user } : { status: 'signed-out' }),
    );
    // Restore the session from the refresh cookie, so a reload keeps you signed in.
    if (client.token === null) {
      client
        .refresh()
        .then((t) => {
          if (!t) setSession({ status: 'signed-out' });
        })
        .catch(() => setSession({ status: 'signed-out' }));
    }
    return () => {
      off();
    };
  }, [client]);

  const signIn = useCallback(
    async (email: string, password: string) => {
      const tokens = await client.post<TokenResponse>('/api/v1/auth/login', { email, password });
      client.setSession(tokens);
      return tokens.user;
    },
    [client],
  );

  const signUp = useCallback(
    async (email: string, password: string, name: string) => {
      const r = await client.post<RegisterResponse>('/api/v1/auth/register', { email, password, name });
      if (r.access_token && typeof r.expires_in === 'number') {
        client.setSession({ access_token: r.access_token, expires_in: r.expires_in, user: r.user });
      }
      return r.user;
    },
    [client],
  );

  const completeReset = useCallback(
    async (email: string, password: string, newPassword: string) => {
      const tokens = await client.post<TokenResponse>('/api/v1/auth/password/reset', {
        email,
        password,
        new_password: newPassword,
      });
      client.setSession(tokens);
      return tokens.user;
    },
    [client],
  );

  const signOut = useCallback(async () => {
    await client.logout();
    setSession({ status: 'signed-out' });
  }, [client]);

  const setUser = useCallback((user: User) => setSession({ status: 'signed-in', user }), []);

  const value = useMemo<AuthValue>(
    () => ({
      session,
      user: session.status === 'signed-in' ? session.user : null,
      signIn,
      signUp,
      completeReset,
      signOut,
      setUser,
      client,
    }),
    [session, signIn, signUp, completeReset, signOut, setUser, client],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error('useAuth outside AuthProvider');
  return value;
}
