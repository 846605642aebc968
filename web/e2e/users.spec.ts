import { expect, test } from '@playwright/test';
import {
  ADMIN,
  PASSWORD,
  answerFinished,
  apiToken,
  assistantMessages,
  newUser,
  send,
  shot,
  signIn,
  signUp,
  uniqueEmail,
} from './support';

test("a second user sees none of the first user's conversations", async ({ browser }) => {
  const first = await browser.newContext();
  const alice = await first.newPage();
  await newUser(alice, 'alice');
  await send(alice, 'My secret is periwinkle');
  await answerFinished(alice);
  await expect(alice.getByRole('navigation', { name: 'Conversations' })).not.toContainText('No conversations yet');
  const aliceUrl = alice.url();

  const second = await browser.newContext();
  const bob = await second.newPage();
  await newUser(bob, 'bob');
  const sidebar = bob.getByRole('navigation', { name: 'Conversations' });
  await expect(sidebar).toContainText('No conversations yet');

  // Not by search…
  await bob.getByRole('button', { name: 'Search conversations' }).click();
  await bob.getByRole('searchbox', { name: 'Search' }).fill('periwinkle');
  await expect(bob.getByRole('dialog')).toContainText('Nothing found');
  await bob.keyboard.press('Escape');

  // …nor by opening the address of Alice's conversation.
  await bob.goto(new URL(aliceUrl).pathname);
  await expect(bob.getByRole('alert')).toBeVisible();
  await expect(assistantMessages(bob)).toHaveCount(0);
  await expect(bob.getByText('periwinkle')).toHaveCount(0);

  await first.close();
  await second.close();
});

test('with approval required, a new user waits until an admin approves them', async ({ browser, request }) => {
  const token = await apiToken(request, ADMIN.email, ADMIN.password);
  const auth = { authorization: `Bearer ${token}` };
  const settings = async (registration: string) => {
    const response = await request.patch('/api/v1/admin/settings', { headers: auth, data: { registration } });
    expect(response.status(), await response.text()).toBe(200);
  };
  await settings('approval');
  try {
    const userContext = await browser.newContext();
    const user = await userContext.newPage();
    const email = uniqueEmail('waiting');
    await signUp(user, 'Waiting Wendy', email);
    await expect(user.getByText('Waiting for approval')).toBeVisible();
    await shot(user, 'pending-approval');
    // Signing in before the approval leads back to the same screen.
    await signIn(user, email);
    await expect(user).toHaveURL(/\/pending/);
    await expect(user.getByText('Waiting for approval')).toBeVisible();

    const adminContext = await browser.newContext();
    const admin = await adminContext.newPage();
    await signIn(admin, ADMIN.email, ADMIN.password);
    await expect(admin.getByRole('textbox', { name: 'Message' })).toBeVisible();
    await admin.getByRole('link', { name: 'Admin' }).click();
    await admin.getByRole('link', { name: 'Users' }).first().click();
    const row = admin.getByRole('row', { name: new RegExp(email.replace(/[.+]/g, '\\$&')) });
    await expect(row).toBeVisible();
    await shot(admin, 'admin-users');
    await admin.getByRole('button', { name: `Approve ${email}` }).click();
    await expect(admin.getByRole('button', { name: `Approve ${email}` })).toHaveCount(0);

    await signIn(user, email, PASSWORD);
    await expect(user.getByRole('textbox', { name: 'Message' })).toBeVisible();
    await send(user, 'Hello after approval');
    await answerFinished(user);

    // The admin's other screens render over the real API.
    for (const [name, file] of [
      ['Usage', 'admin-usage'],
      ['Audit log', 'admin-audit'],
      ['Background tasks', 'admin-jobs'],
      ['Settings', 'admin-settings'],
    ] as const) {
      await admin.getByRole('link', { name }).first().click();
      await expect(admin.getByRole('main')).toBeVisible();
      await admin.waitForLoadState('networkidle');
      await shot(admin, file);
    }
    await admin.goto('/models');
    await admin.waitForLoadState('networkidle');
    await expect(admin.getByText('confab-scripted').first()).toBeVisible();
    await shot(admin, 'models');

    await userContext.close();
    await adminContext.close();
  } finally {
    await settings('open');
  }
});
