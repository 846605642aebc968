import { useEffect, useState } from 'react';
import { seoMessage } from './errors';
import type { ScoreReport, ScoreRequest } from './types';
import { useSeoApi } from './useSeoApi';

export const LIVE_DEBOUNCE_MS = 300;

export interface LiveScore {
  report: ScoreReport | null;
  /** A check is on its way (or waits for the typing to pause). */
  pending: boolean;
  error: string | null;
}

/**
 * The server's verdict on `request` (POST /api/v1/seo/score), asked again ~300 ms after the
 * last change; an answer to an older request is dropped.
 */
export function useLiveScore(request: ScoreRequest): LiveScore {
  const seo = useSeoApi();
  const [report, setReport] = useState<ScoreReport | null>(null);
  const [pending, setPending] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const key = JSON.stringify(request);

  useEffect(() => {
    const controller = new AbortController();
    setPending(true);
    const timer = setTimeout(() => {
      seo
        .score(JSON.parse(key) as ScoreRequest, controller.signal)
        .then((r) => {
          setReport(r);
          setError(null);
        })
        .catch((e: unknown) => {
          if (!controller.signal.aborted) setError(seoMessage(e));
        })
        .finally(() => {
          if (!controller.signal.aborted) setPending(false);
        });
    }, LIVE_DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [seo, key]);

  return { report, pending, error };
}
