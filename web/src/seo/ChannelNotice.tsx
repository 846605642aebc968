import { Alert } from 'antd';
import { useSearchParams } from 'react-router';

const REASONS: Record<string, string> = {
  denied: 'Access was declined on Google’s consent page.',
  expired: 'The connection took too long. Start again from the project’s “On YouTube” card.',
  refused: 'Google refused the connection. Try again, or ask an administrator to check the OAuth client.',
  invalid: 'The answer from Google could not be used. Start again from the project’s “On YouTube” card.',
};

/** What came of connecting a channel: Google's callback sends the user to `/seo?channel=…`. */
export function channelOutcome(channel: string | null, reason: string | null): { ok: boolean; text: string } | null {
  if (channel === 'connected') return { ok: true, text: 'Your YouTube channel is connected.' };
  if (channel === 'failed') {
    const why = (reason && REASONS[reason]) ?? 'Try again.';
    return { ok: false, text: `Your YouTube channel was not connected. ${why}` };
  }
  return null;
}

export function ChannelNotice() {
  const [params, setParams] = useSearchParams();
  const outcome = channelOutcome(params.get('channel'), params.get('reason'));
  if (!outcome) return null;
  const dismiss = () => {
    const next = new URLSearchParams(params);
    next.delete('channel');
    next.delete('reason');
    setParams(next, { replace: true });
  };
  return (
    <Alert
      type={outcome.ok ? 'success' : 'error'}
      showIcon
      role={outcome.ok ? 'status' : 'alert'}
      title={outcome.text}
      closable={{ onClose: dismiss }}
      style={{ marginBottom: 12 }}
    />
  );
}
