// `tern import istio`: reads the cluster's Istio resources with the user's kubeconfig and applies
// them through Tern's API in one call, so they are validated, authorized and audited as the user,
// all or nothing. The Kubernetes client is loaded by dynamic import here only (~0.5 s, ~74 MB):
// the other commands never pay for it.
import { parseArgs } from 'node:util';
import { TRPCClientError } from '@trpc/client';
import { KINDS, toYaml, type ApplyResult } from '@tern/shared';
import { convertIstioObjects, type ImportDocument, type ImportSkip } from '../kube/istio-import.ts';
import { EXIT, reportError, UsageError, type Client, type Issue } from './client.ts';

export const IMPORT_HELP = `tern import istio [--kubeconfig FILE] [--context NAME] [-n NS] [-l SELECTOR] [--dry-run [-o table|yaml]]

Reads every VirtualService, DestinationRule, ServiceEntry (networking.istio.io) and
PeerAuthentication, AuthorizationPolicy (security.istio.io) from the cluster — all namespaces,
or -n NS; -l filters by label — and applies them to Tern in one all-or-nothing call (objects that
exist in Tern are updated). Other Istio kinds (Gateway, Sidecar, EnvoyFilter…) are listed as
skipped with the reason. --dry-run: Tern's API validates and reports, nothing is written;
--dry-run -o yaml prints the converted documents and does not contact Tern at all.
Kubeconfig: --kubeconfig, else KUBECONFIG, else ~/.kube/config.
`;

type Out = (s: string) => void;

/** The apply API's limit on resources per call (resources.applyDocuments). */
const MAX_DOCUMENTS = 1000;

interface Ctx {
  client: () => Client;
  server: () => string;
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        server: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        selector: { type: 'string', short: 'l' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        'dry-run': { type: 'boolean' },
        output: { type: 'string', short: 'o' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const ref = (kind: string, apiVersion: string, name: string) => `${kind.toLowerCase()}.${apiVersion.split('/')[0]}/${name}`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** The summary: one row per object read, with what happened to it, then the counts. */
export function summarize(documents: readonly ImportDocument[], skipped: readonly ImportSkip[], results: readonly ApplyResult[] | undefined, dryRun: boolean): string {
  const action = new Map((results ?? []).map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r.action as string]));
  const rows = [['NAMESPACE', 'KIND', 'NAME', 'FROM', 'RESULT']];
  for (const d of documents) {
    const a = action.get(`${d.kind}/${d.metadata.namespace}/${d.metadata.name}`) ?? 'to import';
    rows.push([d.metadata.namespace, d.kind, d.metadata.name, d.apiVersion, dryRun && results ? `${a} (dry run)` : a]);
  }
  for (const s of skipped) rows.push([s.namespace || '-', s.kind || '-', s.name || '-', s.apiVersion || '-', 'skipped']);
  let text = table(rows);
  const count = (a: string) => (results ?? []).filter((r) => r.action === a).length;
  const n = documents.length;
  const what = `${n} object${n === 1 ? '' : 's'}`;
  const counts = results ? `: ${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged` : '';
  const head = n === 0 ? `Nothing to import (no ${KINDS.join(', ')} found)` : dryRun ? `Dry run, nothing written: would import ${what}` : `Imported ${what}`;
  text += `\n${head}${counts}; ${skipped.length} skipped.\n`;
  for (const s of skipped) text += `  skipped ${ref(s.kind || '?', s.apiVersion, s.name || '?')}${s.namespace && s.namespace !== '*' ? ` -n ${s.namespace}` : ''}: ${s.reason}\n`;
  return text;
}

export async function importCommand(args: string[], ctx: Ctx, out: Out = (s) => process.stdout.write(s), err: Out = (s) => process.stderr.write(s)): Promise<number> {
  const { values, positionals } = parse(args);
  if (positionals[0] !== 'istio') throw new UsageError(positionals[0] ? `cannot import "${positionals[0]}": only "tern import istio" exists` : 'what to import is required: tern import istio');
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const dryRun = values['dry-run'] ?? false;
  const format = values.output ?? 'table';
  if (format !== 'table' && format !== 'yaml') throw new UsageError(`-o must be table or yaml, not "${format}"`);
  if (format === 'yaml' && !dryRun) throw new UsageError('-o yaml prints the documents instead of importing them: add --dry-run');

  // Cluster side first: nothing is sent to Tern unless the whole cluster could be read.
  const source = await import('../kube/istio-source.ts');
  let read;
  try {
    const kc = source.loadUserKubeConfig({ kubeconfig: values.kubeconfig, context: values.context });
    read = await source.readIstioObjects(kc, { namespace: values.namespace, labelSelector: values.selector });
  } catch (e) {
    if (e instanceof source.ClusterReadError) {
      err(`error: ${e.message}\n`);
      return EXIT.failed;
    }
    throw e;
  }
  const { documents, skipped: fromObjects } = convertIstioObjects(read.objects);
  const skipped = [...fromObjects, ...read.unlisted];

  if (format === 'yaml') {
    if (documents.length) out(toYaml(documents));
    for (const s of skipped) err(`skipped ${ref(s.kind || '?', s.apiVersion, s.name || '?')}${s.namespace && s.namespace !== '*' ? ` -n ${s.namespace}` : ''}: ${s.reason}\n`);
    return EXIT.ok;
  }
  if (documents.length === 0) {
    out(summarize(documents, skipped, undefined, dryRun));
    return EXIT.ok;
  }

  if (documents.length > MAX_DOCUMENTS) {
    err(`error: ${documents.length} objects to import; Tern's apply takes at most ${MAX_DOCUMENTS} in one call, and an import is one call: import namespace by namespace with -n, or narrow it with -l\n`);
    return EXIT.failed;
  }
  let res;
  try {
    res = await ctx.client().resources.applyDocuments.mutate({ resources: documents, dryRun, mode: 'apply' });
  } catch (e) {
    const issues = e instanceof TRPCClientError ? (e.data as { issues?: Issue[] } | undefined)?.issues : undefined;
    let code: number;
    if (issues?.length) {
      // Named by namespace/name as in the cluster: the document index means nothing to the user.
      err(`error: the Tern API refused ${issues.length} problem${issues.length === 1 ? '' : 's'} in the imported objects:\n`);
      for (const i of issues) {
        const d = i.document !== undefined ? documents[i.document] : undefined;
        const what = d ? `${d.kind} ${d.metadata.namespace}/${d.metadata.name}` : [i.kind, i.name].filter(Boolean).join(' ');
        err(`  ${what ? `${what}: ` : ''}${i.path || '(document)'}: ${i.message} [${i.rule}]\n`);
      }
      code = EXIT.failed;
    } else {
      code = reportError(e, ctx.server(), err);
    }
    if (e instanceof TRPCClientError) err(`Nothing was written (an import is all or nothing): fix the objects in the cluster, or narrow the import with -n / -l.\n`);
    return code;
  }
  out(summarize(documents, skipped, res.results, res.dryRun));
  for (const r of res.results) {
    for (const w of r.warnings) err(`Warning: [${w.code}] (${w.kind} ${w.namespace}/${w.resourceName} ${w.path}) ${w.message}\n`);
  }
  return EXIT.ok;
}
