// The installer's Kubernetes side against a local https server standing in for the API server
// (fixture certificate for 127.0.0.1): in-cluster discovery, the node label set and restored
// with merge patches carrying the service-account token, and the pre-delete coordinator's patch
// and rollout wait. Plus the CLI's option handling.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as https from 'https';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { installerOptions, parseArgs } from '../../installer/cli';
import { MODE_ANNOTATION, coordinateUninstall, rolledOut } from '../../installer/coordinate';
import { handlersOf } from '../../installer/cri-status';
import { InstallerError } from '../../installer/errors';
import { KubeApi, inClusterApi } from '../../installer/kube-api';
import { parseNodeLabel, restoreNodeLabel, setNodeLabel } from '../../installer/node-label';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'installer', 'fixtures');

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/** An https server answering from `handler`, recording every request. */
async function apiServer(handler: (req: Seen) => { status: number; body: unknown }): Promise<{ api: KubeApi; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = https.createServer(
    { key: fs.readFileSync(path.join(FIXTURES, 'apiserver-key.pem')), cert: fs.readFileSync(path.join(FIXTURES, 'apiserver-cert.pem')) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const s: Seen = { method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, contentType: req.headers['content-type'], body: text ? JSON.parse(text) : undefined };
        seen.push(s);
        const r = handler(s);
        res.writeHead(r.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(r.body));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    api: { server: `https://127.0.0.1:${port}`, token: 'test-token', ca: fs.readFileSync(path.join(FIXTURES, 'apiserver-cert.pem')) },
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('installer: Kubernetes API (node label, uninstall coordinator) and CLI options', function () {
  this.timeout(30_000);

  it('finds the in-cluster API from the service host and the service-account dir, and nothing outside a cluster', function () {
    const sa = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-sa-'));
    try {
      assert.equal(inClusterApi({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, sa), undefined, 'no token: not in a cluster');
      fs.writeFileSync(path.join(sa, 'token'), 'tok\n');
      fs.writeFileSync(path.join(sa, 'ca.crt'), 'ca');
      assert.equal(inClusterApi({}, sa), undefined, 'no service host: not in a cluster');
      const api = inClusterApi({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, sa)!;
      assert.equal(api.server, 'https://[fd00::1]:6443');
      assert.equal(api.token, 'tok');
    } finally {
      fs.rmSync(sa, { recursive: true, force: true });
    }
  });

  it('labels the node with a merge patch, then restores the earlier value or removes the label', async function () {
    const labels: Record<string, string> = { 'kubernetes.io/os': 'linux' };
    const s = await apiServer((req) => {
      if (req.url !== '/api/v1/nodes/node-1') return { status: 404, body: { message: 'nodes "x" not found' } };
      if (req.method === 'PATCH') {
        const patch = (req.body as { metadata: { labels: Record<string, string | null> } }).metadata.labels;
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) delete labels[k];
          else labels[k] = v;
        }
      }
      return { status: 200, body: { metadata: { name: 'node-1', labels } } };
    });
    try {
      const label = parseNodeLabel('burrow.dev/runtime=installed');
      assert.equal(await setNodeLabel(s.api, 'node-1', label), undefined);
      assert.equal(labels['burrow.dev/runtime'], 'installed');
      const patch = s.seen.find((r) => r.method === 'PATCH')!;
      assert.equal(patch.auth, 'Bearer test-token');
      assert.equal(patch.contentType, 'application/merge-patch+json');
      // Already set: no second patch.
      const patches = s.seen.filter((r) => r.method === 'PATCH').length;
      await setNodeLabel(s.api, 'node-1', label);
      assert.equal(s.seen.filter((r) => r.method === 'PATCH').length, patches);
      await restoreNodeLabel(s.api, 'node-1', label.key, undefined);
      assert.deepEqual({ ...labels }, { 'kubernetes.io/os': 'linux' });
      // A label that had a value before gets it back.
      labels['burrow.dev/runtime'] = 'old';
      assert.equal(await setNodeLabel(s.api, 'node-1', label), 'old');
      await restoreNodeLabel(s.api, 'node-1', label.key, 'old');
      assert.equal(labels['burrow.dev/runtime'], 'old');
      await assert.rejects(setNodeLabel(s.api, 'node-2', label), /GET \/api\/v1\/nodes\/node-2: HTTP 404: nodes "x" not found/);
    } finally {
      await s.close();
    }
  });

  it('refuses labels Kubernetes would refuse', function () {
    assert.deepEqual(parseNodeLabel('example.com/burrow'), { key: 'example.com/burrow', value: 'true' });
    for (const bad of ['-x=1', 'a/b/c=1', 'k=has space', `k=${'v'.repeat(64)}`]) assert.throws(() => parseNodeLabel(bad), InstallerError, bad);
  });

  it('coordinate-uninstall: patches the mode annotation, waits for the rollout, fails with the status on timeout', async function () {
    let generation = 1;
    let gets = 0;
    const status = (): object => ({
      observedGeneration: gets >= 2 ? generation : generation - 1,
      desiredNumberScheduled: 3,
      updatedNumberScheduled: gets >= 2 ? 3 : 1,
      numberReady: gets >= 2 ? 3 : 2,
    });
    const s = await apiServer((req) => {
      if (req.method === 'PATCH') {
        generation++;
        return { status: 200, body: {} };
      }
      gets++;
      return { status: 200, body: { metadata: { generation }, status: status() } };
    });
    try {
      const logs: string[] = [];
      await coordinateUninstall(s.api, 'burrow-system', 'rel-burrow', 30_000, (m) => logs.push(m));
      const patch = s.seen[0];
      assert.equal(patch.url, '/apis/apps/v1/namespaces/burrow-system/daemonsets/rel-burrow');
      assert.deepEqual(patch.body, { spec: { template: { metadata: { annotations: { [MODE_ANNOTATION]: 'uninstall' } } } } });
      assert.ok(gets >= 2);
      assert.ok(logs.some((l) => l.includes('uninstalled on 3 node(s)')));
      gets = -1_000_000; // never rolled out from here on
      await assert.rejects(coordinateUninstall(s.api, 'burrow-system', 'rel-burrow', 1_000, () => undefined), /did not finish uninstalling within 1000 ms .*"desiredNumberScheduled":3/);
    } finally {
      await s.close();
    }
  });

  it('rolledOut needs the new generation observed and every scheduled pod updated and ready', function () {
    const ds = (observed: number, updated: number, ready: number) => ({
      metadata: { generation: 2 },
      status: { observedGeneration: observed, desiredNumberScheduled: 2, updatedNumberScheduled: updated, numberReady: ready },
    });
    assert.equal(rolledOut(ds(2, 2, 2)), true);
    assert.equal(rolledOut(ds(1, 2, 2)), false);
    assert.equal(rolledOut(ds(2, 1, 2)), false);
    assert.equal(rolledOut(ds(2, 2, 1)), false);
  });

  it('reads runtime handlers from containerd 1.x\'s verbose config and 2.x\'s runtime_handlers', function () {
    const config = JSON.stringify({ containerd: { defaultRuntimeName: 'runc', runtimes: { runc: {}, burrow: { runtimeType: 'io.containerd.burrow.v2' } } } });
    assert.deepEqual(handlersOf({ info: { config }, runtime_handlers: [] }), ['burrow', 'runc']);
    assert.deepEqual(handlersOf({ info: {}, runtime_handlers: [{ name: 'runc' }, { name: '' }, { name: 'burrow' }] }), ['burrow', 'runc']);
    assert.deepEqual(handlersOf({ info: { config: 'not json' }, runtime_handlers: [] }), []);
  });

  it('CLI: defaults, the DaemonSet\'s flags, and clear refusals', function () {
    const o = installerOptions(parseArgs(['install', '--payload', '/payload']), {}, () => undefined);
    assert.equal(o.installDir, '/opt/burrow');
    assert.equal(o.shimLinkDir, '/usr/local/bin');
    assert.equal(o.configPath, '/etc/containerd/config.toml');
    assert.equal(o.criSocket, '/run/containerd/containerd.sock');
    assert.deepEqual(o.hostExec, []);
    assert.equal(o.kube, undefined);
    assert.deepEqual(o.registration, { handler: 'burrow', runtimeType: 'io.containerd.burrow.v2', podAnnotations: ['*'], containerAnnotations: ['*'] });

    const d = installerOptions(
      parseArgs([
        'daemon', '--payload=/payload', '--install-dir=/var/lib/burrow', '--no-shim-link', '--handler=burrow-2', '--pod-annotations=a/*,b',
        '--container-annotations=', '--host-exec=nsenter -t 1 -m -u -i -n -p --', '--restart=command', '--restart-command=systemctl restart k3s',
        '--wait-timeout=30', '--node-label=example.com/b=yes', '--force',
      ]),
      {},
      () => undefined,
    );
    assert.equal(d.shimLinkDir, null);
    assert.deepEqual(d.hostExec, ['nsenter', '-t', '1', '-m', '-u', '-i', '-n', '-p', '--']);
    assert.deepEqual(d.registration.podAnnotations, ['a/*', 'b']);
    assert.deepEqual(d.registration.containerAnnotations, []);
    assert.equal(d.waitTimeoutMs, 30_000);
    assert.deepEqual(d.nodeLabel, { key: 'example.com/b', value: 'yes' });
    assert.equal(d.force, true);

    const refuse = (args: string[], re: RegExp, env: NodeJS.ProcessEnv = {}): void =>
      assert.throws(() => installerOptions(parseArgs(args), env, () => undefined), (e: Error) => e instanceof InstallerError && re.test(e.message));
    refuse(['install', '--payload', '/p', '--restart', 'reboot'], /--restart must be systemd or command/);
    refuse(['install', '--payload', '/p', '--restart', 'command'], /needs --restart-command/);
    refuse(['install', '--payload', '/p', '--handler', 'Bad'], /not a valid RuntimeClass handler/);
    refuse(['install', '--payload', '/p', '--config', 'etc/config.toml'], /--config must be an absolute path/);
    refuse(['install', '--payload', '/p', '--wait-timeout', '0'], /positive number of seconds/);
    assert.throws(() => parseArgs(['install', '--bogus']), /unknown option --bogus/);
    assert.throws(() => parseArgs(['install', '--config']), /--config needs a value/);
  });
});
