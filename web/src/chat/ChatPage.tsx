import { MenuOutlined } from '@ant-design/icons';
import { Alert, App, Button, Drawer, Grid, Layout, Select, Spin, Typography } from 'antd';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate, useParams } from 'react-router';
import { chat } from '../api/chat';
import { friendlyMessage } from '../api/errors';
import { live, type LiveEvent } from '../api/live';
import type { Conversation, Model } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { Composer } from './Composer';
import { HighlightStyles } from './Markdown';
import { MessageView } from './MessageView';
import { SearchDialog } from './SearchDialog';
import { Sidebar } from './Sidebar';
import { useConversation } from './useConversation';

function useConversations() {
  const [items, setItems] = useState<Conversation[]>([]);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      setItems(await chat.listAll());
      setError(null);
    } catch (e) {
      setError(friendlyMessage(e));
    }
  }, []);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { items, setItems, reload, error };
}

export default function ChatPage() {
  const { conversationId } = useParams();
  const navigate = useNavigate();
  const { user } = useAuth();
  const { message: toast } = App.useApp();
  const screens = Grid.useBreakpoint();
  const phone = screens.md === false;
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [searchOpen, setSearchOpen] = useState(false);
  const conversations = useConversations();
  const [models, setModels] = useState<Model[]>([]);
  const [chosenModel, setChosenModel] = useState<string | undefined>();
  const [remoteTyping, setRemoteTyping] = useState(false);
  const listRef = useRef<HTMLDivElement>(null);

  const active = conversations.items.find((c) => c.id === conversationId);
  const defaultModel = models.find((m) => m.default)?.id ?? models[0]?.id;
  const model = chosenModel ?? active?.model ?? defaultModel;

  useEffect(() => {
    chat
      .models()
      .then(setModels)
      .catch(() => setModels([]));
  }, []);
  useEffect(() => setChosenModel(undefined), [conversationId]);

  const conv = useConversation(conversationId, {
    model: chosenModel,
    create: () => chat.create(chosenModel ? { model: chosenModel } : {}),
    onCreated: (c) => {
      conversations.setItems((items) => [c, ...items.filter((i) => i.id !== c.id)]);
      navigate(`/c/${c.id}`);
    },
  });

  // Live updates from other tabs and the server.
  const convRef = useRef(conv);
  convRef.current = conv;
  useEffect(
    () =>
      live.subscribe((event: LiveEvent) => {
        const data = (event.data ?? {}) as { conversation_id?: string; message?: { conversation_id?: string }; active?: boolean };
        const cid = data.conversation_id ?? data.message?.conversation_id;
        switch (event.type) {
          case 'conversations.changed':
          case 'conversation.updated':
          case 'conversation.deleted':
            void conversations.reload();
            break;
          case 'message.created':
          case 'message.completed':
            if (cid && cid === conversationId && !convRef.current.isStreaming(cid)) void convRef.current.reload();
            if (event.type === 'message.completed' && cid === conversationId) setRemoteTyping(false);
            break;
          case 'typing':
            if (cid === conversationId) setRemoteTyping(!!data.active);
            break;
          case 'resync':
            void conversations.reload();
            void convRef.current.reload();
            break;
        }
      }),
    [conversationId, conversations.reload],
  );
  useEffect(() => setRemoteTyping(false), [conversationId]);

  // Esc stops the answer wherever the focus is.
  useEffect(() => {
    if (!conv.streaming) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') void conv.stop();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [conv.streaming, conv.stop]);

  // Follow the answer as it grows, unless the reader scrolled up.
  const last = conv.messages[conv.messages.length - 1];
  useEffect(() => {
    const el = listRef.current;
    if (!el) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 160 || conv.streaming) el.scrollTop = el.scrollHeight;
  }, [last?.content, conv.messages.length, conv.streaming]);

  const update = async (c: Conversation, patch: Parameters<typeof chat.update>[1]) => {
    try {
      const updated = await chat.update(c.id, patch);
      conversations.setItems((items) =>
        updated.archived ? items.filter((i) => i.id !== c.id) : items.map((i) => (i.id === c.id ? updated : i)),
      );
      if (updated.archived && c.id === conversationId) navigate('/');
    } catch (e) {
      toast.error(friendlyMessage(e));
    }
  };

  const sidebar = (
    <Sidebar
      conversations={conversations.items}
      activeId={conversationId}
      userName={user?.name}
      isAdmin={user?.role === 'admin'}
      onNew={() => {
        setDrawerOpen(false);
        navigate('/');
      }}
      onSearch={() => setSearchOpen(true)}
      onNavigate={() => setDrawerOpen(false)}
      onRename={(c, title) => update(c, { title })}
      onPin={(c, pinned) => update(c, { pinned })}
      onArchive={(c) => update(c, { archived: true })}
      onDelete={async (c) => {
        try {
          await chat.remove(c.id);
          conversations.setItems((items) => items.filter((i) => i.id !== c.id));
          if (c.id === conversationId) navigate('/');
        } catch (e) {
          toast.error(friendlyMessage(e));
        }
      }}
    />
  );

  const modelOptions = useMemo(
    () => models.map((m) => ({ value: m.id, label: m.default ? `${m.id} (default)` : m.id })),
    [models],
  );

  const typing = conv.streaming || remoteTyping;

  return (
    <Layout className="chat-layout" hasSider>
      <HighlightStyles />
      {phone ? (
        <Drawer
          placement="left"
          open={drawerOpen}
          onClose={() => setDrawerOpen(false)}
          size={300}
          styles={{ body: { padding: 0, display: 'flex', flexDirection: 'column' } }}
          title="Confab"
        >
          {sidebar}
        </Drawer>
      ) : (
        <Layout.Sider width={280} theme="light" className="chat-sider">
          {sidebar}
        </Layout.Sider>
      )}
      <Layout.Content className="chat-main">
        <header className="chat-header">
          {phone && (
            <Button type="text" icon={<MenuOutlined />} aria-label="Open sidebar" onClick={() => setDrawerOpen(true)} />
          )}
          <h1>{active?.title || (conversationId ? 'Chat' : 'New chat')}</h1>
          <Select
            aria-label="Model"
            style={{ minWidth: 160, maxWidth: 280 }}
            placeholder={models.length ? 'Model' : 'No models'}
            value={model}
            options={modelOptions}
            disabled={conv.streaming || models.length === 0}
            onChange={(value: string) => {
              setChosenModel(value);
              if (active) void update(active, { model: value });
            }}
          />
        </header>
        <div className="message-list" ref={listRef} aria-label="Messages" role="log" aria-live="polite">
          <div className="message-column">
            {conversations.error && <Alert type="error" showIcon title={conversations.error} />}
            {conv.loading && (
              <div className="center-fill" style={{ height: 200 }}>
                <Spin />
              </div>
            )}
            {!conv.loading && conv.messages.length === 0 && (
              <div className="empty-chat">
                <Typography.Title level={3}>How can I help?</Typography.Title>
                {models.length === 0 && (
                  <Typography.Paragraph type="secondary">
                    No model is installed yet; an administrator can add one.
                  </Typography.Paragraph>
                )}
              </div>
            )}
            {conv.messages.map((m) => (
              <MessageView
                key={m.id}
                message={m}
                streaming={m.id === conv.streamingId || (m.status === 'streaming' && conv.streaming)}
                busy={conv.streaming}
                onRegenerate={conv.regenerate}
                onEdit={conv.edit}
                onSwitch={conv.switchBranch}
              />
            ))}
            {typing && last?.content !== '' && (
              <div className="typing" role="status" aria-label="Assistant is typing">
                Assistant is typing…
              </div>
            )}
            {conv.error && <Alert type="error" showIcon title={conv.error} role="alert" />}
          </div>
        </div>
        <Composer streaming={conv.streaming} onSend={(t) => void conv.send(t)} onStop={() => void conv.stop()} />
      </Layout.Content>
      <SearchDialog
        open={searchOpen}
        onClose={() => setSearchOpen(false)}
        onOpen={(hit) => {
          setSearchOpen(false);
          setDrawerOpen(false);
          navigate(`/c/${hit.conversation_id}`);
        }}
      />
    </Layout>
  );
}
