import { expect, test } from '@playwright/test';
import {
  ADMIN,
  PASSWORD,
  answerFinished,
  apiToken,
  assistantMessages,
  confirmIn,
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
  // Judge the sidebar once its list has come back (it reads "No conversations yet" before).
  const listed = bob.waitForResponse((r) => r.url().includes('/api/v1/conversations?') && r.request().method() === 'GET');
  await bob.reload();
  expect((await listed).status()).toBe(200);
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

test('an admin requires approval, approves a new user, and follows usage, the audit log and a deletion job', async ({
  browser,
  request,
}) => {
  const token = await apiToken(request, ADMIN.email, ADMIN.password);
  const auth = { authorization: `Bearer ${token}` };
  try {
    const adminContext = await browser.newContext();
    const admin = await adminContext.newPage();
    await signIn(admin, ADMIN.email, ADMIN.password);
    await expect(admin.getByRole('textbox', { name: 'Message' })).toBeVisible();
    await admin.getByRole('link', { name: 'Admin' }).click();

    // Runtime settings: sign-ups now need an admin's approval, applied without a restart.
    await admin.getByRole('link', { name: 'Settings' }).first().click();
    const policy = admin.getByRole('radiogroup', { name: 'Who may create an account' });
    await expect(policy).toBeVisible();
    await policy.getByText('Approval:').click();
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await expect(admin.getByText(/Settings saved \(version \d+\)/)).toBeVisible();
    await shot(admin, 'admin-settings');

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

    // Users: the pending account is there, and approving it lets its owner in.
    await admin.getByRole('link', { name: 'Users' }).first().click();
    const row = admin.getByRole('row', { name: new RegExp(email.replace(/[.+]/g, '\\$&')) });
    await expect(row).toBeVisible();
    await expect(row).toContainText('pending');
    await shot(admin, 'admin-users');
    await admin.getByRole('button', { name: `Approve ${email}` }).click();
    await expect(admin.getByRole('button', { name: `Approve ${email}` })).toHaveCount(0);
    await expect(row).toContainText('active');

    await signIn(user, email, PASSWORD);
    await expect(user.getByRole('textbox', { name: 'Message' })).toBeVisible();
    await send(user, 'Hello after approval');
    await answerFinished(user);

    // Usage: the answers so far are counted and charted.
    await admin.getByRole('link', { name: 'Usage' }).first().click();
    await expect(admin.getByRole('heading', { name: 'Usage' })).toBeVisible();
    await expect(admin.locator('canvas').first()).toBeVisible();
    await expect(admin.getByText('Requests', { exact: true }).first()).toBeVisible();
    await shot(admin, 'admin-usage');

    // Audit log: the approval is recorded, and the hash chain verifies.
    await admin.getByRole('link', { name: 'Audit log' }).first().click();
    await expect(admin.getByRole('heading', { name: 'Audit log' })).toBeVisible();
    await expect(admin.locator('code', { hasText: 'auth.user_approved' }).first()).toBeVisible();
    await expect(admin.locator('code', { hasText: 'admin.config_changed' }).first()).toBeVisible();
    await admin.getByRole('button', { name: 'Verify chain' }).click();
    await expect(admin.getByText('The audit chain is intact.')).toBeVisible();
    await shot(admin, 'admin-audit');

    // Deleting a user runs a background task, followed live to its end.
    await admin.getByRole('link', { name: 'Users' }).first().click();
    await admin.getByRole('button', { name: `More actions for ${email}` }).click();
    await admin.getByRole('menuitem', { name: 'Delete user' }).click();
    await confirmIn(admin, 'Delete user');
    await expect(admin.getByText(`Deleting ${email}`)).toBeVisible();
    await admin.getByRole('link', { name: 'Background tasks' }).first().click();
    const job = admin.getByRole('row', { name: /user\.purge/ });
    await expect(job).toBeVisible();
    await expect(job).toContainText('succeeded');
    await shot(admin, 'admin-jobs');
    await admin.getByRole('link', { name: 'Users' }).first().click();
    await expect(admin.getByRole('table')).toContainText(ADMIN.email);
    await expect(admin.getByRole('table')).not.toContainText(email);

    await admin.goto('/models');
    await expect(admin.getByRole('heading', { name: 'Models' })).toBeVisible();
    await expect(admin.getByText('confab-scripted').first()).toBeVisible();
    await shot(admin, 'models');

    await userContext.close();
    await adminContext.close();
  } finally {
    const response = await request.patch('/api/v1/admin/settings', { headers: auth, data: { registration: 'open' } });
    expect(response.status(), await response.text()).toBe(200);
  }
});
