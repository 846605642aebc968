import {
  AppstoreOutlined,
  DashboardOutlined,
  DeleteOutlined,
  DownloadOutlined,
  DownOutlined,
  EditOutlined,
  FolderOpenOutlined,
  FolderOutlined,
  InboxOutlined,
  MoreOutlined,
  PlusOutlined,
  PushpinOutlined,
  RiseOutlined,
  RightOutlined,
  SearchOutlined,
  SettingOutlined,
  ShareAltOutlined,
  TagsOutlined,
  UndoOutlined,
} from '@ant-design/icons';
import { Alert, App, AutoComplete, Button, Dropdown, Input, Modal, Select, Space, Spin, Tooltip, Typography } from 'antd';
import type { MenuProps } from 'antd';
import { useEffect, useMemo, useState } from 'react';
import { Link } from 'react-router';
import { LIMITS, type Conversation } from '../api/types';
import { filterByTag, foldersOf, groupConversations, tagsOf } from './grouping';

export interface SidebarProps {
  conversations: Conversation[];
  activeId?: string;
  onNew(): void;
  onSearch(): void;
  onRename(c: Conversation, title: string): void;
  onPin(c: Conversation, pinned: boolean): void;
  onArchive(c: Conversation): void;
  onUnarchive?(c: Conversation): void;
  onDelete(c: Conversation): void;
  /** Moves a conversation into a folder; `null` takes it out of its folder. */
  onMove?(c: Conversation, folder: string | null): void;
  onTags?(c: Conversation, tags: string[]): void;
  /** Download the conversation: JSON (every branch, re-importable) or Markdown. */
  onExport?(c: Conversation, format: 'json' | 'markdown'): void;
  /** Opens the conversation's share links. */
  onShare?(c: Conversation): void;
  onNavigate?(): void;
  /** Shows the archived conversations instead of the others. */
  showArchived?: boolean;
  onShowArchived?(show: boolean): void;
  /** The archived conversations; `null` while they load. */
  archived?: Conversation[] | null;
  archivedError?: string | null;
  userName?: string;
  /** Admins get a link to the admin console. */
  isAdmin?: boolean;
}

const COLLAPSED_KEY = 'confab.collapsedFolders';

function storedCollapsed(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(COLLAPSED_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((f): f is string => typeof f === 'string') : [];
  } catch {
    return [];
  }
}

function folderDomId(folder: string): string {
  return `folder-${Array.from(folder, (ch) => ch.codePointAt(0)!.toString(36)).join('-')}`;
}

export function Sidebar(props: SidebarProps) {
  const { conversations, activeId, showArchived = false } = props;
  const { modal } = App.useApp();
  const [tag, setTag] = useState<string | null>(null);
  const tags = useMemo(() => tagsOf(conversations), [conversations]);
  const folders = useMemo(() => foldersOf(conversations), [conversations]);
  // A filter on a tag nobody has any more is no filter.
  const activeTag = tag && tags.includes(tag) ? tag : null;
  const groups = useMemo(() => groupConversations(filterByTag(conversations, activeTag)), [conversations, activeTag]);
  const [collapsed, setCollapsed] = useState<string[]>(storedCollapsed);
  const [renaming, setRenaming] = useState<Conversation | null>(null);
  const [title, setTitle] = useState('');
  const [moving, setMoving] = useState<Conversation | null>(null);
  const [folder, setFolder] = useState('');
  const [tagging, setTagging] = useState<Conversation | null>(null);
  const [draftTags, setDraftTags] = useState<string[]>([]);

  useEffect(() => {
    try {
      localStorage.setItem(COLLAPSED_KEY, JSON.stringify(collapsed));
    } catch {
      // storage unavailable: folders open again on the next visit
    }
  }, [collapsed]);

  const toggleFolder = (name: string) =>
    setCollapsed((c) => (c.includes(name) ? c.filter((f) => f !== name) : [...c, name]));

  const confirmDelete = (c: Conversation, name: string) =>
    modal.confirm({
      title: 'Delete this conversation?',
      content: `“${name}” and all its messages will be deleted.`,
      okText: 'Delete',
      okButtonProps: { danger: true },
      onOk: () => props.onDelete(c),
    });

  const move = (to: string | null) => {
    if (moving) props.onMove?.(moving, to);
    setMoving(null);
  };
  const tooManyTags = draftTags.length > LIMITS.tags;
  const saveTags = () => {
    if (!tagging || tooManyTags) return;
    props.onTags?.(
      tagging,
      draftTags.map((t) => t.trim().toLowerCase()).filter((t) => t),
    );
    setTagging(null);
  };

  function actions(c: Conversation, name: string): MenuProps {
    if (c.archived) {
      return {
        items: [
          { key: 'unarchive', icon: <UndoOutlined />, label: 'Unarchive' },
          { key: 'delete', icon: <DeleteOutlined />, label: 'Delete', danger: true },
        ],
        onClick: ({ key }) => {
          if (key === 'unarchive') props.onUnarchive?.(c);
          else if (key === 'delete') confirmDelete(c, name);
        },
      };
    }
    return {
      items: [
        { key: 'rename', icon: <EditOutlined />, label: 'Rename' },
        { key: 'pin', icon: <PushpinOutlined />, label: c.pinned ? 'Unpin' : 'Pin' },
        ...(props.onMove ? [{ key: 'move', icon: <FolderOutlined />, label: 'Move to folder…' }] : []),
        ...(props.onTags ? [{ key: 'tags', icon: <TagsOutlined />, label: 'Edit tags…' }] : []),
        ...(props.onExport
          ? [
              { key: 'export-json', icon: <DownloadOutlined />, label: 'Export as JSON' },
              { key: 'export-markdown', icon: <DownloadOutlined />, label: 'Export as Markdown' },
            ]
          : []),
        ...(props.onShare ? [{ key: 'share', icon: <ShareAltOutlined />, label: 'Share link…' }] : []),
        { key: 'archive', icon: <InboxOutlined />, label: 'Archive' },
        { key: 'delete', icon: <DeleteOutlined />, label: 'Delete', danger: true },
      ],
      onClick: ({ key }) => {
        if (key === 'export-json') props.onExport?.(c, 'json');
        else if (key === 'export-markdown') props.onExport?.(c, 'markdown');
        else if (key === 'share') props.onShare?.(c);
        else if (key === 'rename') {
          setTitle(c.title);
          setRenaming(c);
        } else if (key === 'pin') props.onPin(c, !c.pinned);
        else if (key === 'move') {
          setFolder(c.folder ?? '');
          setMoving(c);
        } else if (key === 'tags') {
          setDraftTags(c.tags ?? []);
          setTagging(c);
        } else if (key === 'archive') props.onArchive(c);
        else if (key === 'delete') confirmDelete(c, name);
      },
    };
  }

  function item(c: Conversation) {
    const name = c.title || 'New chat';
    return (
      <li key={c.id} className={`conv-item${c.id === activeId ? ' active' : ''}`}>
        <div className="conv-main">
          <Link
            to={`/c/${c.id}`}
            aria-current={c.id === activeId ? 'page' : undefined}
            onClick={props.onNavigate}
            title={name}
          >
            {c.pinned && <PushpinOutlined style={{ marginRight: 6 }} aria-hidden />}
            {name}
          </Link>
          {!c.archived && c.tags?.length > 0 && (
            <div className="conv-tags">
              {c.tags.map((t) => (
                <button
                  key={t}
                  type="button"
                  className={`conv-tag${t === activeTag ? ' active' : ''}`}
                  aria-label={`Filter by tag ${t}`}
                  aria-pressed={t === activeTag}
                  onClick={() => setTag(t === activeTag ? null : t)}
                >
                  #{t}
                </button>
              ))}
            </div>
          )}
        </div>
        <Dropdown trigger={['click']} menu={actions(c, name)}>
          <Button type="text" size="small" icon={<MoreOutlined />} aria-label={`Actions for ${name}`} />
        </Dropdown>
      </li>
    );
  }

  const archivedList = useMemo(
    () =>
      props.archived
        ? [...props.archived].sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at))
        : null,
    [props.archived],
  );

  return (
    <nav className="chat-sidebar-nav" aria-label="Conversations" style={{ display: 'contents' }}>
      <div className="sidebar-top">
        <Button type="primary" icon={<PlusOutlined />} onClick={props.onNew} style={{ flex: 1 }}>
          New chat
        </Button>
        <Button icon={<SearchOutlined />} aria-label="Search conversations" onClick={props.onSearch} />
        {props.onShowArchived && (
          <Tooltip title={showArchived ? 'Back to conversations' : 'Archived conversations'}>
            <Button
              icon={<InboxOutlined />}
              aria-label="Archived conversations"
              aria-pressed={showArchived}
              type={showArchived ? 'primary' : 'default'}
              ghost={showArchived}
              onClick={() => props.onShowArchived?.(!showArchived)}
            />
          </Tooltip>
        )}
      </div>
      {showArchived ? (
        <div className="sidebar-list">
          <section className="sidebar-group" aria-labelledby="group-archived">
            <div className="sidebar-group-row">
              <h2 className="sidebar-group-title" id="group-archived">
                Archived
              </h2>
              <Button size="small" type="link" onClick={() => props.onShowArchived?.(false)}>
                Back to conversations
              </Button>
            </div>
            {props.archivedError && <Alert type="error" showIcon title={props.archivedError} />}
            {!archivedList && !props.archivedError && (
              <div className="center-fill" style={{ padding: 16 }}>
                <Spin size="small" aria-label="Loading archived conversations" />
              </div>
            )}
            {archivedList && archivedList.length === 0 && (
              <Typography.Paragraph type="secondary" style={{ padding: 8 }}>
                No archived conversations.
              </Typography.Paragraph>
            )}
            {archivedList && archivedList.length > 0 && <ul>{archivedList.map(item)}</ul>}
          </section>
        </div>
      ) : (
        <div className="sidebar-list">
          {tags.length > 0 && (
            <div className="sidebar-filter">
              <Select
                aria-label="Filter by tag"
                placeholder="Filter by tag"
                size="small"
                style={{ flex: 1, minWidth: 0 }}
                value={activeTag ?? undefined}
                options={tags.map((t) => ({ value: t, label: `#${t}` }))}
                onChange={(t: string) => setTag(t)}
                showSearch
              />
              {activeTag && (
                <Button size="small" aria-label="Clear tag filter" onClick={() => setTag(null)}>
                  Clear
                </Button>
              )}
            </div>
          )}
          {groups.length === 0 && (
            <Typography.Paragraph type="secondary" style={{ padding: 8 }}>
              No conversations yet.
            </Typography.Paragraph>
          )}
          {groups.map((g) => {
            const titleId = `group-${g.kind === 'folder' ? folderDomId(g.folder!) : g.key}`;
            if (g.kind !== 'folder') {
              return (
                <section key={g.key} className="sidebar-group" aria-labelledby={titleId}>
                  <h2 className="sidebar-group-title" id={titleId}>
                    {g.label}
                  </h2>
                  <ul>{g.items.map(item)}</ul>
                </section>
              );
            }
            const open = !collapsed.includes(g.folder!);
            const listId = `${titleId}-list`;
            return (
              <section key={g.key} className="sidebar-group sidebar-folder" aria-labelledby={titleId}>
                <h2 className="sidebar-group-title" id={titleId}>
                  <button
                    type="button"
                    className="sidebar-folder-toggle"
                    aria-expanded={open}
                    aria-controls={listId}
                    onClick={() => toggleFolder(g.folder!)}
                  >
                    {open ? <DownOutlined aria-hidden /> : <RightOutlined aria-hidden />}
                    <FolderOutlined aria-hidden />
                    <span className="sidebar-folder-name">{g.label}</span>
                    <span className="sidebar-folder-count" aria-hidden>
                      {g.items.length}
                    </span>
                  </button>
                </h2>
                {open && <ul id={listId}>{g.items.map(item)}</ul>}
              </section>
            );
          })}
        </div>
      )}
      <div className="sidebar-bottom">
        <Typography.Text ellipsis style={{ flex: 1 }}>
          {props.userName}
        </Typography.Text>
        <Link to="/seo" aria-label="SEO studio">
          <Button type="text" icon={<RiseOutlined />} tabIndex={-1} aria-hidden />
        </Link>
        <Link to="/files" aria-label="Files">
          <Button type="text" icon={<FolderOpenOutlined />} tabIndex={-1} aria-hidden />
        </Link>
        <Link to="/models" aria-label="Models">
          <Button type="text" icon={<AppstoreOutlined />} tabIndex={-1} aria-hidden />
        </Link>
        {props.isAdmin && (
          <Link to="/admin" aria-label="Admin">
            <Button type="text" icon={<DashboardOutlined />} tabIndex={-1} aria-hidden />
          </Link>
        )}
        <Link to="/settings" aria-label="Settings">
          <Button type="text" icon={<SettingOutlined />} tabIndex={-1} aria-hidden />
        </Link>
      </div>
      <Modal
        title="Rename conversation"
        open={renaming !== null}
        okText="Save"
        onCancel={() => setRenaming(null)}
        onOk={() => {
          if (renaming && title.trim()) props.onRename(renaming, title.trim());
          setRenaming(null);
        }}
        destroyOnHidden
      >
        <Input
          aria-label="Conversation title"
          value={title}
          autoFocus
          maxLength={LIMITS.title}
          onChange={(e) => setTitle(e.target.value)}
          onPressEnter={() => {
            if (renaming && title.trim()) props.onRename(renaming, title.trim());
            setRenaming(null);
          }}
        />
      </Modal>
      <Modal
        title="Move to folder"
        open={moving !== null}
        onCancel={() => setMoving(null)}
        destroyOnHidden
        footer={
          <Space wrap style={{ justifyContent: 'flex-end', width: '100%' }}>
            <Button onClick={() => move(null)} disabled={!moving?.folder}>
              No folder
            </Button>
            <Button onClick={() => setMoving(null)}>Cancel</Button>
            <Button type="primary" disabled={!folder.trim()} onClick={() => move(folder.trim())}>
              Move
            </Button>
          </Space>
        }
      >
        <Typography.Paragraph type="secondary">
          Choose a folder or type the name of a new one.
        </Typography.Paragraph>
        <AutoComplete
          aria-label="Folder"
          placeholder="Folder name"
          style={{ width: '100%' }}
          value={folder}
          autoFocus
          maxLength={LIMITS.folder}
          options={folders.map((f) => ({ value: f, label: f }))}
          filterOption={(input, option) =>
            String(option?.value ?? '')
              .toLowerCase()
              .includes(input.trim().toLowerCase())
          }
          onChange={(v: string) => setFolder(v)}
        />
        {folders.length > 0 && (
          <div className="folder-choices" role="group" aria-label="Existing folders">
            {folders.map((f) => (
              <Button
                key={f}
                size="small"
                icon={<FolderOutlined aria-hidden />}
                type={f === folder.trim() ? 'primary' : 'default'}
                aria-pressed={f === folder.trim()}
                onClick={() => setFolder(f)}
              >
                {f}
              </Button>
            ))}
          </div>
        )}
      </Modal>
      <Modal
        title="Edit tags"
        open={tagging !== null}
        okText="Save"
        okButtonProps={{ disabled: tooManyTags }}
        onCancel={() => setTagging(null)}
        onOk={saveTags}
        destroyOnHidden
      >
        <Typography.Paragraph type="secondary">
          Type a tag and press Enter; up to {LIMITS.tags} tags of {LIMITS.tag} characters.
        </Typography.Paragraph>
        <Select
          mode="tags"
          aria-label="Tags"
          placeholder="Tags"
          style={{ width: '100%' }}
          value={draftTags}
          tokenSeparators={[',']}
          options={tags.map((t) => ({ value: t, label: t }))}
          onChange={(v: string[]) => setDraftTags(v.map((t) => t.slice(0, LIMITS.tag)))}
          autoFocus
        />
        {tooManyTags && (
          <Typography.Text type="danger" role="alert">
            At most {LIMITS.tags} tags; remove {draftTags.length - LIMITS.tags}.
          </Typography.Text>
        )}
      </Modal>
    </nav>
  );
}
