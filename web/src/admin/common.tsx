// Small pieces the admin screens share.
import { Alert, Button } from 'antd';
import type { CursorPages } from './useCursorPages';

/** A screen's error in words, which the admin can dismiss. */
export function ErrorAlert({ error, onClose }: { error: string | null; onClose(): void }) {
  if (!error) return null;
  return <Alert type="error" showIcon role="alert" title={error} closable={{ onClose }} style={{ marginBottom: 12 }} />;
}

/** "Load more" under a paged list, while there is a next page. */
export function LoadMore({ pages }: { pages: Pick<CursorPages<unknown>, 'cursor' | 'loading' | 'loadMore'> }) {
  if (!pages.cursor) return null;
  return (
    <div style={{ textAlign: 'center', marginTop: 12 }}>
      <Button onClick={() => void pages.loadMore()} loading={pages.loading}>
        Load more
      </Button>
    </div>
  );
}
