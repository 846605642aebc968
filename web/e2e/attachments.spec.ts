import { expect, test } from '@playwright/test';
import { PDF, PNG } from './fixtures';
import { PASSWORD, answerFinished, apiToken, newUser, send, settled, shot, userMessages } from './support';

test('a user attaches an image and a PDF in the composer and sends them with a question', async ({ page, browser, request }) => {
  const email = await newUser(page, 'attacher');

  // Both chosen with the attach button; each is uploaded at once and waits for its scan (with
  // clamd) or is stored unscanned: either way it becomes ready.
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Attach files' }).click();
  await (await chooser).setFiles([
    { name: 'checkers.png', mimeType: 'image/png', buffer: PNG },
    { name: 'notes.pdf', mimeType: 'application/pdf', buffer: PDF },
  ]);
  const chips = page.getByRole('list', { name: 'Attachments' });
  await expect(chips.getByRole('listitem', { name: 'checkers.png, ready' })).toBeVisible({ timeout: 60_000 });
  await expect(chips.getByRole('listitem', { name: 'notes.pdf, ready' })).toBeVisible({ timeout: 60_000 });
  await expect(chips.getByRole('listitem', { name: 'notes.pdf, ready' })).toContainText(`${PDF.length} bytes`);
  await expect(page.getByRole('button', { name: 'Send message' })).toBeEnabled();
  await settled(page);
  await shot(page, 'chat-attachments-composer');

  const posted = page.waitForRequest((r) => r.method() === 'POST' && /\/api\/v1\/conversations\/[^/]+\/messages$/.test(new URL(r.url()).pathname));
  await send(page, 'What is in these files?');
  const body = (await posted).postDataJSON() as { content: string; attachments?: string[] };
  expect(body.content).toBe('What is in these files?');
  expect(body.attachments).toHaveLength(2);
  await expect(chips).toHaveCount(0);

  // The question shows the image as a thumbnail (read with the token, as a blob URL) and the
  // PDF as a chip that downloads it.
  const question = userMessages(page).first();
  await expect(question).toContainText('What is in these files?');
  const thumbnail = question.getByRole('img', { name: 'checkers.png' });
  await expect(thumbnail).toBeVisible({ timeout: 30_000 });
  await expect(thumbnail).toHaveAttribute('src', /^blob:/);
  await expect
    .poll(() => thumbnail.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), { timeout: 15_000 })
    .toBe(true);
  const pdf = question.getByRole('button', { name: 'Download notes.pdf' });
  await expect(pdf).toBeVisible();
  await expect(pdf).toContainText(`${PDF.length} bytes`);

  // The answer completes (what it says of the files is the model's business).
  await answerFinished(page);
  // Still there once the page has the conversation as the server stored it.
  await page.reload();
  await expect(userMessages(page).first().getByRole('img', { name: 'checkers.png' })).toBeVisible({ timeout: 30_000 });
  await expect(userMessages(page).first().getByRole('button', { name: 'Download notes.pdf' })).toBeVisible();
  await settled(page);
  await shot(page, 'chat-attachments-message');

  // The thumbnail opens the image in the preview dialog.
  await userMessages(page).first().getByRole('button', { name: 'Open checkers.png' }).click();
  const dialog = page.getByRole('dialog').filter({ hasText: 'checkers.png' });
  await expect(dialog.getByRole('img', { name: 'checkers.png' })).toBeVisible();
  await dialog.getByRole('button', { name: 'Close' }).first().click();
  await expect(dialog).toBeHidden();

  // A share link of the conversation shows the image (through the share's own route) and names
  // the PDF, to someone who is not signed in.
  const conversation = new URL(page.url()).pathname.split('/').pop() ?? '';
  const token = await apiToken(request, email, PASSWORD);
  const shared = await request.post(`/api/v1/conversations/${conversation}/shares`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(shared.status(), await shared.text()).toBe(201);
  const { url } = (await shared.json()) as { url: string };
  const stranger = await browser.newContext();
  const reader = await stranger.newPage();
  await reader.goto(new URL(url, page.url()).pathname);
  const image = reader.getByRole('img', { name: 'checkers.png' });
  await expect(image).toBeVisible();
  await expect
    .poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), { timeout: 15_000 })
    .toBe(true);
  await expect(reader.getByRole('listitem').filter({ hasText: 'notes.pdf' })).toBeVisible();
  await stranger.close();
});
