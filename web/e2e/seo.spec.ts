import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { answerFinished, newUser, send, settled, shot, userMessages } from './support';

const SRT = `1
00:00:00,000 --> 00:00:12,000
Welcome! Today we bake sourdough bread.

2
00:00:12,000 --> 00:00:41,500
First, the starter: flour and water.

3
00:00:41,500 --> 00:01:30,000
Feed it every day for a week.

4
00:01:30,000 --> 00:03:00,000
Now we bake the loaf in a hot Dutch oven.
`;

test('a creator turns a chat message and an SRT transcript into a checked, saved and exported YouTube package', async ({ page }) => {
  await newUser(page, 'creator');

  // A chat message goes to the studio as the new project's topic.
  await send(page, 'Sourdough bread for beginners');
  await answerFinished(page);
  await userMessages(page).first().getByRole('button', { name: 'Send to SEO studio' }).click();
  await expect(page).toHaveURL(/\/seo\/new$/);
  await expect(page.getByLabel('Topic')).toHaveValue('Sourdough bread for beginners');

  await page.getByLabel('Primary keyword').fill('sourdough bread');
  await page.getByLabel('Duration').fill('3:00');
  await page.getByLabel('Transcript file').setInputFiles({ name: 'sourdough.srt', mimeType: 'text/plain', buffer: Buffer.from(SRT) });
  await expect(page.getByLabel('Transcript', { exact: true })).toHaveValue(/00:00:41,500 --> 00:01:30,000/);
  await shot(page, 'seo-new-project');
  await page.getByRole('button', { name: 'Create project' }).click();
  await expect(page).toHaveURL(/\/seo\/[0-9a-f-]{36}$/);

  // Generation with the scripted model: progress, then the package of version 1.
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByText('Package — version 1')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole('radiogroup', { name: 'Title ideas' }).getByRole('radio')).toHaveCount(5);
  const title = page.getByLabel('Title', { exact: true });
  await expect(title).not.toHaveValue('');
  await expect(page.getByLabel(/^Score \d+ of 100$/).first()).toBeVisible();
  await shot(page, 'seo-generated');

  // Over 100 characters: the counter turns red, the server's check says why, Save is off.
  const save = page.getByRole('button', { name: 'Save as new version' });
  await title.fill(`Sourdough bread for beginners ${'really '.repeat(12)}easy`);
  await expect(page.getByLabel('Title length')).toHaveText(/^1\d\d \/ 100 characters$/);
  await expect(page.locator('#seo-title-problems li[data-severity="error"]')).toBeVisible();
  await expect(save).toBeDisabled();
  await shot(page, 'seo-title-too-long');

  // Fixed: the error goes, and the edit is saved as version 2.
  await title.fill('Sourdough bread for beginners: your first loaf');
  await expect(page.locator('#seo-title-problems li[data-severity="error"]')).toHaveCount(0);
  await expect(save).toBeEnabled();
  await save.click();
  await expect(page.getByText('Package — version 2')).toBeVisible();
  await expect(page.getByLabel('Title', { exact: true })).toHaveValue('Sourdough bread for beginners: your first loaf');

  // The two versions compared.
  await page.getByLabel('Select version 1').check();
  await page.getByLabel('Select version 2').check();
  await page.getByRole('button', { name: 'Compare selected' }).click();
  const diff = page.getByRole('dialog').filter({ hasText: 'Version 1 → version 2' });
  await expect(diff.getByLabel('Title change')).toContainText('+ Sourdough bread for beginners: your first loaf');
  await settled(page);
  await shot(page, 'seo-diff');
  await diff.getByRole('button', { name: 'Close' }).click();
  await expect(diff).toBeHidden();

  // On YouTube: this server has no OAuth client, so connecting is explained, not offered.
  await expect(page.getByText(/Connecting a channel is not set up on this server/)).toBeVisible();
  await expect(page.getByRole('button', { name: 'Connect', exact: true })).toHaveCount(0);

  // The plain-text export, downloaded.
  const downloading = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download text' }).click();
  const file = await downloading;
  expect(file.suggestedFilename()).toMatch(/^seo-.*\.txt$/);
  const text = readFileSync((await file.path())!, 'utf8');
  expect(text).toContain('Sourdough bread for beginners: your first loaf');
  expect(text).toContain('0:00 Introduction');

  // The list and the dashboard.
  await page.getByRole('navigation', { name: 'SEO studio sections' }).getByRole('link', { name: 'Projects' }).click();
  await expect(page.getByRole('link', { name: 'Sourdough bread for beginners' })).toBeVisible();
  await expect(page.getByLabel(/^Score \d+ of 100$/)).toBeVisible();
  await shot(page, 'seo-projects');
  await page.getByRole('row', { name: /Sourdough bread for beginners/ }).getByRole('checkbox').check();
  const csvDownload = page.waitForEvent('download');
  await page.getByRole('button', { name: /Export CSV \(1\)/ }).click();
  const csv = await csvDownload;
  expect(csv.suggestedFilename()).toMatch(/\.csv$/);
  expect(readFileSync((await csv.path())!, 'utf8')).toContain('Sourdough bread for beginners: your first loaf');
  await page.getByRole('navigation', { name: 'SEO studio sections' }).getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByText('Scores over time')).toBeVisible();
  await expect(page.locator('.ant-statistic').filter({ hasText: 'Projects' })).toContainText('1');
  await expect(page.getByRole('img', { name: /Scores of the 2 versions/ })).toBeVisible();
  // Without YouTube access: the quota card says so and when it resets; research asks for a key.
  await expect(page.getByText('(midnight Pacific time)')).toBeVisible();
  await expect(page.getByText(/No YouTube API key is configured/)).toBeVisible();
  await shot(page, 'seo-dashboard');
  await page.getByRole('link', { name: 'Research a keyword' }).click();
  await expect(page).toHaveURL(/\/seo\/research$/);
  await page.getByLabel('Keyword', { exact: true }).fill('sourdough bread');
  await page.getByRole('button', { name: 'Research' }).click();
  await expect(page.getByRole('region', { name: 'Keyword research' }).getByRole('alert')).toHaveText('Keyword research needs a YouTube API key (YOUTUBE_API_KEY).');
  await shot(page, 'seo-research-no-key');
});
