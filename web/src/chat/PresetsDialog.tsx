import { DeleteOutlined, EditOutlined, PlusOutlined } from '@ant-design/icons';
import { Alert, App, Button, Empty, Form, Input, List, Modal, Space, Spin, Typography } from 'antd';
import { useEffect, useId, useState } from 'react';
import type { PresetInput } from '../api/chat';
import { friendlyMessage } from '../api/errors';
import { LIMITS, type Preset } from '../api/types';
import { FormProblems } from './FormProblems';
import { cleanParams, describeParams, ParamsFields, SystemPromptField, systemPromptOrNull } from './ParamsFields';
import { formProblems } from './problems';
import type { PresetsState } from './usePresets';

export interface PresetsDialogProps {
  open: boolean;
  onClose(): void;
  presets: PresetsState;
  /** Open straight on a new preset with these values (from a conversation's settings). */
  initial?: PresetInput | null;
}

interface Editing {
  id: string | null;
  name: string;
  systemPrompt: string;
  params: PresetInput['params'];
}

function editingOf(preset: Preset | PresetInput | null, id: string | null = null): Editing {
  return {
    id,
    name: preset?.name ?? '',
    systemPrompt: preset?.system_prompt ?? '',
    params: { ...(preset?.params ?? {}) },
  };
}

/** The user's presets: list, create, edit, delete. */
export function PresetsDialog({ open, onClose, presets, initial }: PresetsDialogProps) {
  const { modal, message: toast } = App.useApp();
  const ids = useId();
  const [editing, setEditing] = useState<Editing | null>(null);
  const [problems, setProblems] = useState<string[]>([]);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    if (!open) return;
    presets.ensure();
    setProblems([]);
    setEditing(initial ? editingOf(initial) : null);
    // Only when it opens: `initial` is read then.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);

  const edit = (e: Editing | null) => {
    setProblems([]);
    setEditing(e);
  };

  async function save() {
    if (!editing) return;
    if (!editing.name.trim()) {
      setProblems(['Give the preset a name.']);
      return;
    }
    const input: PresetInput = {
      name: editing.name.trim(),
      system_prompt: systemPromptOrNull(editing.systemPrompt),
      params: cleanParams(editing.params),
    };
    setSaving(true);
    try {
      if (editing.id) await presets.update(editing.id, input);
      else await presets.create(input);
      toast.success(editing.id ? 'Preset saved.' : 'Preset created.');
      edit(null);
    } catch (e) {
      setProblems(formProblems(e));
    } finally {
      setSaving(false);
    }
  }

  function confirmDelete(p: Preset) {
    modal.confirm({
      title: `Delete the preset “${p.name}”?`,
      content: 'Conversations started from it keep their settings.',
      okText: 'Delete',
      okButtonProps: { danger: true },
      onOk: async () => {
        try {
          await presets.remove(p.id);
        } catch (e) {
          toast.error(friendlyMessage(e));
        }
      },
    });
  }

  const items = presets.items ?? [];

  return (
    <Modal
      title={editing ? (editing.id ? 'Edit preset' : 'New preset') : 'Presets'}
      open={open}
      onCancel={onClose}
      destroyOnHidden
      footer={
        editing ? (
          <Space>
            <Button onClick={() => (initial && !editing.id ? onClose() : edit(null))}>Cancel</Button>
            <Button type="primary" loading={saving} onClick={() => void save()}>
              Save preset
            </Button>
          </Space>
        ) : (
          <Button onClick={onClose}>Close</Button>
        )
      }
    >
      {editing ? (
        <Form layout="vertical" component={false}>
          <FormProblems title="The preset was not saved" problems={problems} />
          <Form.Item label="Name" htmlFor={`${ids}-name`}>
            <Input
              id={`${ids}-name`}
              value={editing.name}
              maxLength={LIMITS.title}
              autoFocus
              onChange={(e) => setEditing({ ...editing, name: e.target.value })}
            />
          </Form.Item>
          <SystemPromptField
            id={`${ids}-prompt`}
            value={editing.systemPrompt}
            onChange={(systemPrompt) => setEditing({ ...editing, systemPrompt })}
          />
          <ParamsFields
            idPrefix={`${ids}-params`}
            value={editing.params}
            onChange={(params) => setEditing({ ...editing, params })}
          />
        </Form>
      ) : (
        <>
          <Typography.Paragraph type="secondary">
            A preset is a named system prompt with parameters, to start chats from or apply to one.
          </Typography.Paragraph>
          <Button icon={<PlusOutlined aria-hidden />} onClick={() => edit(editingOf(null))} style={{ marginBottom: 12 }}>
            New preset
          </Button>
          {presets.error && (
            <Alert
              type="error"
              showIcon
              title={presets.error}
              action={
                <Button size="small" onClick={() => void presets.load()}>
                  Retry
                </Button>
              }
            />
          )}
          {presets.loading && presets.items === null ? (
            <div className="center-fill" style={{ padding: 24 }}>
              <Spin aria-label="Loading presets" />
            </div>
          ) : presets.items !== null && items.length === 0 ? (
            <Empty description="No presets yet." />
          ) : (
            <List
              aria-label="Presets"
              dataSource={items}
              renderItem={(p) => (
                <List.Item
                  actions={[
                    <Button
                      key="edit"
                      size="small"
                      type="text"
                      icon={<EditOutlined />}
                      aria-label={`Edit preset ${p.name}`}
                      onClick={() => edit(editingOf(p, p.id))}
                    />,
                    <Button
                      key="delete"
                      size="small"
                      type="text"
                      danger
                      icon={<DeleteOutlined />}
                      aria-label={`Delete preset ${p.name}`}
                      onClick={() => confirmDelete(p)}
                    />,
                  ]}
                >
                  <List.Item.Meta
                    title={p.name}
                    description={
                      <>
                        {p.system_prompt && (
                          <Typography.Paragraph ellipsis={{ rows: 2 }} style={{ marginBottom: 0 }}>
                            {p.system_prompt}
                          </Typography.Paragraph>
                        )}
                        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                          {describeParams(p.params) || 'Model defaults'}
                        </Typography.Text>
                      </>
                    }
                  />
                </List.Item>
              )}
            />
          )}
        </>
      )}
    </Modal>
  );
}
