import { ControlOutlined, MenuOutlined } from '@ant-design/icons';
import { Alert, App, Button, Drawer, Grid, Layout, Select, Spin, Tooltip, Typography } from 'antd';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useMatch, useNavigate } from 'react-router';
import { chat, type NewConversation } from '../api/chat';
import { download } from '../api/download';
import { ATTACHMENT_ERRORS, friendlyMessage } from '../api/errors';
import { live, type LiveEvent } from '../api/live';
import type { Conversation, Model, Reaction } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { useFilesApi } from '../files/useFilesApi';
import './chat.css';
import { Composer } from './Composer';
import { ConversationSettings, type ChatSettings } from './ConversationSettings';
import { HighlightStyles } from './Markdown';
import { MessageView } from './MessageView';
import { SearchDialog } from './SearchDialog';
import { ShareDialog } from './ShareDialog';
import { Sidebar } from './Sidebar';
import { useConversation } from './useConversation';
import { usePresets } from './usePresets';

function useConversations() {
  const [items, setItems] = useState<Conversation[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // The archived ones, loaded when asked for; `null` until then.
  const [archived, setArchived] = useState<Conversation[] | null>(null);
  const [archivedError, setArchivedError] = useState<string | null>(null);
  const archivedWanted = useRef(false);
  const reloadArchived = useCallback(async () => {
    archivedWanted.current = true;
    try {
      setArchived(await chat.listAll({ archived: true }));
      setArchivedError(null);
    } catch (e) {
      setArchivedError(friendlyMessage(e));
    }
  }, []);
  const reload = useCallback(async () => {
    try {
      setItems(await chat.listAll());
      setError(null);
    } catch (e) {
      setError(friendlyMessage(e));
    } finally {
      setLoaded(true);
    }
    if (archivedWanted.current) await reloadArchived();
  }, [reloadArchived]);
  useEffect(() => {
    void reload();
  }, [reload]);
  /** Puts a conversation as the server sent it into the list it now belongs to. */
  const put = useCallback((c: Conversation) => {
    const upsert = (list: Conversation[]) =>
      list.some((i) => i.id === c.id) ? list.map((i) => (i.id === c.id ? c : i)) : [c, ...list];
    setItems((list) => (c.archived ? list.filter((i) => i.id !== c.id) : upsert(list)));
    setArchived((list) => (list === null ? null : c.archived ? upsert(list) : list.filter((i) => i.id !== c.id)));
  }, []);
  const drop = useCallback((id: string) => {
    setItems((list) => list.filter((i) => i.id !== id));
    setArchived((list) => (list === null ? null : list.filter((i) => i.id !== id)));
  }, []);
  return { items, setItems, loaded, reload, error, archived, archivedError, reloadArchived, put, drop };
}

const noSettings: ChatSettings = { system_prompt: '', params: {} };

/** What a new chat is created with: a preset, and settings given for it (they win). */
interface NewChat {
  presetId?: string;
  settings?: ChatSettings;
}

export default function ChatPage() {
  // One ChatPage for `/` and `/c/:id` (a layout route in App.tsx): starting a conversation
  // navigates without remounting, so the first answer keeps streaming into this page.
  const conversationId = useMatch('/c/:conversationId')?.params.conversationId;
  const navigate = useNavigate();
  const { user, client } = useAuth();
  const { message: toast } = App.useApp();
  const screens = Grid.useBreakpoint();
  const phone = screens.md === false;
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [searchOpen, setSearchOpen] = useState(false);
  const [sharing, setSharing] = useState<Conversation | null>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [showArchived, setShowArchived] = useState(false);
  const conversations = useConversations();
  const files = useFilesApi();
  const presets = usePresets(chat);
  const [newChat, setNewChat] = useState<NewChat>({});
  const [fetched, setFetched] = useState<Conversation | null>(null);
  const [models, setModels] = useState<Model[]>([]);
  const [chosenModel, setChosenModel] = useState<string | undefined>();
  const [remoteTyping, setRemoteTyping] = useState(false);
  const listRef = useRef<HTMLDivElement>(null);

  const listed =
    conversations.items.find((c) => c.id === conversationId) ??
    conversations.archived?.find((c) => c.id === conversationId);
  const active = listed ?? (fetched && fetched.id === conversationId ? fetched : undefined);
  // A conversation not in the lists (archived, say, when opened by its address): ask for it.
  useEffect(() => {
    if (!conversationId || !conversations.loaded || listed) return;
    let cancelled = false;
    chat
      .get(conversationId)
      .then((c) => !cancelled && setFetched(c))
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, [conversationId, conversations.loaded, listed]);
  const defaultModel = models.find((m) => m.default)?.id ?? models[0]?.id;
  const model = chosenModel ?? active?.model ?? defaultModel;

  useEffect(() => {
    chat
      .models()
      .then(setModels)
      .catch(() => setModels([]));
  }, []);
  useEffect(() => {
    setChosenModel(undefined);
    setNewChat({});
  }, [conversationId]);

  const newChatRef = useRef(newChat);
  newChatRef.current = newChat;
  const conv = useConversation(conversationId, {
    model: chosenModel,
    create: () => {
      const { presetId, settings } = newChatRef.current;
      const body: NewConversation = {};
      if (chosenModel) body.model = chosenModel;
      if (presetId) body.preset_id = presetId;
      if (settings) {
        if (settings.system_prompt.trim()) body.system_prompt = settings.system_prompt;
        body.params = settings.params;
      }
      return chat.create(body);
    },
    onCreated: (c) => {
      conversations.put(c);
      navigate(`/c/${c.id}`);
    },
  });

  // Live updates from other tabs and the server.
  const convRef = useRef(conv);
  convRef.current = conv;
  useEffect(
    () =>
      live.subscribe((event: LiveEvent) => {
        const data = (event.data ?? {}) as {
          conversation_id?: string;
          message?: { conversation_id?: string };
          message_id?: string;
          reactions?: Reaction[];
          active?: boolean;
        };
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
          case 'reaction':
            if (cid === conversationId && data.message_id && Array.isArray(data.reactions)) {
              convRef.current.setReactions(data.message_id, data.reactions);
            }
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

  const saved = (updated: Conversation) => {
    conversations.put(updated);
    setFetched((f) => (f && f.id === updated.id ? updated : f));
  };

  const update = async (c: Conversation, patch: Parameters<typeof chat.update>[1]) => {
    try {
      const updated = await chat.update(c.id, patch);
      saved(updated);
      if (updated.archived && !c.archived && c.id === conversationId) navigate('/');
    } catch (e) {
      toast.error(friendlyMessage(e));
    }
  };

  const openArchived = (show: boolean) => {
    setShowArchived(show);
    if (show) void conversations.reloadArchived();
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
      onUnarchive={(c) => update(c, { archived: false })}
      onMove={(c, folder) => update(c, { folder })}
      onTags={(c, tags) => update(c, { tags })}
      onExport={async (c, format) => {
        try {
          await download(
            client,
            `/api/v1/conversations/${c.id}/export?format=${format}`,
            `conversation-${c.id}.${format === 'json' ? 'json' : 'md'}`,
          );
        } catch (e) {
          toast.error(`The export failed: ${friendlyMessage(e)}`);
        }
      }}
      onShare={(c) => {
        setDrawerOpen(false);
        setSharing(c);
      }}
      showArchived={showArchived}
      onShowArchived={openArchived}
      archived={conversations.archived}
      archivedError={conversations.archivedError}
      onDelete={async (c) => {
        try {
          await chat.remove(c.id);
          conversations.drop(c.id);
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
  // A message refused for its files is shown by the composer, which has them back.
  const attachmentRefusal = conv.errorCode !== null && ATTACHMENT_ERRORS.has(conv.errorCode);
  const chosenPreset = presets.items?.find((p) => p.id === newChat.presetId);
  const newChatDraft: ChatSettings =
    newChat.settings ??
    (chosenPreset ? { system_prompt: chosenPreset.system_prompt ?? '', params: chosenPreset.params } : noSettings);

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
          <Tooltip title="Conversation settings">
            <Button
              type="text"
              icon={<ControlOutlined />}
              aria-label="Conversation settings"
              disabled={!!conversationId && !active}
              onClick={() => {
                presets.ensure();
                setSettingsOpen(true);
              }}
            />
          </Tooltip>
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
            {active?.archived && (
              <Alert
                type="info"
                showIcon
                title="This conversation is archived."
                style={{ marginBottom: 12 }}
                action={
                  <Button size="small" onClick={() => void update(active, { archived: false })}>
                    Unarchive
                  </Button>
                }
              />
            )}
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
                {!conversationId && (
                  <div className="empty-chat-preset">
                    <Select
                      aria-label="Start from preset"
                      placeholder="Start from preset"
                      allowClear
                      style={{ minWidth: 200, maxWidth: '100%' }}
                      value={newChat.presetId}
                      options={(presets.items ?? []).map((p) => ({ value: p.id, label: p.name }))}
                      loading={presets.loading}
                      onOpenChange={(o) => o && presets.ensure()}
                      onFocus={() => presets.ensure()}
                      notFoundContent={
                        presets.error ??
                        (presets.loading ? 'Loading presets…' : 'No presets yet; make one in Conversation settings.')
                      }
                      // A preset replaces settings given before it.
                      onChange={(id: string | undefined) => setNewChat({ presetId: id })}
                    />
                    {newChat.settings && (
                      <Typography.Text type="secondary">
                        Your settings apply to this chat.{' '}
                        <Button type="link" size="small" onClick={() => setNewChat((n) => ({ presetId: n.presetId }))}>
                          Reset
                        </Button>
                      </Typography.Text>
                    )}
                  </div>
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
                onReact={conv.react}
                files={files}
              />
            ))}
            {typing && last?.content !== '' && (
              <div className="typing" role="status" aria-label="Assistant is typing">
                Assistant is typing…
              </div>
            )}
            {conv.error && !attachmentRefusal && <Alert type="error" showIcon title={conv.error} role="alert" />}
          </div>
        </div>
        <Composer
          streaming={conv.streaming}
          onSend={(text, attachments) => conv.send(text, undefined, attachments)}
          onStop={() => void conv.stop()}
          files={files}
          error={attachmentRefusal ? conv.error : null}
        />
      </Layout.Content>
      <ConversationSettings
        open={settingsOpen}
        onClose={() => setSettingsOpen(false)}
        api={chat}
        phone={phone}
        conversation={conversationId ? (active ?? null) : null}
        draft={newChatDraft}
        onDraft={(settings) => setNewChat((n) => ({ ...n, settings }))}
        onSaved={saved}
        presets={presets}
      />
      <ShareDialog api={chat} conversation={sharing} onClose={() => setSharing(null)} />
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
