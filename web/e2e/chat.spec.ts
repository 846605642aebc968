import { expect, test } from '@playwright/test';
import {
  ANSWER_END,
  answerFinished,
  assistantMessages,
  newUser,
  send,
  settled,
  shot,
  signUp,
  uniqueEmail,
  userMessages,
} from './support';

test('a new user signs up, chats, stops, regenerates, edits, switches branches and searches', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/signin$/);
  await shot(page, 'sign-in');

  await signUp(page, 'Ada', uniqueEmail('ada'));
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Model' })).toBeVisible();
  await shot(page, 'chat-new');

  // The answer streams: part of it is on the screen while the stop button still shows.
  await send(page, 'What is Confab?');
  await expect(page).toHaveURL(/\/c\/[0-9a-f-]{36}$/);
  const first = assistantMessages(page).first();
  await expect(first).toContainText('You said: What is Confab?');
  await expect(page.getByRole('button', { name: 'Stop generating' })).toBeVisible();
  await expect(first).not.toContainText(ANSWER_END);
  await shot(page, 'chat-streaming');
  await answerFinished(page);
  // Rendered as markdown, with a highlighted code block and its copy button.
  await expect(first.locator('strong', { hasText: 'bold words' })).toBeVisible();
  await expect(first.locator('li', { hasText: 'second item' })).toBeVisible();
  await expect(first.locator('pre code')).toContainText('println!');
  await expect(first.getByRole('button', { name: 'Copy code' })).toBeVisible();
  await shot(page, 'chat-answer');

  // Stop: the answer ends where it was stopped and says so.
  await send(page, 'Tell me more');
  const second = assistantMessages(page).nth(1);
  await expect(second).toContainText('word by word');
  await page.getByRole('button', { name: 'Stop generating' }).click();
  await expect(second).toContainText('stopped');
  await expect(second).not.toContainText(ANSWER_END);
  await expect(page.getByRole('button', { name: 'Send message' })).toBeVisible();

  // Regenerate: a second answer, shown as branch 2/2; the first one is a click away.
  await second.getByRole('button', { name: 'Regenerate answer' }).click();
  await answerFinished(page);
  const regenerated = assistantMessages(page).nth(1);
  await expect(regenerated.getByLabel('Branches')).toContainText('2/2');
  await expect(regenerated).not.toContainText('stopped');
  await regenerated.getByRole('button', { name: 'Previous branch' }).click();
  await expect(assistantMessages(page).nth(1).getByLabel('Branches')).toContainText('1/2');
  await expect(assistantMessages(page).nth(1)).toContainText('stopped');

  // Edit the question: a new branch of the conversation with its own answer.
  const question = userMessages(page).nth(1);
  await question.getByRole('button', { name: 'Edit message' }).click();
  const editor = page.getByRole('textbox', { name: 'Edit message' });
  await editor.fill('Tell me less');
  await editor.press('Enter');
  await expect(userMessages(page).nth(1)).toContainText('Tell me less');
  await expect(userMessages(page).nth(1).getByLabel('Branches')).toContainText('2/2');
  await answerFinished(page);
  await expect(assistantMessages(page).nth(1)).toContainText('You said: Tell me less.');
  await userMessages(page).nth(1).getByRole('button', { name: 'Previous branch' }).click();
  await expect(userMessages(page).nth(1)).toContainText('Tell me more');
  await expect(userMessages(page).nth(1).getByLabel('Branches')).toContainText('1/2');
  await page.getByRole('button', { name: 'Next branch' }).first().click();
  await expect(userMessages(page).nth(1)).toContainText('Tell me less');

  // Search finds the conversation by a word of its messages, highlighted, and opens it.
  const url = page.url();
  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.getByRole('button', { name: 'Search conversations' }).click();
  await page.getByRole('searchbox', { name: 'Search' }).fill('Confab');
  const results = page.getByLabel('Search results');
  await expect(results.locator('mark').first()).toHaveText(/confab/i);
  await shot(page, 'search');
  await results.locator('mark').first().click();
  await expect(page).toHaveURL(url);
  await expect(userMessages(page).first()).toContainText('What is Confab?');
});

test('a reload in the middle of an answer re-attaches and the answer finishes', async ({ page }) => {
  await newUser(page, 'reloader');
  await send(page, 'Keep going after a reload');
  await expect(page).toHaveURL(/\/c\//);
  await expect(assistantMessages(page).first()).toContainText('word by word');
  await expect(assistantMessages(page).first()).not.toContainText(ANSWER_END);
  await page.reload();
  const answer = assistantMessages(page).first();
  await expect(answer).toContainText('You said: Keep going after a reload.');
  await expect(answer).toContainText(ANSWER_END);
  await expect(answer).toHaveAttribute('data-status', 'complete');
  await expect(answer).not.toContainText('interrupted');
  // Once, not twice: the re-attached stream did not append what was already there.
  await expect(answer.getByText('You said:')).toHaveCount(1);
});

test('settings: API keys are created, shown once, work, and stop working when revoked', async ({ page, request }) => {
  await newUser(page, 'keyholder');
  await page.getByRole('link', { name: 'Settings' }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await shot(page, 'settings');

  await page.getByLabel('Key name').fill('laptop script');
  await page.getByRole('checkbox', { name: 'inference' }).check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const shown = page.getByRole('textbox', { name: 'New API key' });
  await expect(shown).toHaveValue(/^cfk_/);
  const key = await shown.inputValue();
  await expect(page.getByRole('button', { name: 'Copy key' })).toBeVisible();
  await shot(page, 'api-key-created');

  const withKey = { headers: { authorization: `Bearer ${key}` } };
  expect((await request.get('/v1/models', withKey)).status()).toBe(200);

  await page.keyboard.press('Escape');
  await expect(shown).toBeHidden();
  const table = page.getByRole('table');
  await expect(table).toContainText('laptop script');
  await expect(table).not.toContainText(key);
  await page.getByRole('button', { name: 'Revoke laptop script' }).click();
  await settled(page);
  await page.getByRole('button', { name: /^(Revoke|OK|Yes)$/ }).last().click();
  await expect(table).not.toContainText('laptop script');
  expect((await request.get('/v1/models', withKey)).status()).toBe(401);
});

test('another tab of the same user follows the conversation live', async ({ browser }) => {
  const context = await browser.newContext();
  const first = await context.newPage();
  await newUser(first, 'twotabs');
  await send(first, 'Start a conversation');
  await answerFinished(first);
  const url = first.url();

  // The second tab shares the session (the refresh cookie) and opens the same conversation.
  const second = await context.newPage();
  await second.goto(url);
  await expect(userMessages(second).first()).toContainText('Start a conversation');

  await send(first, 'Seen from the other tab');
  // The other tab shows that the assistant is answering, then the answer.
  await expect(second.getByRole('status', { name: 'Assistant is typing' })).toBeVisible();
  await expect(userMessages(second).nth(1)).toContainText('Seen from the other tab');
  await expect(assistantMessages(second).nth(1)).toContainText(ANSWER_END);
  await expect(second.getByRole('status', { name: 'Assistant is typing' })).toHaveCount(0);

  // A conversation started in one tab appears in the other's sidebar.
  await first.getByRole('button', { name: 'New chat' }).click();
  await send(first, 'A brand new topic');
  await expect(second.getByRole('navigation', { name: 'Conversations' })).toContainText('A brand new topic');
  await context.close();
});

test('at phone width the sidebar is a drawer and chatting works', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await newUser(page, 'phone');
  await expect(page.getByRole('navigation', { name: 'Conversations' })).toBeHidden();
  await send(page, 'Hello from a phone');
  await answerFinished(page);
  await shot(page, 'phone-chat');
  await page.getByRole('button', { name: 'Open sidebar' }).click();
  const sidebar = page.getByRole('navigation', { name: 'Conversations' });
  await expect(sidebar).toBeVisible();
  await expect(sidebar).toContainText('Hello from a phone');
  await shot(page, 'phone-sidebar');
  await context.close();
});

test('keyboard: Shift+Enter adds a line, Enter sends, Esc stops; the dark theme stays after a reload', async ({ page }) => {
  await newUser(page, 'keys');
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill('First line');
  await box.press('Shift+Enter');
  await box.pressSequentially('second line');
  await expect(box).toHaveValue('First line\nsecond line');
  await box.press('Enter');
  await expect(userMessages(page).first()).toContainText('second line');
  await expect(assistantMessages(page).first()).toContainText('word by word');
  await page.keyboard.press('Escape');
  await expect(assistantMessages(page).first()).toContainText('stopped');
  await expect(assistantMessages(page).first()).not.toContainText(ANSWER_END);

  await page.getByRole('link', { name: 'Settings' }).click();
  // A button-style radio: its input is hidden behind the label.
  await page.locator('label', { hasText: 'Dark' }).click();
  await expect(page.getByRole('radio', { name: 'Dark' })).toBeChecked();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.goto('/');
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.getByRole('navigation', { name: 'Conversations' }).getByRole('link', { name: /^First line/ }).click();
  await expect(assistantMessages(page).first()).toContainText('stopped');
  await shot(page, 'chat-dark');
});

test('a conversation exported from one account imports into another, branches and all', async ({ browser }, testInfo) => {
  const first = await browser.newContext();
  const page = await first.newPage();
  await newUser(page, 'exporter');
  await send(page, 'Remember the mountains');
  await answerFinished(page);
  await assistantMessages(page).first().getByRole('button', { name: 'Regenerate answer' }).click();
  await answerFinished(page);
  const title = 'Remember the mountains';
  const nav = page.getByRole('navigation', { name: 'Conversations' });
  await nav.getByRole('button', { name: `Actions for ${title}` }).click();
  const downloading = page.waitForEvent('download');
  await page.getByRole('menuitem', { name: 'Export as JSON' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toMatch(/^conversation-.*\.json$/);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  await first.close();

  const second = await browser.newContext();
  const other = await second.newPage();
  await newUser(other, 'importer');
  await other.getByRole('link', { name: 'Settings' }).click();
  await other.getByLabel('File to import').setInputFiles(file);
  const result = other.getByRole('status').filter({ hasText: 'Imported 1 conversation with 3 messages' });
  await expect(result).toBeVisible();
  await shot(other, 'import-done');
  await result.getByRole('link', { name: title }).click();
  await expect(userMessages(other).first()).toContainText(title);
  await expect(assistantMessages(other).first().getByLabel('Branches')).toContainText('2/2');
  await expect(assistantMessages(other).first()).toContainText(ANSWER_END);
  await second.close();
});
