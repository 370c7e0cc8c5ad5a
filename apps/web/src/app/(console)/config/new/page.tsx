'use client';
import { useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { Suspense, useRef, useState } from 'react';
import { Convergence } from '../../../../components/convergence.tsx';
import { ErrorMessage, Loading, RoleButton } from '../../../../components/ui.tsx';
import { ProblemList, useYamlValidation, YamlTextarea } from '../../../../components/yaml-editor.tsx';
import type { RouterOutputs } from '../../../../lib/api-types.ts';
import { resourceHref } from '../../../../lib/links.ts';
import { useTRPCClient } from '../../../../lib/trpc.ts';

type WriteResult = RouterOutputs['resources']['applyDocuments'];

const EXAMPLE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - name: v1
    labels:
      version: v1
`;

/**
 * Paste one or more YAML documents, see them validated as you type (the same dry run as the
 * editor, in "create" mode: a resource that already exists is an error here), then create them
 * in one transaction.
 */
function NewResource() {
  const client = useTRPCClient();
  const queryClient = useQueryClient();
  const [text, setText] = useState('');
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<WriteResult | undefined>();
  const editor = useRef<{ jumpTo(line: number): void } | null>(null);
  const v = useYamlValidation(text, { mode: 'create' });
  const empty = text.trim() === '';

  async function create() {
    setSaving(true);
    setError(undefined);
    try {
      const out = await client.resources.applyDocuments.mutate({ yaml: text, mode: 'create' });
      setDone(out);
      void queryClient.invalidateQueries();
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  }

  return (
    <>
      <p className="small"><Link href="/config">← Config</Link></p>
      <h1>New resource</h1>
      {done ? (
        <div className="panel" data-testid="created">
          <div className="msg ok" role="status">Created at revision {done.revision}:</div>
          <ul>
            {done.results.map((r) => (
              <li key={`${r.kind}/${r.namespace}/${r.name}`}>
                {r.action} <Link href={resourceHref(r.kind, r.namespace, r.name)}>{r.kind} {r.namespace}/{r.name}</Link>
              </li>
            ))}
          </ul>
          <Convergence revision={done.revision} />
          <p>
            <button type="button" onClick={() => { setDone(undefined); setText(''); }}>Create another</button>
          </p>
        </div>
      ) : (
        <div className="panel">
          <p className="small muted">
            Paste one or more YAML documents (separated by <code>---</code>), as <code>tern apply -f</code> takes them. Documents without a namespace go to{' '}
            <code>default</code>. All are created together or none is; one that already exists is an error (edit it from its page instead).
          </p>
          <YamlTextarea value={text} onChange={setText} problems={v.problems} label="YAML of the new resources" editorRef={editor} />
          {empty ? (
            <p className="small muted">
              Empty. <button type="button" className="linkish" onClick={() => setText(EXAMPLE)}>Start from an example DestinationRule</button>
            </p>
          ) : (
            <ProblemList problems={v.problems} checking={v.checking} onJump={(l) => editor.current?.jumpTo(l)} />
          )}
          {error !== undefined && <ErrorMessage error={error} title="Not created" />}
          <div className="row" style={{ marginTop: 12 }}>
            <RoleButton need="editor" id="yaml-create" className="primary" disabled={empty || saving || v.checking || v.blocking} onClick={() => void create()}>
              {saving ? 'Creating…' : 'Create'}
            </RoleButton>
          </div>
        </div>
      )}
    </>
  );
}

export default function NewResourcePage() {
  return <Suspense fallback={<Loading what="page" />}><NewResource /></Suspense>;
}
