import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import { desktop, errorResponse, jsonResponse, sseStream } from '../test/helpers';
import type { Job, JobEvent } from './api';
import { applyJobEvent, jobStateMessage } from './JobsScreen';
import { fakeServer, renderAdmin, type Call } from './testing';

const RUNNING = '0190bbbb-0000-7000-8000-000000000001';
const FAILED = '0190bbbb-0000-7000-8000-000000000002';
const NEW = '0190bbbb-0000-7000-8000-000000000003';

function job(id: string, kind: string, extra: Partial<Job> = {}): Job {
  return {
    id,
    kind,
    payload: {},
    priority: 0,
    state: 'queued',
    attempts: 0,
    max_attempts: 3,
    run_after: '2026-03-01T12:00:00.000Z',
    progress: null,
    progress_message: null,
    result: null,
    error: null,
    cancel_requested: false,
    created_by: null,
    created_at: '2026-03-01T12:00:00.000Z',
    updated_at: '2026-03-01T12:00:00.000Z',
    worker: null,
    ...extra,
  };
}

const pull = job(RUNNING, 'model.pull', { state: 'running', attempts: 1, progress: 40, progress_message: '1.2 GB of 3 GB' });
const purge = job(FAILED, 'user.purge', { state: 'failed', attempts: 3, error: 'database is locked' });

function event(j: Job, changes: Partial<JobEvent>): JobEvent {
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    progress: j.progress,
    progress_message: j.progress_message,
    attempts: j.attempts,
    max_attempts: j.max_attempts,
    error: j.error,
    created_by: j.created_by,
    ...changes,
  };
}

/** The table row of a job (found by a text in it). */
function rowWith(text: string): HTMLElement {
  return screen.getByText(text).closest('tr') as HTMLElement;
}

/** A server whose live feed the test drives; `streams` are the connections so far. */
function jobsServer(routes: Record<string, (call: Call) => Response> = {}) {
  const streams: ReturnType<typeof sseStream>[] = [];
  const server = fakeServer({
    'GET /api/v1/admin/jobs': () => jsonResponse(200, { items: [pull, purge], next_cursor: null }),
    'GET /api/v1/admin/jobs/events': (call) => {
      const stream = sseStream(call.init.signal);
      streams.push(stream);
      return stream.response();
    },
    ...routes,
  });
  return { ...server, streams };
}

beforeEach(() => desktop());

describe('job helpers', () => {
  it('applies an event to its row only, and leaves unknown jobs to the caller', () => {
    const now = new Date('2026-03-02T00:00:00Z');
    const next = applyJobEvent([pull, purge], event(pull, { progress: 80, attempts: 2 }), now)!;
    expect(next[0]).toMatchObject({ progress: 80, attempts: 2, updated_at: '2026-03-02T00:00:00.000Z' });
    expect(next[1]).toBe(purge);
    expect(applyJobEvent([pull], event(purge, {}))).toBeNull();
  });

  it('says why a cancel or retry was refused', () => {
    expect(jobStateMessage('cancel', 'succeeded')).toBe('This task cannot be cancelled: this task has already finished successfully.');
    expect(jobStateMessage('retry', 'running')).toBe('Only failed or cancelled tasks can be run again; this task is running.');
  });
});

describe('Background tasks screen', { timeout: 90_000 }, () => {
  it('updates a row from the live feed and adds new jobs', async () => {
    const fresh = job(NEW, 'chat.title', { state: 'queued' });
    const server = jobsServer({ [`GET /api/v1/admin/jobs/${NEW}`]: () => jsonResponse(200, fresh) });
    renderAdmin(server.fetch, '/admin/jobs');
    expect(await screen.findByText('1.2 GB of 3 GB')).toBeInTheDocument();
    expect(within(rowWith('1.2 GB of 3 GB')).getByText('40%')).toBeInTheDocument();
    expect(within(rowWith('database is locked')).getByText('3 / 3')).toBeInTheDocument();
    expect(await screen.findByText('Live')).toBeInTheDocument();
    const feed = server.find('GET', '/api/v1/admin/jobs/events')[0];
    expect(new Headers(feed.init.headers).get('authorization')).toBe('Bearer tok');

    server.streams[0].send('job.updated', event(pull, { progress: 75, progress_message: '2.2 GB of 3 GB' }));
    expect(await screen.findByText('2.2 GB of 3 GB')).toBeInTheDocument();
    expect(within(rowWith('2.2 GB of 3 GB')).getByText('75%')).toBeInTheDocument();

    server.streams[0].send('job.updated', event(pull, { state: 'succeeded', progress: 100, progress_message: 'done' }));
    const row = await waitFor(() => rowWith('done'));
    expect(within(row).getByText('succeeded')).toBeInTheDocument();
    expect(within(row).queryByLabelText(`Cancel model.pull task ${RUNNING}`)).toBeNull();

    server.streams[0].send('job.updated', event(fresh, {}));
    expect(await screen.findByText('chat.title')).toBeInTheDocument();
    expect(server.find('GET', `/api/v1/admin/jobs/${NEW}`)).toHaveLength(1);
    expect(screen.getAllByRole('row')[1]).toHaveTextContent('chat.title');
  });

  it('reconnects when the feed ends and lists the jobs again', async () => {
    const server = jobsServer();
    renderAdmin(server.fetch, '/admin/jobs');
    await screen.findByText('Live');
    expect(server.find('GET', '/api/v1/admin/jobs')).toHaveLength(1);
    server.streams[0].close();
    expect(await screen.findByText('Live updates interrupted; reconnecting…')).toBeInTheDocument();
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/jobs/events')).toHaveLength(2));
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/jobs')).toHaveLength(2));
    expect(await screen.findByText('Live')).toBeInTheDocument();

    // a resync event lists them again too
    server.streams[1].send('resync', { missed: 12 });
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/jobs')).toHaveLength(3));
  });

  it('cancels a running job and retries a failed one', async () => {
    const server = jobsServer({
      [`POST /api/v1/admin/jobs/${RUNNING}/cancel`]: () => jsonResponse(200, { ...pull, cancel_requested: true }),
      [`POST /api/v1/admin/jobs/${FAILED}/retry`]: () => jsonResponse(200, { ...purge, state: 'queued', attempts: 0, error: null }),
    });
    renderAdmin(server.fetch, '/admin/jobs');
    const user = userEvent.setup();
    await screen.findByText('1.2 GB of 3 GB');
    expect(within(rowWith('database is locked')).queryByLabelText(`Cancel user.purge task ${FAILED}`)).toBeNull();

    await user.click(screen.getByLabelText(`Cancel model.pull task ${RUNNING}`));
    expect(await within(rowWith('1.2 GB of 3 GB')).findByText('cancel requested')).toBeInTheDocument();
    expect(screen.getByLabelText(`Cancel model.pull task ${RUNNING}`)).toBeDisabled();
    expect(server.find('POST', `/api/v1/admin/jobs/${RUNNING}/cancel`)).toHaveLength(1);

    await user.click(screen.getByLabelText(`Retry user.purge task ${FAILED}`));
    await waitFor(() => expect(screen.queryByText('database is locked')).toBeNull());
    expect(server.find('POST', `/api/v1/admin/jobs/${FAILED}/retry`)).toHaveLength(1);
    expect(screen.queryByLabelText(`Retry user.purge task ${FAILED}`)).toBeNull();
  });

  it('explains a 409 job_state in words', async () => {
    const server = jobsServer({
      [`POST /api/v1/admin/jobs/${FAILED}/retry`]: () => errorResponse(409, 'job_state', 'cannot retry a running job'),
      [`GET /api/v1/admin/jobs/${FAILED}`]: () => jsonResponse(200, { ...purge, state: 'running', error: null }),
    });
    renderAdmin(server.fetch, '/admin/jobs');
    const user = userEvent.setup();
    await screen.findByText('database is locked');
    await user.click(screen.getByLabelText(`Retry user.purge task ${FAILED}`));
    expect(
      await screen.findByText('Only failed or cancelled tasks can be run again; this task is running.'),
    ).toBeInTheDocument();
    // the row shows the job as it is now
    expect(screen.getByLabelText(`Cancel user.purge task ${FAILED}`)).toBeInTheDocument();
  });

  it('filters by state and kind on the server', async () => {
    const server = jobsServer();
    renderAdmin(server.fetch, '/admin/jobs');
    const user = userEvent.setup();
    await screen.findByText('1.2 GB of 3 GB');
    await user.click(screen.getByLabelText('State'));
    const failed = await screen.findAllByTitle('failed');
    await user.click(failed[failed.length - 1]);
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/jobs').at(-1)!.search.get('state')).toBe('failed'));
    await user.click(screen.getByLabelText('Kind'));
    const kind = await screen.findAllByTitle('user.purge');
    await user.click(kind[kind.length - 1]);
    await waitFor(() => {
      const last = server.find('GET', '/api/v1/admin/jobs').at(-1)!.search;
      expect(Object.fromEntries(last)).toEqual({ state: 'failed', kind: 'user.purge', limit: '50' });
    });
  });
});
