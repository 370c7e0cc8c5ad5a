import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

// docker-compose.yml as far as a machine without a Docker engine can check it: Debian's
// docker-compose (1.29) validates and resolves the file, and every Dockerfile it builds exists and
// copies only paths that exist. No image is built or run here (README says so).

const repoRoot = path.resolve(import.meta.dirname, '..');
const KEY = 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=';

function compose(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('docker-compose', ['-f', path.join(repoRoot, 'docker-compose.yml'), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, TERN_CA_KEY_ENCRYPTION_KEY: '', TERN_ADMIN_PASSWORD: '', ...env },
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    assert.fail('docker-compose is not installed: `apt-get install docker-compose` (Debian bookworm has 1.29; .ci/run installs it)');
  }
  return r;
}

interface Service {
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  ports?: { published: number | string; target: number }[];
  depends_on?: Record<string, { condition: string }>;
}

describe('docker-compose.yml', () => {
  test('validates (docker-compose config -q) once the CA key-encryption key is set', () => {
    const r = compose(['config', '-q'], { TERN_CA_KEY_ENCRYPTION_KEY: KEY });
    assert.equal(r.status, 0, r.stderr);
  });

  test('refuses to resolve without TERN_CA_KEY_ENCRYPTION_KEY, saying how to make one', () => {
    const r = compose(['config', '-q']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /set TERN_CA_KEY_ENCRYPTION_KEY, e\.g\. export TERN_CA_KEY_ENCRYPTION_KEY=\$\(openssl rand -base64 32\)/);
  });

  test('PostgreSQL, two control-plane replicas, the console and the demo, wired to each other', () => {
    const r = compose(['config'], { TERN_CA_KEY_ENCRYPTION_KEY: KEY, TERN_ADMIN_PASSWORD: 'shared-secret-1' });
    assert.equal(r.status, 0, r.stderr);
    const services = (parse(r.stdout) as { services: Record<string, Service> }).services;
    assert.deepEqual(Object.keys(services).sort(), ['api-a', 'api-b', 'console', 'demo', 'postgres']);
    const published = (s: Service) => (s.ports ?? []).map((p) => `${p.published}:${p.target}`);
    assert.deepEqual(published(services['api-a']!), ['8080:8080', '15010:15010']);
    assert.deepEqual(published(services['api-b']!), ['8081:8080', '15011:15010']);
    assert.deepEqual(published(services.console!), ['3000:3000']);
    assert.deepEqual(published(services.demo!), ['9080:9081']);
    assert.equal(services.console!.environment!.TERN_API_URL, 'http://api-a:8080');
    assert.equal(services.demo!.environment!.TERN_API_URL, 'http://api-a:8080');
    assert.equal(services.demo!.environment!.TERN_XDS_ADDRESS, 'api-a:15010');
    // The demo signs in with the password the control plane creates the admin with.
    for (const name of ['api-a', 'api-b', 'demo']) assert.equal(services[name]!.environment!.TERN_ADMIN_PASSWORD, 'shared-secret-1', name);
    assert.equal(services.demo!.depends_on!['api-a']!.condition, 'service_healthy');
    assert.equal(services['api-a']!.environment!.TERN_CA_KEY_ENCRYPTION_KEY, KEY);
    assert.equal(services['api-a']!.environment!.DATABASE_URL, services['api-b']!.environment!.DATABASE_URL);
  });

  test('every Dockerfile it builds exists and copies only files that exist', () => {
    const r = compose(['config'], { TERN_CA_KEY_ENCRYPTION_KEY: KEY });
    const services = (parse(r.stdout) as { services: Record<string, Service> }).services;
    const dockerfiles = new Set(Object.values(services).flatMap((s) => (s.build ? [path.resolve(s.build.context, s.build.dockerfile)] : [])));
    assert.equal(dockerfiles.size, 3, [...dockerfiles].join(', '));
    for (const file of dockerfiles) {
      assert.ok(fs.existsSync(file), `${file} exists`);
      const text = fs.readFileSync(file, 'utf8');
      for (const line of text.split('\n')) {
        const m = /^COPY\s+(?!--from)(.+)$/.exec(line.trim());
        if (!m) continue;
        const sources = m[1]!.split(/\s+/).slice(0, -1);
        for (const src of sources) assert.ok(fs.existsSync(path.join(repoRoot, src)), `${path.basename(file)}: COPY ${src} exists`);
      }
      const cmd = /^CMD \[(.+)\]$/m.exec(text);
      assert.ok(cmd, `${path.basename(file)} has a CMD`);
    }
    // The demo image's entry point is there.
    assert.match(fs.readFileSync(path.join(repoRoot, 'deploy/docker/demo.Dockerfile'), 'utf8'), /CMD \["node", "--import", "tsx", "demo\/compose-entry\.ts"\]/);
    assert.ok(fs.existsSync(path.join(repoRoot, 'demo/compose-entry.ts')));
  });
});
