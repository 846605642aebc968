import '@testing-library/jest-dom/vitest';
import { cleanup, configure } from '@testing-library/react';
import { afterEach } from 'vitest';
import { mediaQueryList } from './helpers';

afterEach(() => cleanup());

// `findBy…` and `waitFor` give up after 1 s by default. On a 2-core CI machine that also runs
// the Rust suites, a screen that renders antd, makes two requests and shows their outcome can
// take longer than that (seen: the new-chat-from-preset flow); waiting longer costs nothing
// when the element comes at once, and a real failure still fails.
configure({ asyncUtilTimeout: 5_000 });

// jsdom lacks these; antd's responsive helpers call them.
if (!window.matchMedia) {
  Object.defineProperty(window, 'matchMedia', {
    writable: true,
    value: (query: string) => mediaQueryList(query, false),
  });
}
if (!('ResizeObserver' in window)) {
  class RO {
    observe() {}
    unobserve() {}
    disconnect() {}
  }
  (window as unknown as { ResizeObserver: unknown }).ResizeObserver = RO;
}
