import { defineConfig } from '@playwright/test';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const port = Number(process.env.E2E_PORT ?? 18_765);
process.env.E2E_PORT = String(port);

/**
 * End-to-end tests: Debian's Chromium (no browser download) driven by Playwright against a
 * real `confab serve` (e2e/serve.sh) with a scripted model. Screenshots of the main screens
 * go to target/e2e/screenshots; failures leave traces and screenshots in target/e2e/results.
 */
export default defineConfig({
  testDir: here,
  outputDir: path.join(root, 'target/e2e/results'),
  // The tests share one server whose runtime settings one of them changes: one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      // Root in CI containers has no user namespaces for Chromium's sandbox.
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    actionTimeout: 15_000,
  },
  webServer: {
    command: path.join(here, 'serve.sh'),
    url: `http://127.0.0.1:${port}/readyz`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
