import { ReloadOutlined, RedoOutlined, StopOutlined } from '@ant-design/icons';
import { App, Button, Progress, Select, Space, Table, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { ApiClient } from '../api/client';
import { ApiError, friendlyMessage } from '../api/errors';
import { query } from '../api/query';
import { followEventStream } from '../api/sse';
import type { Page } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { formatTime, isJobState, JOB_STATES, KNOWN_JOB_KINDS, type Job, type JobEvent, type JobState } from './api';
import { ErrorAlert, LoadMore } from './common';
import { userLabel, useUserDirectory } from './directory';
import { useCursorPages } from './useCursorPages';

const PAGE = 50;

const STATE_COLORS: Record<JobState, string> = {
  queued: 'default',
  running: 'processing',
  succeeded: 'success',
  failed: 'error',
  cancelled: 'warning',
};

const STATE_WORDS: Record<JobState, string> = {
  queued: 'is still waiting to run',
  running: 'is running',
  succeeded: 'has already finished successfully',
  failed: 'has failed',
  cancelled: 'has been cancelled',
};

/** Why a cancel or retry was refused (409 `job_state`), in words. */
export function jobStateMessage(action: 'cancel' | 'retry', state: JobState | undefined): string {
  const now = state ? `this task ${STATE_WORDS[state]}` : 'its state has changed meanwhile';
  return action === 'cancel'
    ? `This task cannot be cancelled: ${now}.`
    : `Only failed or cancelled tasks can be run again; ${now}.`;
}

/** The list with an event's changes applied to its job; null when the job is not in the list. */
export function applyJobEvent(jobs: Job[], event: JobEvent, now = new Date()): Job[] | null {
  const index = jobs.findIndex((j) => j.id === event.id);
  if (index < 0) return null;
  const old = jobs[index];
  const final = event.state === 'succeeded' || event.state === 'failed' || event.state === 'cancelled';
  const updated: Job = {
    ...old,
    kind: event.kind ?? old.kind,
    state: event.state,
    progress: event.progress,
    progress_message: event.progress_message,
    attempts: event.attempts,
    max_attempts: event.max_attempts,
    error: event.error,
    cancel_requested: final ? false : old.cancel_requested,
    updated_at: now.toISOString(),
  };
  const next = jobs.slice();
  next[index] = updated;
  return next;
}

const jobId = (job: Job) => job.id;

export type FeedStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

/**
 * Follows `/api/v1/admin/jobs/events` (SSE over the client's fetch, so the bearer token goes
 * along and is refreshed). When the stream ends or fails it reconnects with backoff and calls
 * `onResync` once connected again, as it does on a `resync` event: events may have been missed.
 */
export function useJobFeed(
  client: ApiClient,
  onEvent: (event: JobEvent) => void,
  onResync: () => void,
  firstRetryMs = 500,
): FeedStatus {
  const [status, setStatus] = useState<FeedStatus>('connecting');
  const handlers = useRef({ onEvent, onResync });
  handlers.current = { onEvent, onResync };

  useEffect(() => {
    const abort = new AbortController();
    let failures = 0;
    void followEventStream(client, '/api/v1/admin/jobs/events', abort.signal, {
      onOpen() {
        setStatus('live');
        if (failures > 0) handlers.current.onResync();
        failures = 0;
      },
      onEvent(event) {
        if (event.event === 'job.updated') {
          try {
            handlers.current.onEvent(JSON.parse(event.data) as JobEvent);
          } catch {
            // an event we cannot read; the next resync catches up
          }
        } else if (event.event === 'resync') {
          handlers.current.onResync();
        }
      },
      onError(e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          setStatus('stopped');
          return true;
        }
      },
      onDrop() {
        failures += 1;
        setStatus('reconnecting');
        const delay = Math.min(30_000, firstRetryMs * 2 ** (failures - 1));
        return delay * (0.75 + Math.random() * 0.5);
      },
    });
    return () => abort.abort();
  }, [client, firstRetryMs]);

  return status;
}

const FEED_WORDS: Record<FeedStatus, { text: string; color: string }> = {
  connecting: { text: 'Connecting to live updates…', color: 'default' },
  live: { text: 'Live', color: 'green' },
  reconnecting: { text: 'Live updates interrupted; reconnecting…', color: 'orange' },
  stopped: { text: 'Live updates stopped; sign in again', color: 'red' },
};

/** What a job works on, when its payload or result says it in a way a person can read. */
function payloadSummary(job: Job, label: (id: string) => string): string | null {
  const p = job.payload as Record<string, unknown> | null;
  const r = job.result as Record<string, unknown> | null;
  if (job.kind === 'user.purge' && p && typeof p.user_id === 'string') return `user ${label(p.user_id)}`;
  if (job.kind === 'model.pull' && r && typeof r === 'object' && typeof r.model === 'string') return `model ${r.model}`;
  return null;
}

export default function JobsScreen() {
  const { client } = useAuth();
  const { message } = App.useApp();
  const { byId } = useUserDirectory();
  const [stateFilter, setStateFilter] = useState<JobState | undefined>();
  const [kindFilter, setKindFilter] = useState<string | undefined>();
  const [busy, setBusy] = useState<string | null>(null);
  const fetching = useRef(new Set<string>());

  const fetchPage = useCallback(
    (cursor: string | null) =>
      client.get<Page<Job>>(`/api/v1/admin/jobs${query({ state: stateFilter, kind: kindFilter, limit: PAGE, cursor })}`),
    [client, stateFilter, kindFilter],
  );
  // New tasks from the live feed shift the pages: a task already listed is not listed twice.
  const pages = useCursorPages(fetchPage, jobId);
  const { items: jobs, setItems: setJobs, loading, setError, reload } = pages;

  const replace = (job: Job) => setJobs((old) => old.map((j) => (j.id === job.id ? job : j)));

  const jobsRef = useRef(jobs);
  jobsRef.current = jobs;

  const onEvent = useCallback(
    (event: JobEvent) => {
      if (jobsRef.current.some((j) => j.id === event.id)) {
        setJobs((old) => applyJobEvent(old, event) ?? old);
        return;
      }
      // A job not listed yet: a new one (the newest come first), when it fits the filters.
      if (stateFilter && event.state !== stateFilter) return;
      if (kindFilter && event.kind !== kindFilter) return;
      if (fetching.current.has(event.id)) return;
      fetching.current.add(event.id);
      client
        .get<Job>(`/api/v1/admin/jobs/${event.id}`)
        .then((job) => setJobs((old) => (old.some((j) => j.id === job.id) ? old : [job, ...old])))
        .catch(() => {})
        .finally(() => fetching.current.delete(event.id));
    },
    [client, stateFilter, kindFilter],
  );

  const feed = useJobFeed(client, onEvent, () => void reload());

  const act = async (job: Job, action: 'cancel' | 'retry') => {
    setBusy(`${action}:${job.id}`);
    try {
      replace(await client.post<Job>(`/api/v1/admin/jobs/${job.id}/${action}`));
      setError(null);
      message.success(action === 'cancel' ? `Cancelling ${job.kind}` : `${job.kind} queued again`);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'job_state') {
        let state: JobState | undefined;
        try {
          const fresh = await client.get<Job>(`/api/v1/admin/jobs/${job.id}`);
          replace(fresh);
          if (isJobState(fresh.state)) state = fresh.state;
        } catch {
          // keep the row as it was
        }
        setError(jobStateMessage(action, state));
      } else {
        setError(friendlyMessage(e));
      }
    } finally {
      setBusy(null);
    }
  };

  const kinds = useMemo(() => {
    const all = new Set([...KNOWN_JOB_KINDS, ...jobs.map((j) => j.kind)]);
    if (kindFilter) all.add(kindFilter);
    return [...all].sort().map((k) => ({ value: k, label: k }));
  }, [jobs, kindFilter]);

  const columns: ColumnsType<Job> = [
    {
      title: 'Kind',
      dataIndex: 'kind',
      key: 'kind',
      render: (kind: string, job) => {
        const summary = payloadSummary(job, (id) => userLabel(byId, id));
        return (
          <div>
            <code>{kind}</code>
            {summary && (
              <div>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {summary}
                </Typography.Text>
              </div>
            )}
          </div>
        );
      },
    },
    {
      title: 'State',
      dataIndex: 'state',
      key: 'state',
      render: (state: JobState, job) => (
        <Space size={4} wrap>
          <Tag color={STATE_COLORS[state]}>{state}</Tag>
          {job.cancel_requested && <Tag color="orange">cancel requested</Tag>}
        </Space>
      ),
    },
    {
      title: 'Attempts',
      key: 'attempts',
      render: (_, job) => `${job.attempts} / ${job.max_attempts}`,
    },
    {
      title: 'Progress',
      key: 'progress',
      width: 180,
      render: (_, job) => {
        if (typeof job.progress !== 'number' && !job.progress_message) return '—';
        const percent = typeof job.progress === 'number' ? Math.round(job.progress) : 0;
        return (
          <div>
            {job.progress !== null && (
              <Progress
                percent={percent}
                size="small"
                status={job.state === 'failed' ? 'exception' : job.state === 'running' ? 'active' : undefined}
                aria-label={`Progress of ${job.kind} task`}
              />
            )}
            {job.progress_message && (
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                {job.progress_message}
              </Typography.Text>
            )}
          </div>
        );
      },
    },
    {
      title: 'Created',
      dataIndex: 'created_at',
      key: 'created',
      render: (t: string, job) => (
        <div>
          {formatTime(t)}
          {job.created_by && (
            <div>
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                by {userLabel(byId, job.created_by)}
              </Typography.Text>
            </div>
          )}
        </div>
      ),
    },
    {
      title: 'Error',
      dataIndex: 'error',
      key: 'error',
      render: (e: string | null) =>
        e ? (
          <Typography.Paragraph type="danger" ellipsis={{ rows: 2, tooltip: e }} style={{ maxWidth: 280, marginBottom: 0 }}>
            {e}
          </Typography.Paragraph>
        ) : (
          '—'
        ),
    },
    {
      title: 'Actions',
      key: 'actions',
      render: (_, job) => (
        <Space size={4}>
          {(job.state === 'queued' || job.state === 'running') && (
            <Tooltip title={job.cancel_requested ? 'Cancellation asked; the task stops at its next heartbeat' : undefined}>
              <Button
                size="small"
                danger
                icon={<StopOutlined aria-hidden="true" />}
                aria-label={`Cancel ${job.kind} task ${job.id}`}
                disabled={job.cancel_requested}
                loading={busy === `cancel:${job.id}`}
                onClick={() => void act(job, 'cancel')}
              >
                Cancel
              </Button>
            </Tooltip>
          )}
          {(job.state === 'failed' || job.state === 'cancelled') && (
            <Button
              size="small"
              icon={<RedoOutlined aria-hidden="true" />}
              aria-label={`Retry ${job.kind} task ${job.id}`}
              loading={busy === `retry:${job.id}`}
              onClick={() => void act(job, 'retry')}
            >
              Retry
            </Button>
          )}
        </Space>
      ),
    },
  ];

  const feedWords = FEED_WORDS[feed];
  return (
    <section aria-labelledby="admin-jobs-title">
      <Space align="center" wrap style={{ marginBottom: 8 }}>
        <Typography.Title level={3} id="admin-jobs-title" style={{ margin: 0 }}>
          Background tasks
        </Typography.Title>
        <span role="status" aria-live="polite">
          <Tag color={feedWords.color}>{feedWords.text}</Tag>
        </span>
      </Space>
      <Space wrap style={{ marginBottom: 12, display: 'flex' }}>
        <Select
          aria-label="State"
          allowClear
          placeholder="Any state"
          value={stateFilter}
          onChange={(v: JobState | undefined) => setStateFilter(v)}
          options={JOB_STATES.map((s) => ({ value: s, label: s }))}
          style={{ width: 150 }}
        />
        <Select
          aria-label="Kind"
          allowClear
          showSearch
          placeholder="Any kind"
          value={kindFilter}
          onChange={(v: string | undefined) => setKindFilter(v)}
          options={kinds}
          style={{ width: 180 }}
        />
        <Button icon={<ReloadOutlined aria-hidden="true" />} onClick={() => void reload()} loading={loading}>
          Refresh
        </Button>
      </Space>
      <ErrorAlert error={pages.error} onClose={() => setError(null)} />
      <Table<Job>
        rowKey="id"
        size="small"
        columns={columns}
        dataSource={jobs}
        loading={loading && jobs.length === 0}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: stateFilter || kindFilter ? 'No task matches these filters.' : 'No background tasks.' }}
      />
      <LoadMore pages={pages} />
    </section>
  );
}
