import {
  DeleteOutlined,
  EditOutlined,
  InboxOutlined,
  MoreOutlined,
  PlusOutlined,
  PushpinOutlined,
  SearchOutlined,
  SettingOutlined,
  AppstoreOutlined,
  DashboardOutlined,
} from '@ant-design/icons';
import { App, Button, Dropdown, Input, Modal, Typography } from 'antd';
import { useMemo, useState } from 'react';
import { Link } from 'react-router';
import type { Conversation } from '../api/types';
import { groupConversations } from './grouping';

export interface SidebarProps {
  conversations: Conversation[];
  activeId?: string;
  onNew(): void;
  onSearch(): void;
  onRename(c: Conversation, title: string): void;
  onPin(c: Conversation, pinned: boolean): void;
  onArchive(c: Conversation): void;
  onDelete(c: Conversation): void;
  onNavigate?(): void;
  userName?: string;
  /** Admins get a link to the admin console. */
  isAdmin?: boolean;
}

export function Sidebar(props: SidebarProps) {
  const { conversations, activeId } = props;
  const { modal } = App.useApp();
  const groups = useMemo(() => groupConversations(conversations), [conversations]);
  const [renaming, setRenaming] = useState<Conversation | null>(null);
  const [title, setTitle] = useState('');

  return (
    <nav className="chat-sidebar-nav" aria-label="Conversations" style={{ display: 'contents' }}>
      <div className="sidebar-top">
        <Button type="primary" icon={<PlusOutlined />} onClick={props.onNew} style={{ flex: 1 }}>
          New chat
        </Button>
        <Button icon={<SearchOutlined />} aria-label="Search conversations" onClick={props.onSearch} />
      </div>
      <div className="sidebar-list">
        {groups.length === 0 && (
          <Typography.Paragraph type="secondary" style={{ padding: 8 }}>
            No conversations yet.
          </Typography.Paragraph>
        )}
        {groups.map((g) => (
          <section key={g.key} className="sidebar-group" aria-labelledby={`group-${g.key}`}>
            <h2 className="sidebar-group-title" id={`group-${g.key}`}>
              {g.label}
            </h2>
            <ul>
              {g.items.map((c) => {
                const name = c.title || 'New chat';
                return (
                  <li key={c.id} className={`conv-item${c.id === activeId ? ' active' : ''}`}>
                    <Link
                      to={`/c/${c.id}`}
                      aria-current={c.id === activeId ? 'page' : undefined}
                      onClick={props.onNavigate}
                      title={name}
                    >
                      {c.pinned && <PushpinOutlined style={{ marginRight: 6 }} aria-hidden />}
                      {name}
                    </Link>
                    <Dropdown
                      trigger={['click']}
                      menu={{
                        items: [
                          { key: 'rename', icon: <EditOutlined />, label: 'Rename' },
                          { key: 'pin', icon: <PushpinOutlined />, label: c.pinned ? 'Unpin' : 'Pin' },
                          { key: 'archive', icon: <InboxOutlined />, label: 'Archive' },
                          { key: 'delete', icon: <DeleteOutlined />, label: 'Delete', danger: true },
                        ],
                        onClick: ({ key }) => {
                          if (key === 'rename') {
                            setTitle(c.title);
                            setRenaming(c);
                          } else if (key === 'pin') props.onPin(c, !c.pinned);
                          else if (key === 'archive') props.onArchive(c);
                          else if (key === 'delete') {
                            modal.confirm({
                              title: 'Delete this conversation?',
                              content: `“${name}” and all its messages will be deleted.`,
                              okText: 'Delete',
                              okButtonProps: { danger: true },
                              onOk: () => props.onDelete(c),
                            });
                          }
                        },
                      }}
                    >
                      <Button
                        type="text"
                        size="small"
                        icon={<MoreOutlined />}
                        aria-label={`Actions for ${name}`}
                      />
                    </Dropdown>
                  </li>
                );
              })}
            </ul>
          </section>
        ))}
      </div>
      <div className="sidebar-bottom">
        <Typography.Text ellipsis style={{ flex: 1 }}>
          {props.userName}
        </Typography.Text>
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
          maxLength={200}
          onChange={(e) => setTitle(e.target.value)}
          onPressEnter={() => {
            if (renaming && title.trim()) props.onRename(renaming, title.trim());
            setRenaming(null);
          }}
        />
      </Modal>
    </nav>
  );
}
