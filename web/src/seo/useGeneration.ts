import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '../api/errors';
import { followEventStream } from '../api/sse';
import { useAuth } from '../auth/AuthContext';
import { generationFailure, seoMessage } from './errors';
import type { Generation, GenerationCompleted, GenerationFailed, GenerationProgress, Stage } from './types';
import { useSeoApi } from './useSeoApi';

/** The stages of a generation in words. */
export const STAGE_WORDS: Record<Stage, string> = {
  queued: 'Waiting for a free worker…',
  summarising: 'Reading the long transcript…',
  analysis: 'Understanding what the video is about…',
  generation: 'Writing titles, description and tags…',
  repair: 'Fixing what broke YouTube’s rules…',
  saving: 'Checking the package and saving it…',
};

export interface GenerationView {
  running: boolean;
  stage: Stage | null;
  percent: number;
  /** Why the last generation failed, in words. */
  error: string | null;
  /** The score of the version the last generation stored. */
  lastScore: number | null;
  start(): Promise<void>;
}

const isRunning = (g: Generation | null) => !!g && (g.state === 'queued' || g.state === 'running');

/**
 * A project's generation: starts one, and follows the project's feed (server-sent events over
 * fetch, with the bearer token) for progress until it completes or fails. `onVersion` is called
 * with the version a generation stored. A generation already running when the page opens is
 * followed too.
 */
export function useGeneration(projectId: string, activeJob: string | null | undefined, onVersion: (n: number) => void): GenerationView {
  const { client } = useAuth();
  const seo = useSeoApi();
  const [running, setRunning] = useState(false);
  const [stage, setStage] = useState<Stage | null>(null);
  const [percent, setPercent] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [lastScore, setLastScore] = useState<number | null>(null);
  const following = useRef<AbortController | null>(null);
  const versionCallback = useRef(onVersion);
  versionCallback.current = onVersion;

  const follow = useCallback(() => {
    following.current?.abort();
    const controller = new AbortController();
    following.current = controller;
    let finished = false;
    const finish = (version: number | null, failure: string | null, score: number | null = null) => {
      finished = true;
      setRunning(false);
      setStage(null);
      setError(failure);
      if (version !== null) {
        setPercent(100);
        setLastScore(score);
        versionCallback.current(version);
      }
      return true;
    };
    setRunning(true);
    void followEventStream(client, seo.eventsPath(projectId), controller.signal, {
      onEvent(event) {
        if (event.event === 'state') {
          const g = JSON.parse(event.data) as Generation | null;
          if (!g) return finish(null, null);
          if (g.state === 'succeeded') return finish(g.version ?? null, null);
          if (g.state === 'failed') return finish(null, generationFailure('generation_failed', g.error ?? 'The generation failed.'));
          if (g.state === 'cancelled') return finish(null, 'The generation was cancelled.');
          if (typeof g.percent === 'number') setPercent(g.percent);
          setStage((s) => s ?? 'queued');
          return false;
        }
        if (event.event === 'progress') {
          const p = JSON.parse(event.data) as GenerationProgress;
          setStage(p.stage);
          setPercent(Math.round(p.percent));
          return false;
        }
        if (event.event === 'completed') {
          const c = JSON.parse(event.data) as GenerationCompleted;
          return finish(c.version, null, c.score);
        }
        if (event.event === 'failed') {
          const f = JSON.parse(event.data) as GenerationFailed;
          return finish(null, generationFailure(f.code, f.message));
        }
        return false;
      },
      onError(e) {
        // Asking again would not help with these.
        if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
          finish(null, seoMessage(e));
          return true;
        }
        return false;
      },
      onDrop: () => (finished ? null : 1000),
    });
  }, [client, seo, projectId]);

  useEffect(() => {
    if (!activeJob) return;
    let gone = false;
    seo
      .generation(projectId)
      .then((g) => {
        if (!gone && isRunning(g)) follow();
      })
      .catch(() => {});
    return () => {
      gone = true;
    };
  }, [seo, projectId, activeJob, follow]);

  useEffect(() => () => following.current?.abort(), []);

  const start = useCallback(async () => {
    setError(null);
    setPercent(0);
    setStage('queued');
    try {
      await seo.generate(projectId);
    } catch (e) {
      setStage(null);
      setError(seoMessage(e));
      if (!(e instanceof ApiError && e.code === 'already_generating')) return;
    }
    follow();
  }, [seo, projectId, follow]);

  return { running, stage, percent, error, lastScore, start };
}
