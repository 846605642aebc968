import { ConfigProvider, App as AntApp, theme as antTheme } from 'antd';
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';

export type ThemeMode = 'light' | 'dark' | 'system';
const KEY = 'confab.theme';

function stored(): ThemeMode {
  try {
    const v = localStorage.getItem(KEY);
    if (v === 'light' || v === 'dark' || v === 'system') return v;
  } catch {
    // storage unavailable
  }
  return 'system';
}

function systemDark(): boolean {
  return typeof window !== 'undefined' && !!window.matchMedia?.('(prefers-color-scheme: dark)').matches;
}

interface ThemeValue {
  mode: ThemeMode;
  dark: boolean;
  setMode(mode: ThemeMode): void;
}

const ThemeContext = createContext<ThemeValue>({ mode: 'system', dark: false, setMode: () => {} });

export function ThemeProvider({ children }: { children: ReactNode }) {
  const [mode, setModeState] = useState<ThemeMode>(stored);
  const [sysDark, setSysDark] = useState(systemDark);

  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return;
    const on = (e: MediaQueryListEvent) => setSysDark(e.matches);
    mq.addEventListener?.('change', on);
    return () => mq.removeEventListener?.('change', on);
  }, []);

  const dark = mode === 'dark' || (mode === 'system' && sysDark);

  useEffect(() => {
    document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  }, [dark]);

  const value = useMemo<ThemeValue>(
    () => ({
      mode,
      dark,
      setMode(m) {
        setModeState(m);
        try {
          localStorage.setItem(KEY, m);
        } catch {
          // ignore
        }
      },
    }),
    [mode, dark],
  );

  return (
    <ThemeContext.Provider value={value}>
      <ConfigProvider theme={{ algorithm: dark ? antTheme.darkAlgorithm : antTheme.defaultAlgorithm }}>
        <AntApp>{children}</AntApp>
      </ConfigProvider>
    </ThemeContext.Provider>
  );
}

export const useTheme = () => useContext(ThemeContext);
