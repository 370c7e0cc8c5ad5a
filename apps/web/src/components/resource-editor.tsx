'use client';
import { useQuery } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import type { StoredResource } from '../lib/api-types.ts';
import { errorInfo } from '../lib/errors.ts';
import { cleanResource, toYaml } from '../lib/traffic.ts';
import { useTRPC, useTRPCClient } from '../lib/trpc.ts';
import { parseSingleDocument, withResourceVersion } from '../lib/yaml-editor.ts';
import { DiffView } from './diff-view.tsx';
import { ErrorMessage, RoleButton } from './ui.tsx';
import { ProblemList, useYamlValidation, YamlTextarea } from './yaml-editor.tsx';

const storedYaml = (r: StoredResource) => toYaml([cleanResource(r)]);

/**
 * Edits one stored resource as YAML. The version it was opened at is fixed when the editor opens
 * (a background refetch of the resource must not quietly move it), and every dry run and the save
 * send it: a concurrent change by someone else is a conflict to resolve, never an overwrite.
 */
export function ResourceEditor({ resource, onSaved, onCancel }: { resource: StoredResource; onSaved: (revision: string) => void; onCancel: () => void }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const kind = resource.kind;
  const ns = resource.metadata.namespace;
  const name = resource.metadata.name;
  const [base, setBase] = useState(() => ({ resourceVersion: resource.metadata.resourceVersion, yaml: storedYaml(resource) }));
  const [text, setText] = useState(base.yaml);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>();
  const editor = useRef<{ jumpTo(line: number): void } | null>(null);
  const v = useYamlValidation(text, { mode: 'replace', kind, namespace: ns, name, resourceVersion: base.resourceVersion });
  const conflict = errorInfo(saveError).code === 'CONFLICT' || v.problems.some((p) => p.source === 'conflict');
  // Only while in conflict: what is stored now, to compare with and to start over from.
  const current = useQuery({ ...trpc.resources.get.queryOptions({ kind, namespace: ns, name }), enabled: conflict, staleTime: 0 });
  const changed = text !== base.yaml;

  async function save() {
    const parsed = parseSingleDocument(text);
    if (!parsed.ok) return;
    setSaving(true);
    setSaveError(undefined);
    try {
      const out = await client.resources.replace.mutate({ kind, namespace: ns, name, resource: withResourceVersion(parsed.object, base.resourceVersion) });
      onSaved(out.revision);
    } catch (err) {
      setSaveError(err);
    } finally {
      setSaving(false);
    }
  }

  const blockedReason = v.checking ? 'Checking your changes…' : v.blocking ? 'Fix the errors first.' : !changed ? 'No changes yet.' : undefined;
  return (
    <div data-testid="resource-editor">
      <p className="small muted">
        Editing at resourceVersion <span data-testid="base-version">{base.resourceVersion}</span>. Checked as you type: YAML syntax, then a dry run on the control plane
        (schema, analyzer, and whether someone else changed it since).
      </p>
      <YamlTextarea value={text} onChange={setText} problems={v.problems} label={`YAML of ${kind} ${ns}/${name}`} editorRef={editor} />
      <ProblemList problems={v.problems} checking={v.checking} onJump={(l) => editor.current?.jumpTo(l)} />
      {conflict && (
        <div className="msg error" role="alert" data-testid="conflict">
          <strong>Conflict:</strong> someone else changed {kind} {ns}/{name} after you opened the editor (you started from resourceVersion {base.resourceVersion}
          {current.data ? `; it is now at ${current.data.metadata.resourceVersion}` : ''}). Nothing was saved.
          {saveError !== undefined && <div className="small">{errorInfo(saveError).message}</div>}
          {current.data && (
            <>
              <p className="small">What is stored now (−) against your text (+):</p>
              <DiffView before={storedYaml(current.data)} after={text} label="Stored version against your text" />
              <div className="row" style={{ marginTop: 8 }}>
                <button
                  type="button"
                  onClick={() => {
                    const y = storedYaml(current.data);
                    setBase({ resourceVersion: current.data.metadata.resourceVersion, yaml: y });
                    setText(y);
                    setSaveError(undefined);
                  }}
                >
                  Discard my changes and load the current version
                </button>
                <button
                  type="button"
                  onClick={() => {
                    // Deliberate: the user has seen the diff and keeps their text over the newer version.
                    setBase({ resourceVersion: current.data.metadata.resourceVersion, yaml: storedYaml(current.data) });
                    setSaveError(undefined);
                  }}
                >
                  Keep my text over the current version (review, then save)
                </button>
              </div>
            </>
          )}
          {current.isError && <ErrorMessage error={current.error} title="Cannot load the current version" />}
        </div>
      )}
      {saveError !== undefined && !conflict && <ErrorMessage error={saveError} title="Not saved" />}
      <h3 style={{ marginTop: 12 }}>Changes</h3>
      <DiffView before={base.yaml} after={text} label="Your changes against the stored version" />
      <div className="row" style={{ marginTop: 12 }}>
        <RoleButton need="editor" id="yaml-save" className="primary" disabled={saving || v.checking || v.blocking || !changed || conflict} onClick={() => void save()}>
          {saving ? 'Saving…' : 'Save'}
        </RoleButton>
        <button type="button" onClick={onCancel}>Cancel</button>
        {blockedReason && v.canWrite && !conflict && <span className="small muted" data-testid="save-blocked">{blockedReason}</span>}
      </div>
    </div>
  );
}
