import { CheckCircleOutlined, CloudDownloadOutlined } from '@ant-design/icons';
import { Button, Card, Col, Empty, Flex, Input, Row, Select, Space, Spin, Tag, Typography } from 'antd';
import { formatBytes, formatTokens, installedAs, storedName } from './format';
import { PullProgress } from './Pulls';
import { isFinal, type CatalogEntry, type InstalledModel, type PullStatus } from './types';

export interface CatalogFilters {
  /** Sent to the server: words in names, families and descriptions. */
  q: string;
  /** Sent to the server. */
  capability: string | null;
  /** Sent to the server: bytes. */
  maxSize: number | null;
  /** Applied here. */
  family: string | null;
  quantization: string | null;
  installed: 'all' | 'installed' | 'available';
}

export const NO_FILTERS: CatalogFilters = {
  q: '',
  capability: null,
  maxSize: null,
  family: null,
  quantization: null,
  installed: 'all',
};

const SIZES = [
  { value: 500e6, label: 'Up to 500 MB' },
  { value: 1e9, label: 'Up to 1 GB' },
  { value: 2e9, label: 'Up to 2 GB' },
  { value: 4e9, label: 'Up to 4 GB' },
  { value: 8e9, label: 'Up to 8 GB' },
];

/** The entries the local filters keep (the server applied the others). */
export function applyLocalFilters(entries: CatalogEntry[], installed: InstalledModel[], f: CatalogFilters): CatalogEntry[] {
  return entries.filter((e) => {
    if (f.family && e.family !== f.family) return false;
    if (f.quantization && e.quantization !== f.quantization) return false;
    if (f.installed !== 'all' && (installedAs(e, installed) !== undefined) !== (f.installed === 'installed')) return false;
    return true;
  });
}

function distinct(values: string[]): string[] {
  return [...new Set(values)].sort((a, b) => a.localeCompare(b));
}

/** The pull of this entry that is running, or the last one that ended in this session. */
export function pullOf(entry: CatalogEntry, pulls: PullStatus[]): PullStatus | undefined {
  const name = storedName(entry);
  return pulls.find((p) => p.source === entry.source || p.source === entry.name || p.model === name);
}

export interface CatalogProps {
  /** Every entry (for the filter choices). */
  all: CatalogEntry[];
  /** The server's answer to the current query. */
  entries: CatalogEntry[];
  loading: boolean;
  installed: InstalledModel[];
  filters: CatalogFilters;
  onFilters(f: CatalogFilters): void;
  isAdmin: boolean;
  pulls: PullStatus[];
  /** The entry whose pull is being asked for. */
  starting: string | null;
  cancelling: string | null;
  onPull(entry: CatalogEntry): void;
  onCancel(id: string): void;
}

/** The curated catalog (GET /api/v1/models/catalog): search, filters, and pulls for admins. */
export function Catalog(props: CatalogProps) {
  const { all, entries, loading, installed, filters, onFilters } = props;
  const set = (patch: Partial<CatalogFilters>) => onFilters({ ...filters, ...patch });
  const shown = applyLocalFilters(entries, installed, filters);
  const families = distinct(all.map((e) => e.family));
  const quantizations = distinct(all.map((e) => e.quantization));
  const capabilities = distinct(all.flatMap((e) => e.capabilities));
  const filtered = JSON.stringify(filters) !== JSON.stringify(NO_FILTERS);

  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Flex wrap gap={8} role="search" aria-label="Filter the catalog">
        <Input
          allowClear
          aria-label="Search the catalog"
          placeholder="Search names, families, descriptions"
          value={filters.q}
          onChange={(e) => set({ q: e.target.value })}
          style={{ flex: '2 1 220px' }}
        />
        <Select
          aria-label="Family"
          allowClear
          placeholder="Any family"
          value={filters.family}
          onChange={(v) => set({ family: v ?? null })}
          options={families.map((f) => ({ value: f, label: f }))}
          style={{ flex: '1 1 140px' }}
        />
        <Select
          aria-label="Size"
          allowClear
          placeholder="Any size"
          value={filters.maxSize}
          onChange={(v) => set({ maxSize: v ?? null })}
          options={SIZES}
          style={{ flex: '1 1 140px' }}
        />
        <Select
          aria-label="Quantization"
          allowClear
          placeholder="Any quantization"
          value={filters.quantization}
          onChange={(v) => set({ quantization: v ?? null })}
          options={quantizations.map((q) => ({ value: q, label: q }))}
          style={{ flex: '1 1 160px' }}
        />
        <Select
          aria-label="Capability"
          allowClear
          placeholder="Any capability"
          value={filters.capability}
          onChange={(v) => set({ capability: v ?? null })}
          options={capabilities.map((c) => ({ value: c, label: c }))}
          style={{ flex: '1 1 150px' }}
        />
        <Select
          aria-label="Installed"
          value={filters.installed}
          onChange={(v) => set({ installed: v })}
          options={[
            { value: 'all', label: 'Installed or not' },
            { value: 'installed', label: 'Installed' },
            { value: 'available', label: 'Not installed' },
          ]}
          style={{ flex: '1 1 150px' }}
        />
        {filtered && <Button onClick={() => onFilters(NO_FILTERS)}>Clear filters</Button>}
      </Flex>
      <Typography.Text type="secondary" aria-live="polite">
        {loading ? 'Searching…' : `${shown.length} of ${all.length} models`}
      </Typography.Text>
      <Spin spinning={loading}>
        {shown.length === 0 && !loading ? (
          <Empty description={filtered ? 'No catalog model matches these filters.' : 'The catalog is empty.'} />
        ) : (
          <Row gutter={[16, 16]} role="list" aria-label="Catalog models">
            {shown.map((entry) => (
              <Col key={entry.name} xs={24} md={12} xl={8} role="listitem">
                <CatalogCard entry={entry} {...props} />
              </Col>
            ))}
          </Row>
        )}
      </Spin>
    </Space>
  );
}

function CatalogCard({
  entry,
  installed,
  isAdmin,
  pulls,
  starting,
  cancelling,
  onPull,
  onCancel,
}: CatalogProps & { entry: CatalogEntry }) {
  const as = installedAs(entry, installed);
  const pull = pullOf(entry, pulls);
  const active = pull && !isFinal(pull.state) ? pull : undefined;
  const titleId = `catalog-${entry.name.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  return (
    <Card
      size="small"
      style={{ height: '100%' }}
      aria-labelledby={titleId}
      title={
        <span id={titleId} style={{ whiteSpace: 'normal', wordBreak: 'break-word' }}>
          {entry.name}
        </span>
      }
      extra={
        as ? (
          <Tag icon={<CheckCircleOutlined />} color="success">
            Installed
          </Tag>
        ) : isAdmin && !active ? (
          <Button
            type="primary"
            size="small"
            icon={<CloudDownloadOutlined />}
            loading={starting === entry.name}
            onClick={() => onPull(entry)}
            aria-label={`Pull ${entry.name}`}
          >
            Pull
          </Button>
        ) : null
      }
    >
      <Typography.Paragraph style={{ marginBottom: 8 }}>{entry.description}</Typography.Paragraph>
      <Space wrap size={[4, 4]} style={{ marginBottom: 8 }}>
        <Tag>{entry.family}</Tag>
        <Tag>{entry.parameters} parameters</Tag>
        <Tag>{entry.quantization}</Tag>
        {entry.capabilities.map((c) => (
          <Tag key={c} color="geekblue">
            {c}
          </Tag>
        ))}
      </Space>
      <Typography.Paragraph type="secondary" style={{ marginBottom: 0, fontSize: 13 }}>
        {formatBytes(entry.size_bytes)} · context {formatTokens(entry.context_length)} · {entry.license}
        {as && as.id !== entry.name && <> · installed as <code>{as.id}</code></>}
      </Typography.Paragraph>
      {isAdmin && pull && !as && (
        <div style={{ marginTop: 8 }}>
          <PullProgress status={pull} cancelling={cancelling === pull.id} onCancel={active ? () => onCancel(pull.id) : undefined} />
        </div>
      )}
    </Card>
  );
}
