// `tern install`: renders deploy/kubernetes the way `kubectl kustomize` does, without kustomize.
// The manifests are read at run time from the checkout the CLI runs from (the CLI runs its
// TypeScript sources, bin/tern.mjs), so there is one copy of them; the kustomizations are kept to
// `resources` and `components`, and anything else is refused here rather than silently ignored.
// apps/api/test/kube-install.test.ts checks that the output equals kustomize's.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { EXIT, UsageError } from './client.ts';

export const DEFAULT_NAMESPACE = 'tern-system';

export const MANIFESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../deploy/kubernetes');

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

export class InstallError extends Error {}

export interface InstallOptions {
  withPostgres?: boolean;
  namespace?: string;
  /** deploy/kubernetes of another checkout (tests). */
  dir?: string;
}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components']);

function readKustomization(dir: string, expectKind: 'Kustomization' | 'Component'): { resources: string[]; components: string[] } {
  const file = KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!file) throw new InstallError(`${dir}: no kustomization.yaml`);
  const k = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> | null;
  if (!k || typeof k !== 'object') throw new InstallError(`${file}: not a kustomization`);
  if ((k.kind ?? 'Kustomization') !== expectKind) throw new InstallError(`${file}: kind must be ${expectKind}, not ${String(k.kind)}`);
  for (const key of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(key)) throw new InstallError(`${file}: field "${key}" is not supported by tern install (only resources and components); keep the manifests plain or extend apps/api/src/cli/install.ts`);
  }
  const list = (key: 'resources' | 'components') => {
    const v = k[key] ?? [];
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) throw new InstallError(`${file}: ${key} must be a list of paths`);
    return v as string[];
  };
  return { resources: list('resources'), components: list('components') };
}

function readDocuments(file: string): Manifest[] {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const out: Manifest[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length) throw new InstallError(`${file}: document ${i + 1}: ${d.errors[0]!.message}`);
    const obj = d.toJS() as Manifest | null;
    if (obj === null || obj === undefined) return;
    if (typeof obj !== 'object' || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      throw new InstallError(`${file}: document ${i + 1}: apiVersion, kind and metadata.name are required`);
    }
    out.push(obj);
  });
  return out;
}

/** The objects of a kustomization directory: resources in order, then each component's. */
export function loadKustomization(dir: string, kind: 'Kustomization' | 'Component' = 'Kustomization'): Manifest[] {
  const { resources, components } = readKustomization(dir, kind);
  const out: Manifest[] = [];
  for (const r of resources) {
    const p = path.resolve(dir, r);
    if (!fs.existsSync(p)) throw new InstallError(`${dir}: resource ${r} does not exist`);
    out.push(...(fs.statSync(p).isDirectory() ? loadKustomization(p) : readDocuments(p)));
  }
  for (const c of components) out.push(...loadKustomization(path.resolve(dir, c), 'Component'));
  return out;
}

export const manifestId = (m: Manifest) => `${m.apiVersion.includes('/') ? m.apiVersion.split('/')[0] : ''}/${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Moves the install to another namespace, as kustomize's `namespace:` does for these manifests:
 * namespaced objects, the Namespace itself, service-account subjects of bindings, and the webhook's
 * service (kustomize follows that reference because the Service is in the same build).
 */
export function moveToNamespace(docs: Manifest[], namespace: string): Manifest[] {
  if (namespace.length > 63 || !DNS1123_LABEL.test(namespace)) {
    throw new InstallError(`--namespace: "${namespace}" is not a valid namespace name (a DNS-1123 label: lower-case letters, digits and '-', at most 63)`);
  }
  const move = (ns: unknown) => (ns === DEFAULT_NAMESPACE ? namespace : ns);
  return docs.map((d) => {
    const m = structuredClone(d);
    if (m.kind === 'Namespace' && m.apiVersion === 'v1' && m.metadata.name === DEFAULT_NAMESPACE) m.metadata.name = namespace;
    if (m.metadata.namespace !== undefined) m.metadata.namespace = move(m.metadata.namespace) as string;
    if ((m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding') && Array.isArray(m.subjects)) {
      for (const s of m.subjects as { kind?: string; namespace?: string }[]) if (s.kind === 'ServiceAccount') s.namespace = move(s.namespace) as string;
    }
    if ((m.kind === 'MutatingWebhookConfiguration' || m.kind === 'ValidatingWebhookConfiguration') && Array.isArray(m.webhooks)) {
      for (const w of m.webhooks as { clientConfig?: { service?: { namespace?: string } } }[]) {
        if (w.clientConfig?.service) w.clientConfig.service.namespace = move(w.clientConfig.service.namespace) as string;
      }
    }
    return m;
  });
}

/** Every object `tern install` would apply. */
export function renderInstall(opts: InstallOptions = {}): Manifest[] {
  const dir = opts.dir ?? MANIFESTS_DIR;
  if (!fs.existsSync(dir)) {
    throw new InstallError(`cannot find the Kubernetes manifests at ${dir}: tern install runs from a Tern source checkout (deploy/kubernetes)`);
  }
  const entry = opts.withPostgres ? path.join(dir, 'overlays/with-postgres') : dir;
  let docs = loadKustomization(entry);
  const seen = new Set<string>();
  for (const d of docs) {
    const id = manifestId(d);
    if (seen.has(id)) throw new InstallError(`${entry}: ${d.kind} ${d.metadata.name} is defined twice`);
    seen.add(id);
  }
  if (opts.namespace && opts.namespace !== DEFAULT_NAMESPACE) docs = moveToNamespace(docs, opts.namespace);
  return docs;
}

/** Multi-document YAML, ready for `kubectl apply --server-side -f -`. */
export function toManifestYaml(docs: Manifest[]): string {
  return docs.map((d) => YAML.stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

/** What to create before applying (the manifests reference these Secrets and never contain them). */
export function secretsNote(opts: InstallOptions): string {
  const ns = opts.namespace ?? DEFAULT_NAMESPACE;
  return [
    `# Before the control plane can start, create in namespace ${ns} (after the namespace exists):`,
    `#   kubectl -n ${ns} create secret generic tern-ca-kek --from-literal=key="$(openssl rand -base64 32)"`,
    opts.withPostgres
      ? `# and change the placeholder password in Secret tern-database (components/postgres) before the first apply.`
      : `#   kubectl -n ${ns} create secret generic tern-database --from-literal=url='postgres://USER:PASSWORD@HOST:5432/DB'`,
    `# Apply with: tern install --dry-run${opts.withPostgres ? ' --with-postgres' : ''}${opts.namespace ? ` -n ${opts.namespace}` : ''} | kubectl apply --server-side -f -`,
    '',
  ].join('\n');
}

/**
 * `tern install --dry-run [--with-postgres] [-n NS]`. There is no cluster access in the CLI yet:
 * without --dry-run it says how to apply the output with kubectl instead of guessing a kubeconfig.
 */
export async function installCommand(args: string[], write = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s) }): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        'dry-run': { type: 'boolean' },
        'with-postgres': { type: 'boolean' },
        namespace: { type: 'string', short: 'n' },
        server: { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const opts: InstallOptions = { withPostgres: values['with-postgres'] ?? false, ...(values.namespace ? { namespace: values.namespace } : {}) };
  if (!values['dry-run']) {
    throw new UsageError(
      `tern install does not talk to the cluster itself yet; print the manifests and apply them with kubectl:\n  tern install --dry-run${opts.withPostgres ? ' --with-postgres' : ''}${opts.namespace ? ` -n ${opts.namespace}` : ''} | kubectl apply --server-side -f -`,
    );
  }
  let docs: Manifest[];
  try {
    docs = renderInstall(opts);
  } catch (e) {
    if (e instanceof InstallError && e.message.startsWith('--namespace')) throw new UsageError(e.message);
    throw e;
  }
  write.out(toManifestYaml(docs));
  write.err(secretsNote(opts));
  return EXIT.ok;
}
