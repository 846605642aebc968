import { Empty, Input, List, Modal, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { chat } from '../api/chat';
import { friendlyMessage } from '../api/errors';
import type { SearchHit, SnippetPart } from '../api/types';

export function Snippet({ parts }: { parts: SnippetPart[] }) {
  return (
    <>
      {parts.map((p, i) =>
        p.highlight ? (
          <mark key={i} className="hit">
            {p.text}
          </mark>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </>
  );
}

export function SearchDialog({ open, onClose, onOpen }: { open: boolean; onClose(): void; onOpen(hit: SearchHit): void }) {
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<SearchHit[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  useEffect(() => {
    if (!open || !q.trim()) {
      setHits([]);
      return;
    }
    let cancelled = false;
    const t = setTimeout(() => {
      setLoading(true);
      chat
        .search(q.trim())
        .then((items) => {
          if (!cancelled) {
            setHits(items);
            setError(null);
          }
        })
        .catch((e) => !cancelled && setError(friendlyMessage(e)))
        .finally(() => !cancelled && setLoading(false));
    }, 250);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [q, open]);

  return (
    <Modal title="Search conversations" open={open} onCancel={onClose} footer={null} destroyOnHidden>
      <Input.Search
        aria-label="Search"
        placeholder="Words in titles and messages"
        autoFocus
        value={q}
        loading={loading}
        onChange={(e) => setQ(e.target.value)}
      />
      {error && <Typography.Text type="danger">{error}</Typography.Text>}
      {q.trim() && !loading && hits.length === 0 && !error ? (
        <Empty description="Nothing found" style={{ marginTop: 16 }} />
      ) : (
        <List
          aria-label="Search results"
          style={{ marginTop: 8, maxHeight: '60vh', overflow: 'auto' }}
          dataSource={hits}
          renderItem={(hit) => (
            <List.Item
              style={{ cursor: 'pointer' }}
              onClick={() => onOpen(hit)}
              role="link"
              tabIndex={0}
              onKeyDown={(e) => e.key === 'Enter' && onOpen(hit)}
            >
              <List.Item.Meta
                title={hit.kind === 'title' ? <Snippet parts={hit.snippet} /> : hit.conversation_title || 'New chat'}
                description={hit.kind === 'message' ? <Snippet parts={hit.snippet} /> : undefined}
              />
            </List.Item>
          )}
        />
      )}
    </Modal>
  );
}
