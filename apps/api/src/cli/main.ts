import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import YAML from 'yaml';
import { resolveKind, type ApplyResult, type Diagnostic, type StoredResource } from '@tern/shared';
import { EXIT, makeClient, reportError, UsageError, type Client } from './client.ts';
import { readCredentials, resolveTarget, writeCredentials, configPath } from './credentials.ts';
import { installCommand } from './install.ts';
import { IMPORT_HELP, importCommand } from './import-istio.ts';

const HELP = `tern — the Tern service mesh CLI

Usage:
  tern login [--server URL] [-u USER] [--password-stdin]
  tern logout
  tern apply -f FILE|- [-f FILE…] [-n NS] [--dry-run]
  tern get KIND [NAME] [-n NS | -A] [-o table|yaml|json]
  tern delete KIND NAME [-n NS] | tern delete -f FILE|- [--dry-run]
  tern analyze [-f FILE|-…] [-n NS]
  tern history KIND NAME [-n NS]
  tern rollback KIND NAME --to REVISION [-n NS]
  tern proxy-status [-n NS] [-o table|json|yaml]
  tern proxy-config PROXY [--type clusters|listeners|routes|endpoints] [-o table|json|yaml]
  tern install --dry-run [--with-postgres] [-n NS]   print the Kubernetes manifests (docs/kubernetes.md)
  tern import istio [--kubeconfig FILE] [--context NAME] [-n NS] [-l SELECTOR] [--dry-run [-o table|yaml]]
                                      copy the cluster's Istio resources into Tern (docs/kubernetes.md)
  tern version

KIND: VirtualService (vs), DestinationRule (dr), ServiceEntry (se), PeerAuthentication (pa),
AuthorizationPolicy (ap), singular or plural, any case.
Server and credential: --server, TERN_API_URL, TERN_TOKEN, else what 'tern login' saved.
Exit codes: 0 ok, 1 rejected or failed (validation, conflict, not found, server), 2 usage, 3 authentication.
`;

const common = {
  server: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const out = (s: string) => process.stdout.write(s);
const err = (s: string) => process.stderr.write(s);

function readSources(files: string[] | undefined): string {
  if (!files?.length) throw new UsageError('-f FILE is required (use -f - for standard input)');
  return files
    .map((f) => {
      try {
        return f === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(f, 'utf8');
      } catch (e) {
        throw new UsageError(`cannot read ${f}: ${(e as Error).message}`);
      }
    })
    .join('\n---\n');
}

function kindArg(s: string | undefined): string {
  if (!s) throw new UsageError('a KIND is required, e.g. virtualservice');
  const k = resolveKind(s);
  if (!k) throw new UsageError(`unknown kind "${s}"`);
  return k;
}

const group = (kind: string) => (kind === 'PeerAuthentication' || kind === 'AuthorizationPolicy' ? 'security.istio.io' : 'networking.istio.io');
const label = (r: { kind: string; name: string }) => `${r.kind.toLowerCase()}.${group(r.kind)}/${r.name}`;

function printResults(results: ApplyResult[], dryRun: boolean) {
  for (const r of results) {
    // kubectl's words, so scripts written for kubectl's output keep working.
    const word = r.action === 'updated' ? 'configured' : r.action;
    out(`${label(r)} ${word}${dryRun ? ' (dry run)' : ''}\n`);
    for (const w of r.warnings) err(`Warning: ${formatDiagnostic(w)}\n`);
  }
}

function formatDiagnostic(d: Diagnostic): string {
  return `[${d.code}] (${d.kind} ${d.namespace}/${d.resourceName} ${d.path}) ${d.message}`;
}

function age(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function outputFormat(o: string | undefined): 'table' | 'json' | 'yaml' {
  const format = o ?? 'table';
  if (format !== 'table' && format !== 'json' && format !== 'yaml') throw new UsageError(`-o must be table, json or yaml, not "${format}"`);
  return format;
}

function printDoc(format: 'json' | 'yaml', doc: unknown): number {
  out(format === 'yaml' ? YAML.stringify(doc) : JSON.stringify(doc, null, 2) + '\n');
  return EXIT.ok;
}

/** "in 23h59m", "in 4m", "EXPIRED 2m ago": how long a proxy's workload certificate has left. */
export function certExpiry(notAfter: string, now: number): string {
  const ms = new Date(notAfter).getTime() - now;
  const mins = Math.floor(Math.abs(ms) / 60_000);
  const d = Math.floor(mins / 1440), h = Math.floor((mins % 1440) / 60), m = mins % 60;
  const span = d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : `${m}m`;
  return ms > 0 ? `in ${span}` : `EXPIRED ${span} ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  err('Password: ');
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve) => {
    let pw = '';
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          err('\n');
          return resolve(pw);
        }
        if (ch === '\u0003') process.exit(EXIT.usage);
        if (ch === '\u007f') pw = pw.slice(0, -1);
        else pw += ch;
      }
    };
    stdin.on('data', onData);
  });
}

type Handler = (args: string[], ctx: { client: () => Client; server: (flag?: string) => string }) => Promise<number>;

const commands: Record<string, Handler> = {
  async login(args) {
    const { values } = parse(args, { username: { type: 'string', short: 'u' }, 'password-stdin': { type: 'boolean' } });
    const { server } = resolveTarget({ server: values.server });
    const username = values.username ?? 'admin';
    const password = await readPassword(values['password-stdin'] ?? false);
    const res = await makeClient(server, undefined).auth.login.mutate({ username, password });
    writeCredentials({ server, token: res.sessionToken, user: res.user.username });
    out(`Logged in to ${server} as ${res.user.username} (${res.user.role}); session saved in ${configPath()} until ${res.expiresAt}\n`);
    return EXIT.ok;
  },

  async logout(args, ctx) {
    parse(args, {});
    const saved = readCredentials();
    if (saved.token) await ctx.client().auth.logout.mutate({}).catch(() => {});
    writeCredentials({ ...(saved.server ? { server: saved.server } : {}) });
    out('Logged out\n');
    return EXIT.ok;
  },

  async apply(args, ctx) {
    const { values, positionals } = parse(args, { filename: { type: 'string', short: 'f', multiple: true }, 'dry-run': { type: 'boolean' } });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const yaml = readSources(values.filename);
    const res = await ctx.client().resources.applyDocuments.mutate({ yaml, namespace: values.namespace, dryRun: values['dry-run'] ?? false });
    printResults(res.results, res.dryRun);
    return EXIT.ok;
  },

  async get(args, ctx) {
    const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, 'all-namespaces': { type: 'boolean', short: 'A' } });
    const kind = kindArg(positionals[0]);
    const name = positionals[1];
    if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
    const format = values.output ?? 'table';
    if (!['table', 'yaml', 'json', 'wide'].includes(format)) throw new UsageError(`-o must be yaml, json or table, not "${format}"`);
    const namespace = values['all-namespaces'] ? undefined : (values.namespace ?? 'default');
    const client = ctx.client();
    let items: StoredResource[];
    if (name) {
      items = [await client.resources.get.query({ kind, namespace: namespace ?? 'default', name })];
    } else {
      items = (await client.resources.list.query({ kind, namespace })).items;
    }
    if (format === 'yaml' || format === 'json') {
      const doc = name ? items[0] : { apiVersion: 'v1', kind: 'List', items };
      out(format === 'yaml' ? YAML.stringify(doc) : JSON.stringify(doc, null, 2) + '\n');
      return EXIT.ok;
    }
    if (items.length === 0) {
      err(namespace ? `No resources found in ${namespace} namespace.\n` : 'No resources found.\n');
      return EXIT.ok;
    }
    const head = [...(namespace ? [] : ['NAMESPACE']), 'NAME', 'REVISION', 'GENERATION', 'WARNINGS', 'AGE'];
    const rows = items.map((r) => [
      ...(namespace ? [] : [r.metadata.namespace]),
      r.metadata.name,
      r.metadata.resourceVersion,
      String(r.metadata.generation),
      String(r.status?.validationMessages?.filter((d) => d.level !== 'info').length ?? 0),
      age(r.metadata.creationTimestamp),
    ]);
    out(table([head, ...rows]));
    return EXIT.ok;
  },

  async delete(args, ctx) {
    const { values, positionals } = parse(args, { filename: { type: 'string', short: 'f', multiple: true }, 'dry-run': { type: 'boolean' } });
    const dryRun = values['dry-run'] ?? false;
    if (values.filename?.length) {
      if (positionals.length) throw new UsageError('give either -f FILE or KIND NAME, not both');
      const res = await ctx.client().resources.deleteDocuments.mutate({ yaml: readSources(values.filename), namespace: values.namespace, dryRun });
      printResults(res.results, res.dryRun);
      return EXIT.ok;
    }
    const kind = kindArg(positionals[0]);
    const name = positionals[1];
    if (!name) throw new UsageError('a NAME is required: tern delete KIND NAME');
    const res = await ctx.client().resources.delete.mutate({ kind, name, namespace: values.namespace ?? 'default', dryRun });
    printResults(res.results, res.dryRun);
    return EXIT.ok;
  },

  async analyze(args, ctx) {
    const { values, positionals } = parse(args, { filename: { type: 'string', short: 'f', multiple: true } });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const yaml = values.filename?.length ? readSources(values.filename) : undefined;
    const res = await ctx.client().resources.analyze.mutate({ ...(yaml !== undefined ? { yaml } : {}), namespace: values.namespace });
    const shown = res.diagnostics.filter((d) => !values.namespace || d.namespace === values.namespace);
    if (shown.length === 0) {
      out('✔ No validation issues found when analyzing ' + (values.namespace ? `namespace: ${values.namespace}` : 'the mesh') + '.\n');
      return EXIT.ok;
    }
    for (const d of shown) out(`${d.level[0]!.toUpperCase()}${d.level.slice(1)} ${formatDiagnostic(d)}\n`);
    return shown.some((d) => d.level === 'error') ? EXIT.failed : EXIT.ok;
  },

  async history(args, ctx) {
    const { values, positionals } = parse(args, {});
    const kind = kindArg(positionals[0]);
    const name = positionals[1];
    if (!name) throw new UsageError('a NAME is required: tern history KIND NAME');
    const res = await ctx.client().history.list.query({ kind, name, namespace: values.namespace ?? 'default' });
    if (res.revisions.length === 0) {
      err('No history.\n');
      return EXIT.ok;
    }
    out(table([['REVISION', 'ACTION', 'GENERATION', 'ACTOR', 'TIME'], ...res.revisions.map((r) => [r.revision, r.action, String(r.generation), r.actor, r.createdAt])]));
    return EXIT.ok;
  },

  async rollback(args, ctx) {
    const { values, positionals } = parse(args, { to: { type: 'string' } });
    const kind = kindArg(positionals[0]);
    const name = positionals[1];
    if (!name) throw new UsageError('a NAME is required: tern rollback KIND NAME --to REVISION');
    if (!values.to || !/^\d+$/.test(values.to)) throw new UsageError('--to REVISION is required (see tern history)');
    const res = await ctx.client().history.rollback.mutate({ kind, name, namespace: values.namespace ?? 'default', toRevision: values.to });
    printResults(res.results, false);
    return EXIT.ok;
  },

  async 'proxy-status'(args, ctx) {
    const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' } });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const format = outputFormat(values.output);
    const res = await ctx.client().proxies.list.query({ namespace: values.namespace });
    if (format !== 'table') return printDoc(format, res.proxies);
    if (res.proxies.length === 0) {
      err(values.namespace ? `No proxies connected in ${values.namespace} namespace.\n` : 'No proxies connected.\n');
      return EXIT.ok;
    }
    const col = (p: (typeof res.proxies)[number], t: 'clusters' | 'listeners' | 'endpoints' | 'routes') => (p.status === 'DISCONNECTED' ? 'DISCONNECTED' : p.types[t].status);
    const rows = res.proxies.map((p) => [
      p.id,
      p.namespace,
      p.workload ?? '-',
      col(p, 'clusters'),
      col(p, 'listeners'),
      col(p, 'endpoints'),
      col(p, 'routes'),
      p.replica,
      p.convergedRevision ?? '-',
      p.certificate ? certExpiry(p.certificate.notAfter, Date.now()) : '-',
    ]);
    out(table([['NAME', 'NAMESPACE', 'WORKLOAD', 'CDS', 'LDS', 'EDS', 'RDS', 'REPLICA', 'VERSION', 'CERT EXPIRES'], ...rows]));
    return EXIT.ok;
  },

  async 'proxy-config'(args, ctx) {
    const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, type: { type: 'string' } });
    const id = positionals[0];
    if (!id) throw new UsageError('a PROXY (its xDS node id, see tern proxy-status) is required: tern proxy-config PROXY');
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    const types = ['clusters', 'listeners', 'routes', 'endpoints'] as const;
    const type = values.type as (typeof types)[number] | undefined;
    if (type !== undefined && !types.includes(type)) throw new UsageError(`--type must be one of ${types.join(', ')}, not "${values.type}"`);
    const format = outputFormat(values.output);
    const dump = await ctx.client().proxies.config.query({ id, ...(type ? { type } : {}) });
    if (format !== 'table') return printDoc(format, dump);
    const rows: string[][] = [];
    for (const t of types) {
      for (const r of dump.types[t]?.resources ?? []) rows.push([t, String(r.name ?? r.cluster_name ?? '')]);
    }
    if (rows.length === 0) {
      err('No resources sent to this proxy yet.\n');
      return EXIT.ok;
    }
    out(table([['TYPE', 'NAME'], ...rows]));
    return EXIT.ok;
  },

  install: (args) => installCommand(args),

  import: (args, ctx) => importCommand(args, ctx),

  async version() {
    out('tern 0.1.0\n');
    return EXIT.ok;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(HELP);
    return cmd ? EXIT.ok : EXIT.usage;
  }
  const handler = commands[cmd];
  let server = resolveTarget({}).server;
  if (!handler) return reportError(new UsageError(`unknown command "${cmd}"`), server);
  if (rest.includes('--help') || rest.includes('-h')) {
    out(cmd === 'import' ? IMPORT_HELP : HELP);
    return EXIT.ok;
  }
  const serverFlag = rest.indexOf('--server');
  if (serverFlag >= 0 && rest[serverFlag + 1]) server = resolveTarget({ server: rest[serverFlag + 1] }).server;
  try {
    return await handler(rest, {
      client: () => makeClient(server, resolveTarget({ server }).token),
      server: () => server,
    });
  } catch (e) {
    return reportError(e, server);
  }
}
