import { expect, test, type Locator, type Page } from '@playwright/test';
import { PDF, PNG } from './fixtures';
import { newUser, settled, shot } from './support';

/** The EICAR test string (no virus: every scanner reports it), in pieces so this file is not taken for it. */
const EICAR = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-', 'TEST-FILE!$H+H*'].join('');

/** Set (scripts/lib/clamd.sh's start_clamd) when the server scans uploads with clamd (e2e/serve.sh). */
const scanning = Boolean(process.env.TEST_CLAMD_ADDRESS);

/** The files table's row of a file. */
function fileRow(page: Page, name: string): Locator {
  return page.locator('.ant-table-row').filter({ has: page.getByText(name, { exact: true }) });
}

/** Chooses files with the upload area's file chooser. */
async function upload(page: Page, files: { name: string; mimeType: string; buffer: Buffer }[]): Promise<void> {
  const chooser = page.waitForEvent('filechooser');
  await page.getByText('Click or drop files here to upload them').click();
  await (await chooser).setFiles(files);
}

test('a user uploads an image and a PDF, sees their thumbnail and state, and shares the PDF by link', async ({ page, browser }) => {
  await newUser(page, 'filer');
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await expect(page).toHaveURL(/\/files$/);
  await expect(page.getByRole('heading', { name: 'My files' })).toBeVisible();
  await expect(page.getByText('0 bytes of', { exact: false })).toBeVisible();
  await expect(page.getByText('No files yet: upload one above.')).toBeVisible();
  // Without clamd the page says files are not scanned; with it, it says nothing.
  await expect(page.getByText('Files are not virus-scanned on this server')).toHaveCount(scanning ? 0 : 1);

  // The thumbnail is read with the session's token from the thumbnail route.
  const thumbnailRead = page.waitForResponse(
    (r) => /\/api\/v1\/files\/[0-9a-f-]{36}\/thumbnail$/.test(new URL(r.url()).pathname) && r.status() === 200,
    { timeout: 60_000 },
  );
  await upload(page, [
    { name: 'checkers.png', mimeType: 'image/png', buffer: PNG },
    { name: 'notes.pdf', mimeType: 'application/pdf', buffer: PDF },
  ]);
  await expect(page.getByText('checkers.png was uploaded.')).toBeVisible();
  await expect(page.getByText('notes.pdf was uploaded.')).toBeVisible();

  const image = fileRow(page, 'checkers.png');
  const pdf = fileRow(page, 'notes.pdf');
  await expect(image).toContainText('93 bytes');
  await expect(pdf).toContainText(`${PDF.length} bytes`);
  await expect(pdf).toContainText('PDF');
  // Scanned by clamd: clean once the scan ran; otherwise stored unscanned.
  const state = scanning ? 'clean' : 'unscanned';
  await expect(image.locator('.ant-tag')).toHaveText(state, { timeout: 60_000 });
  await expect(pdf.locator('.ant-tag')).toHaveText(state, { timeout: 60_000 });

  // The thumbnail appears once the server made it: an image from a blob URL, loaded.
  expect((await thumbnailRead).headers()['content-type']).toMatch(/^image\//);
  const thumbnail = image.getByRole('img', { name: 'Thumbnail of checkers.png' });
  await expect(thumbnail).toBeVisible({ timeout: 60_000 });
  await expect(thumbnail).toHaveAttribute('src', /^blob:/);
  await expect
    .poll(() => thumbnail.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), { timeout: 15_000 })
    .toBe(true);
  await expect(image).toContainText('Image · 16×16');
  await page.locator('#files-list-title').evaluate((title) => title.scrollIntoView());
  await settled(page);
  await shot(page, 'files');

  // A share link for the PDF, shown once as an absolute address.
  await pdf.getByRole('button', { name: 'Share notes.pdf' }).click();
  const dialog = page.getByRole('dialog').filter({ hasText: 'Share notes.pdf' });
  await expect(dialog).toBeVisible();
  await settled(page);
  await dialog.getByRole('button', { name: /Create link/ }).click();
  const linkBox = dialog.getByRole('textbox', { name: 'Share link' });
  await expect(linkBox).toHaveValue(/^http:\/\/127\.0\.0\.1:\d+\/f\/[^/]+$/);
  const link = await linkBox.inputValue();
  await expect(dialog.getByRole('table')).toContainText('active');
  await shot(page, 'files-share');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toBeHidden();

  // Anyone with the link reads the PDF, without signing in.
  const stranger = await browser.newContext();
  try {
    const opened = await (await stranger.newPage()).goto(link);
    expect(opened?.status()).toBe(200);
    expect(opened?.headers()['content-type']).toMatch(/^application\/pdf/);
    // The same address read as bytes: the PDF as uploaded.
    const response = await stranger.request.get(link);
    expect(response.status()).toBe(200);
    expect(response.headers()['content-type']).toMatch(/^application\/pdf/);
    expect(Buffer.compare(await response.body(), PDF)).toBe(0);
    // The files themselves are not theirs to list: that needs a session.
    expect((await stranger.request.get('/api/v1/files')).status()).toBe(401);
  } finally {
    await stranger.close();
  }
});

test('an upload with a virus in it is quarantined with the threat clamd named', async ({ page }) => {
  test.skip(!scanning, 'no clamd: set TEST_CLAMD_ADDRESS (source scripts/lib/clamd.sh && start_clamd)');
  await newUser(page, 'careless');
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'My files' })).toBeVisible();

  await upload(page, [{ name: 'eicar.txt', mimeType: 'text/plain', buffer: Buffer.from(EICAR) }]);
  await expect(page.getByText('eicar.txt was uploaded.')).toBeVisible();
  const row = fileRow(page, 'eicar.txt');
  await expect(row.locator('.ant-tag')).toHaveText(/^infected: \S*Eicar\S* · quarantined$/i, { timeout: 60_000 });
  // Quarantined: it cannot be read or shared.
  await expect(row.getByRole('button', { name: 'Download eicar.txt' })).toBeDisabled();
  await expect(row.getByRole('button', { name: 'Share eicar.txt' })).toBeDisabled();
  await expect(row.getByRole('button', { name: 'Preview eicar.txt' })).toBeDisabled();
  await settled(page);
  await shot(page, 'files-infected');
});
