import { expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const screenshotDir = path.join(root, 'target/e2e/screenshots');

export const ADMIN = {
  email: process.env.E2E_ADMIN_EMAIL ?? 'admin@example.com',
  password: process.env.E2E_ADMIN_PASSWORD ?? 'admin-password-1',
};
export const PASSWORD = 'correct-horse-battery-42';
/** The scripted model's answer ends with this. */
export const ANSWER_END = 'That is the whole answer.';

let counter = 0;
/** An email no other test (or earlier run against the same server) has used. */
export function uniqueEmail(who: string): string {
  counter += 1;
  return `${who}-${Date.now().toString(36)}-${counter}@example.com`;
}

/** Saves a screenshot of the page as an artifact of the run. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: false });
}

export async function signUp(page: Page, name: string, email: string, password = PASSWORD): Promise<void> {
  await page.goto('/signup');
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
}

export async function signIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto('/signin');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Signs up a new user and waits for the chat screen. */
export async function newUser(page: Page, who: string): Promise<string> {
  const email = uniqueEmail(who);
  await signUp(page, who, email);
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeVisible();
  return email;
}

export function assistantMessages(page: Page): Locator {
  return page.getByRole('article', { name: 'Assistant message' });
}

export function userMessages(page: Page): Locator {
  return page.getByRole('article', { name: 'Your message' });
}

export async function send(page: Page, text: string): Promise<void> {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** Waits until the last answer is complete. */
export async function answerFinished(page: Page): Promise<Locator> {
  const last = assistantMessages(page).last();
  await expect(last).toContainText(ANSWER_END);
  await expect(page.getByRole('button', { name: 'Stop generating' })).toHaveCount(0);
  return last;
}

/** A session token for API calls made by the test itself (not through the UI). */
export async function apiToken(request: APIRequestContext, email: string, password: string): Promise<string> {
  const response = await request.post('/api/v1/auth/login', { data: { email, password } });
  expect(response.status(), await response.text()).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

/**
 * Waits until the page stands still: no CSS animation or transition running (a click on a
 * dialog that is still zooming in can land beside its moving button). It asks the browser
 * (`document.getAnimations()`) rather than reading antd's motion classes: on a loaded machine
 * a class can stay on an element whose animation has long ended, when its end event was missed.
 */
export async function settled(page: Page): Promise<void> {
  // Endless animations (a spinner, the typing dots) never end and move nothing a click aims at.
  await page.waitForFunction(
    () =>
      document
        .getAnimations()
        .every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity),
    undefined,
    { timeout: 15_000 },
  );
}

/** Confirms a dialog with the button named `button` once it stands still, and waits for it to go. */
export async function confirmIn(page: Page, button: string): Promise<void> {
  const dialog = page.getByRole('dialog').filter({ has: page.getByRole('button', { name: button }) });
  await expect(dialog).toBeVisible();
  await settled(page);
  await dialog.getByRole('button', { name: button }).click();
  await expect(dialog).toBeHidden();
}
