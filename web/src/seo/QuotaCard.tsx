import { BarElement, CategoryScale, Chart as ChartJS, Legend, LinearScale, Tooltip, type ChartOptions } from 'chart.js';
import { Alert, Card, Col, Row, Spin, Tag, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { Bar } from 'react-chartjs-2';
import { useTheme } from '../theme/ThemeContext';
import { seoMessage } from './errors';
import type { Bucket, BucketUsage, QuotaView } from './types';
import { useSeoApi } from './useSeoApi';

ChartJS.register(CategoryScale, LinearScale, BarElement, Tooltip, Legend);

export const BUCKET_WORDS: Record<Bucket, string> = {
  daily_units: 'Quota units',
  search_calls: 'Searches',
  insert_calls: 'Uploads',
};

const BUCKETS: Bucket[] = ['daily_units', 'search_calls', 'insert_calls'];

/** The next reset in the reader's own time, e.g. "Wed, Dec 2, 09:00". */
export function resetWords(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function BucketChart({ bucket, rows }: { bucket: Bucket; rows: BucketUsage[] }) {
  const { dark } = useTheme();
  const text = dark ? 'rgba(255,255,255,0.75)' : 'rgba(0,0,0,0.65)';
  const grid = dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.08)';
  const options: ChartOptions<'bar'> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { labels: { color: text } } },
    scales: { x: { ticks: { color: text }, grid: { color: grid } }, y: { beginAtZero: true, ticks: { color: text }, grid: { color: grid } } },
  };
  return (
    <div className="seo-chart seo-chart-small">
      <Bar
        role="img"
        aria-label={`${BUCKET_WORDS[bucket]} used and limit per day`}
        options={options}
        data={{
          labels: rows.map((r) => r.day),
          datasets: [
            {
              label: 'Used',
              data: rows.map((r) => r.used),
              backgroundColor: rows.map((r) => (r.exhausted ? '#ff4d4f' : '#1677ff')),
            },
            { label: 'Limit', data: rows.map((r) => r.limit), backgroundColor: 'rgba(128,128,128,0.3)' },
          ],
        }}
      />
    </div>
  );
}

/** The shared YouTube quota: used against the limit per bucket and day, and when it resets. */
export function QuotaCard({ days = 7 }: { days?: number }) {
  const seo = useSeoApi();
  const [quota, setQuota] = useState<QuotaView | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let gone = false;
    seo
      .quota(days)
      .then((q) => !gone && setQuota(q))
      .catch((e: unknown) => !gone && setError(seoMessage(e)));
    return () => {
      gone = true;
    };
  }, [seo, days]);

  const exhausted = (quota?.usage ?? []).filter((u) => u.exhausted);
  return (
    <Card title="YouTube quota" size="small">
      {error && <Alert type="error" showIcon role="alert" title={error} />}
      {!quota && !error && <Spin aria-label="Loading the quota" />}
      {quota && (
        <>
          {!quota.api_key && (
            <Alert
              type="info"
              showIcon
              style={{ marginBottom: 8 }}
              title="No YouTube API key is configured (YOUTUBE_API_KEY): keyword research and audits are off."
            />
          )}
          <Typography.Paragraph style={{ marginBottom: 8 }}>
            Next reset: <strong>{resetWords(quota.next_reset)}</strong>{' '}
            <Typography.Text type="secondary">(midnight Pacific time)</Typography.Text>
          </Typography.Paragraph>
          {exhausted.length > 0 && (
            <Typography.Paragraph style={{ marginBottom: 8 }}>
              <Tag color="red">Exhausted</Tag>
              {exhausted.map((u) => `${BUCKET_WORDS[u.bucket]} on ${u.day}`).join(', ')}
            </Typography.Paragraph>
          )}
          {quota.usage.length === 0 && (
            <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
              No YouTube calls in this period.
            </Typography.Paragraph>
          )}
          <Row gutter={[12, 12]}>
            {BUCKETS.map((b) => {
              const rows = quota.usage.filter((u) => u.bucket === b);
              if (!rows.length) return null;
              const last = rows[rows.length - 1]!;
              return (
                <Col xs={24} lg={8} key={b}>
                  <Typography.Text strong>{BUCKET_WORDS[b]}</Typography.Text>{' '}
                  <Typography.Text type="secondary" aria-label={`${BUCKET_WORDS[b]} on ${last.day}`}>
                    {last.used.toLocaleString('en-US')} / {last.limit.toLocaleString('en-US')}
                  </Typography.Text>
                  <BucketChart bucket={b} rows={rows} />
                </Col>
              );
            })}
          </Row>
        </>
      )}
    </Card>
  );
}
