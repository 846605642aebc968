import { useEffect, useState } from 'react';
import { friendlyMessage } from '../api/errors';

export type BlobUrl =
  | { status: 'loading' }
  | { status: 'ready'; url: string; blob: Blob }
  | { status: 'failed'; error: string };

/**
 * An object URL for a blob read with the session's token (an <img> or <video> cannot send the
 * Bearer header itself); revoked when the component goes or the source changes. `load` is
 * null to load nothing; it must be memoised.
 */
export function useBlobUrl(load: ((signal: AbortSignal) => Promise<Blob>) | null): BlobUrl {
  const [state, setState] = useState<BlobUrl>({ status: 'loading' });
  useEffect(() => {
    if (!load) return;
    const controller = new AbortController();
    let url: string | null = null;
    setState({ status: 'loading' });
    load(controller.signal)
      .then((blob) => {
        if (controller.signal.aborted) return;
        if (typeof URL.createObjectURL !== 'function') throw new Error('This browser cannot show the file.');
        url = URL.createObjectURL(blob);
        setState({ status: 'ready', url, blob });
      })
      .catch((e: unknown) => {
        if (!controller.signal.aborted) setState({ status: 'failed', error: friendlyMessage(e) });
      });
    return () => {
      controller.abort();
      if (url) URL.revokeObjectURL(url);
    };
  }, [load]);
  return state;
}
