import { Card, Col, Descriptions, Empty, Row, Space, Statistic, Table, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { formatDuration } from './duration';
import { CommonTagsChart, ViewsByTitleLength } from './ResearchCharts';
import type { CompetitionLevel, Competitor, Research } from './types';

const LEVEL_COLOR: Record<CompetitionLevel, string> = { low: 'green', medium: 'gold', high: 'red' };

export function count(n: number | null | undefined): string {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '—';
}

function share(x: number): string {
  return `${Math.round(x * 100)}%`;
}

const columns = (withOverlap: boolean): ColumnsType<Competitor> => [
  {
    title: 'Title',
    dataIndex: 'title',
    render: (title: string, c) => (
      <a href={`https://www.youtube.com/watch?v=${encodeURIComponent(c.video_id)}`} target="_blank" rel="noreferrer noopener">
        {title}
      </a>
    ),
  },
  { title: 'Channel', dataIndex: 'channel_title' },
  { title: 'Views', dataIndex: 'views', align: 'right', render: count, sorter: (a, b) => (a.views ?? -1) - (b.views ?? -1) },
  {
    title: 'Subscribers',
    dataIndex: 'subscribers',
    align: 'right',
    render: count,
    sorter: (a, b) => (a.subscribers ?? -1) - (b.subscribers ?? -1),
  },
  {
    title: 'Published',
    dataIndex: 'published_at',
    render: (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleDateString() : '—'),
  },
  { title: 'Duration', dataIndex: 'duration_secs', render: (s: number | null | undefined) => formatDuration(s) || '—' },
  ...(withOverlap
    ? [{ title: 'Shared tags', dataIndex: 'shared_tags', align: 'right' as const, render: count }]
    : []),
];

export function ResearchResults({ research }: { research: Research }) {
  const { competition, titles, tag_overlap: overlap } = research;
  const shared = new Set((overlap?.shared ?? []).map((t) => t.tag));
  return (
    <Space direction="vertical" size={16} style={{ width: '100%' }}>
      <Card size="small" title={`Competition for “${research.keyword}”`}>
        <Row gutter={[16, 16]} align="middle">
          <Col xs={12} md={6}>
            <Tooltip title={competition.formula}>
              <Statistic title="Competition score" value={competition.score} suffix="/ 100" />
            </Tooltip>
          </Col>
          <Col xs={12} md={6}>
            <div className="ant-statistic-title">Level</div>
            <Tag color={LEVEL_COLOR[competition.level]} aria-label={`Competition ${competition.level}`} style={{ fontSize: 16, padding: '2px 10px' }}>
              {competition.level}
            </Tag>
          </Col>
          <Col xs={12} md={4}>
            <Statistic title="Median views" value={count(competition.median_views)} />
          </Col>
          <Col xs={12} md={4}>
            <Statistic title="Median subscribers" value={count(competition.median_subscribers)} />
          </Col>
          <Col xs={12} md={4}>
            <Statistic title="Keyword in titles" value={share(competition.keyword_in_title_share)} />
          </Col>
        </Row>
        <Typography.Paragraph type="secondary" style={{ margin: '8px 0 0', fontSize: 12 }}>
          How it is worked out: {competition.formula}
        </Typography.Paragraph>
      </Card>
      <Card size="small" title="Title patterns">
        <Descriptions size="small" column={{ xs: 1, md: 4 }}>
          <Descriptions.Item label="Median length">
            {titles.median_title_chars != null ? `${titles.median_title_chars} characters` : '—'}
          </Descriptions.Item>
          <Descriptions.Item label="With the keyword">{share(titles.with_keyword)}</Descriptions.Item>
          <Descriptions.Item label="With a number">{share(titles.with_number)}</Descriptions.Item>
          <Descriptions.Item label="Questions">{share(titles.questions)}</Descriptions.Item>
        </Descriptions>
        {titles.top_words.length > 0 && (
          <div>
            <Typography.Text type="secondary">Frequent words: </Typography.Text>
            {titles.top_words.map((w) => (
              <Tag key={w.word}>
                {w.word} × {w.count}
              </Tag>
            ))}
          </div>
        )}
      </Card>
      <Card size="small" title={`Top videos (${research.competitors.length})`}>
        <Table<Competitor>
          size="small"
          rowKey="video_id"
          pagination={false}
          scroll={{ x: true }}
          columns={columns(!!overlap)}
          dataSource={research.competitors}
        />
        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
          Asked YouTube at {new Date(research.fetched_at).toLocaleString()}.
        </Typography.Text>
      </Card>
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={12}>
          <Card size="small" title="Views against title length">
            <ViewsByTitleLength competitors={research.competitors} />
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card size="small" title="Common tags">
            {research.common_tags.length ? (
              <CommonTagsChart tags={research.common_tags} shared={shared} />
            ) : (
              <Empty description="The top videos share no tags." />
            )}
            {overlap && (
              <>
                <Typography.Paragraph style={{ margin: '8px 0 4px' }}>
                  {share(overlap.share)} of your package’s tags are used by top videos
                  {overlap.shared.length ? ' (green in the chart).' : '.'}
                </Typography.Paragraph>
                <Typography.Text strong>Missing tags</Typography.Text>
                {overlap.missing.length ? (
                  <ul aria-label="Missing tags" className="seo-tag-list">
                    {overlap.missing.map((t) => (
                      <li key={t.tag}>
                        <Tag>{t.tag}</Tag>
                        <Typography.Text type="secondary">{t.videos} videos</Typography.Text>
                      </li>
                    ))}
                  </ul>
                ) : (
                  <Typography.Paragraph type="secondary">None: your tags cover what top videos share.</Typography.Paragraph>
                )}
              </>
            )}
          </Card>
        </Col>
      </Row>
    </Space>
  );
}
