import { AppstoreAddOutlined, SaveOutlined } from '@ant-design/icons';
import { Button, Drawer, Form, Select, Space, Typography } from 'antd';
import { useEffect, useId, useState } from 'react';
import type { ChatApi, PresetInput } from '../api/chat';
import type { Conversation, Params } from '../api/types';
import { FormProblems } from './FormProblems';
import { cleanParams, ParamsFields, SystemPromptField, systemPromptOrNull } from './ParamsFields';
import { PresetsDialog } from './PresetsDialog';
import { formProblems } from './problems';
import type { PresetsState } from './usePresets';

/** Settings for a chat not created yet: they go with its creation. */
export interface ChatSettings {
  system_prompt: string;
  params: Params;
}

export interface ConversationSettingsProps {
  open: boolean;
  onClose(): void;
  api: ChatApi;
  /** The conversation to change; `null` for a new chat (see `draft`). */
  conversation: Conversation | null;
  /** A new chat's settings so far. */
  draft: ChatSettings;
  /** A new chat's settings, saved for when it is created. */
  onDraft(settings: ChatSettings): void;
  /** The conversation as the server saved it. */
  onSaved(conversation: Conversation): void;
  presets: PresetsState;
  phone?: boolean;
}

/** The system prompt and parameters of a conversation (or of the next new chat), and presets. */
export function ConversationSettings(props: ConversationSettingsProps) {
  const { open, conversation, draft, presets } = props;
  const ids = useId();
  const [systemPrompt, setSystemPrompt] = useState('');
  const [params, setParams] = useState<Params>({});
  const [applied, setApplied] = useState<string | undefined>();
  const [problems, setProblems] = useState<string[]>([]);
  const [saving, setSaving] = useState(false);
  const [presetsOpen, setPresetsOpen] = useState(false);
  const [presetDraft, setPresetDraft] = useState<PresetInput | null>(null);

  // The form starts from what is saved each time it opens.
  useEffect(() => {
    if (!open) return;
    setSystemPrompt(conversation ? (conversation.system_prompt ?? '') : draft.system_prompt);
    setParams({ ...(conversation ? conversation.params : draft.params) });
    setApplied(undefined);
    setProblems([]);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, conversation?.id]);

  function applyPreset(id: string | undefined) {
    setApplied(id);
    const preset = presets.items?.find((p) => p.id === id);
    if (!preset) return;
    setSystemPrompt(preset.system_prompt ?? '');
    setParams({ ...preset.params });
    setProblems([]);
  }

  async function save() {
    const value: ChatSettings = { system_prompt: systemPrompt, params: cleanParams(params) };
    if (!conversation) {
      props.onDraft(value);
      props.onClose();
      return;
    }
    setSaving(true);
    setProblems([]);
    try {
      const updated = await props.api.update(conversation.id, {
        system_prompt: systemPromptOrNull(systemPrompt),
        params: value.params,
      });
      props.onSaved(updated);
      props.onClose();
    } catch (e) {
      setProblems(formProblems(e));
    } finally {
      setSaving(false);
    }
  }

  const presetOptions = (presets.items ?? []).map((p) => ({ value: p.id, label: p.name }));

  return (
    <Drawer
      title="Conversation settings"
      placement="right"
      open={open}
      onClose={props.onClose}
      size={props.phone ? '100%' : 460}
      destroyOnHidden
      footer={
        <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button type="primary" icon={<SaveOutlined aria-hidden />} loading={saving} onClick={() => void save()}>
            Save
          </Button>
        </Space>
      }
    >
      <Form layout="vertical" component={false}>
        {!conversation && (
          <Typography.Paragraph type="secondary">
            These settings apply to the new chat when you send its first message.
          </Typography.Paragraph>
        )}
        <FormProblems title="The settings were not saved" problems={problems} />
        <Form.Item
          label="Apply preset"
          htmlFor={`${ids}-preset`}
          extra={applied ? 'The preset’s values are in the fields below; Save to keep them.' : undefined}
        >
          <Space.Compact style={{ width: '100%' }}>
            <Select
              id={`${ids}-preset`}
              aria-label="Apply preset"
              placeholder={presets.items?.length === 0 ? 'No presets yet' : 'Choose a preset'}
              style={{ flex: 1, minWidth: 0 }}
              value={applied}
              options={presetOptions}
              loading={presets.loading}
              onOpenChange={(o) => o && presets.ensure()}
              onFocus={() => presets.ensure()}
              notFoundContent={presets.error ?? (presets.loading ? 'Loading presets…' : 'No presets yet.')}
              onChange={(id: string) => applyPreset(id)}
            />
            <Button icon={<AppstoreAddOutlined aria-hidden />} onClick={() => setPresetsOpen(true)}>
              Presets
            </Button>
          </Space.Compact>
        </Form.Item>
        <SystemPromptField id={`${ids}-prompt`} value={systemPrompt} onChange={setSystemPrompt} disabled={saving} />
        <ParamsFields idPrefix={`${ids}-params`} value={params} onChange={setParams} disabled={saving} />
        <Button
          onClick={() => {
            setPresetDraft({
              name: '',
              system_prompt: systemPromptOrNull(systemPrompt),
              params: cleanParams(params),
            });
            setPresetsOpen(true);
          }}
        >
          Save as preset…
        </Button>
      </Form>
      <PresetsDialog
        open={presetsOpen}
        initial={presetDraft}
        presets={presets}
        onClose={() => {
          setPresetsOpen(false);
          setPresetDraft(null);
        }}
      />
    </Drawer>
  );
}
