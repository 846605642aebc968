import { ArrowLeftOutlined, ReloadOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Flex, Grid, Space, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link } from 'react-router';
import { ApiError, friendlyMessage } from '../api/errors';
import { query } from '../api/query';
import { useAuth } from '../auth/AuthContext';
import { Catalog, NO_FILTERS, type CatalogFilters } from './Catalog';
import { InstalledModels } from './InstalledModels';
import { PullsPanel } from './Pulls';
import type { CatalogEntry, CatalogPage, InstalledModel, PullStatus } from './types';
import { usePulls } from './usePulls';

/** Pause after typing before the catalog is searched. */
const SEARCH_DELAY_MS = 250;

/** The models page: what is installed, the catalog, and for admins pulls and deletions. */
export default function ModelsPage() {
  const { client, user } = useAuth();
  const isAdmin = user?.role === 'admin';
  const { message } = App.useApp();
  const screens = Grid.useBreakpoint();

  const [installed, setInstalled] = useState<InstalledModel[]>([]);
  const [installedLoading, setInstalledLoading] = useState(true);
  const [installedError, setInstalledError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);

  const [allEntries, setAllEntries] = useState<CatalogEntry[]>([]);
  const [entries, setEntries] = useState<CatalogEntry[]>([]);
  const [catalogLoading, setCatalogLoading] = useState(true);
  const [catalogError, setCatalogError] = useState<string | null>(null);
  const [filters, setFilters] = useState<CatalogFilters>(NO_FILTERS);
  const [starting, setStarting] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const loadInstalled = useCallback(async () => {
    setInstalledLoading(true);
    try {
      setInstalled((await client.get<{ items: InstalledModel[] }>('/api/v1/models')).items);
      setInstalledError(null);
    } catch (e) {
      setInstalledError(`Cannot list the installed models: ${friendlyMessage(e)}`);
    } finally {
      setInstalledLoading(false);
    }
  }, [client]);

  useEffect(() => {
    void loadInstalled();
  }, [loadInstalled]);

  const onFinished = useCallback(
    (s: PullStatus) => {
      if (s.state === 'completed') {
        message.success(`${s.model} is installed.`);
        void loadInstalled();
      } else if (s.state === 'failed') {
        message.error(`The pull of ${s.model} failed${s.error ? `: ${s.error}` : '.'}`);
      } else {
        message.info(`The pull of ${s.model} was cancelled.`);
      }
    },
    [message, loadInstalled],
  );
  const pulls = usePulls(client, isAdmin, onFinished);

  // The catalog: the server filters by words, capability and size (the search waits for a
  // pause in typing; a newer query wins over an older answer).
  const search = query({ q: filters.q.trim(), capability: filters.capability, max_size: filters.maxSize });
  useEffect(() => {
    const controller = new AbortController();
    const delay = search ? SEARCH_DELAY_MS : 0;
    const timer = setTimeout(async () => {
      setCatalogLoading(true);
      try {
        const page = await client.get<CatalogPage>(`/api/v1/models/catalog${search}`, { signal: controller.signal });
        setEntries(page.items);
        if (!search) setAllEntries(page.items);
        setCatalogError(null);
      } catch (e) {
        if (controller.signal.aborted) return;
        setCatalogError(`Cannot search the catalog: ${friendlyMessage(e)}`);
      } finally {
        if (!controller.signal.aborted) setCatalogLoading(false);
      }
    }, delay);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [client, search]);

  const pull = async (entry: CatalogEntry) => {
    setStarting(entry.name);
    setActionError(null);
    try {
      const s = await pulls.start(entry.name);
      message.info(`Pulling ${s.model}…`);
    } catch (e) {
      setActionError(`${entry.name} was not pulled: ${friendlyMessage(e)}`);
    } finally {
      setStarting(null);
    }
  };

  const cancel = async (id: string) => {
    setCancelling(id);
    setActionError(null);
    try {
      await pulls.cancel(id);
    } catch (e) {
      setActionError(
        e instanceof ApiError && e.status === 404
          ? 'That pull is not running any more.'
          : `The pull was not cancelled: ${friendlyMessage(e)}`,
      );
      void pulls.reload();
    } finally {
      setCancelling(null);
    }
  };

  const remove = async (m: InstalledModel) => {
    setDeleting(m.id);
    setActionError(null);
    try {
      await client.delete(`/api/v1/models/${encodeURIComponent(m.id)}`);
      message.success(`${m.id} was deleted.`);
    } catch (e) {
      setActionError(
        e instanceof ApiError && e.status === 404
          ? `${m.id} is not installed any more.`
          : `${m.id} was not deleted: ${friendlyMessage(e)}`,
      );
    } finally {
      setDeleting(null);
      void loadInstalled();
    }
  };

  return (
    <main style={{ maxWidth: 1200, margin: '0 auto', padding: screens.md ? 24 : 12 }}>
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 8 }}>
        <Link to="/">
          <ArrowLeftOutlined /> Back to chat
        </Link>
        <Button
          icon={<ReloadOutlined />}
          onClick={() => {
            void loadInstalled();
            void pulls.reload();
          }}
        >
          Refresh
        </Button>
      </Flex>
      <Typography.Title level={2}>Models</Typography.Title>
      {actionError && (
        <Alert
          type="error"
          showIcon
          role="alert"
          closable={{ onClose: () => setActionError(null), 'aria-label': 'Dismiss' }}
          title={actionError}
          style={{ marginBottom: 16 }}
        />
      )}
      <Space orientation="vertical" size="large" style={{ width: '100%' }}>
        <Card>
          <section aria-labelledby="installed-title">
            <Typography.Title level={4} id="installed-title">
              Installed
            </Typography.Title>
            {installedError && <Alert type="error" showIcon role="alert" title={installedError} style={{ marginBottom: 12 }} />}
            <InstalledModels
              models={installed}
              loading={installedLoading}
              isAdmin={isAdmin}
              deleting={deleting}
              onDelete={(m) => void remove(m)}
            />
          </section>
        </Card>
        {isAdmin && (
          <Card>
            <section aria-labelledby="pulls-title">
              <Typography.Title level={4} id="pulls-title">
                Pulls
              </Typography.Title>
              <PullsPanel
                pulls={pulls.pulls}
                loading={pulls.loading}
                error={pulls.error}
                cancelling={cancelling}
                onStart={async (source, sha256) => {
                  const s = await pulls.start(source, sha256);
                  message.info(`Pulling ${s.model}…`);
                }}
                onCancel={(id) => void cancel(id)}
              />
            </section>
          </Card>
        )}
        <Card>
          <section aria-labelledby="catalog-title">
            <Typography.Title level={4} id="catalog-title">
              Catalog
            </Typography.Title>
            <Typography.Paragraph type="secondary">
              Curated GGUF models that run on this server’s own engine.
              {isAdmin ? ' Pull one to install it.' : ' An administrator can install them.'}
            </Typography.Paragraph>
            {catalogError && <Alert type="error" showIcon role="alert" title={catalogError} style={{ marginBottom: 12 }} />}
            <Catalog
              all={allEntries}
              entries={entries}
              loading={catalogLoading}
              installed={installed}
              filters={filters}
              onFilters={setFilters}
              isAdmin={isAdmin}
              pulls={pulls.pulls}
              starting={starting}
              cancelling={cancelling}
              onPull={(e) => void pull(e)}
              onCancel={(id) => void cancel(id)}
            />
          </section>
        </Card>
      </Space>
    </main>
  );
}
