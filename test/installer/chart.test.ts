// charts/burrow with the real helm (3.17, from an npm package): lint and template for the
// default values and three other value sets, every rendered object validated offline against
// the Kubernetes API schemas (kubernetes-models), the wiring between the objects checked, and
// bad values refused by values.schema.json.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { installerOptions, parseArgs } from '../../installer/cli';
import { helmBinary } from './helm-binary';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHART = path.join(ROOT, 'charts', 'burrow');

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
};

function helm(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(helmBinary(), args, {
    encoding: 'utf8',
    // helm's own state stays out of $HOME.
    env: { ...process.env, HELM_CACHE_HOME: path.join(os.tmpdir(), 'burrow-helm-cache'), HELM_CONFIG_HOME: path.join(os.tmpdir(), 'burrow-helm-config'), HELM_DATA_HOME: path.join(os.tmpdir(), 'burrow-helm-data') },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The kubernetes-models class for an apiVersion/kind (e.g. apps/v1 DaemonSet → kubernetes-models/apps/v1). */
function modelClass(apiVersion: string, kind: string): new (o: object) => { validate(): void } {
  const mod = apiVersion.includes('/') ? apiVersion : `v1`;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const models = require(`kubernetes-models/${mod}`) as Record<string, new (o: object) => { validate(): void }>;
  const cls = models[kind];
  if (!cls) throw new Error(`kubernetes-models has no ${kind} in ${apiVersion}`);
  return cls;
}

function render(values: object, extra: string[] = []): K8sObject[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-values-'));
  try {
    const file = path.join(dir, 'values.json');
    fs.writeFileSync(file, JSON.stringify(values));
    const lint = helm(['lint', '--strict', CHART, '-f', file]);
    assert.equal(lint.code, 0, `helm lint: ${lint.stdout}${lint.stderr}`);
    const t = helm(['template', 'rel', CHART, '--namespace', 'burrow-system', '-f', file, ...extra]);
    assert.equal(t.code, 0, `helm template: ${t.stderr}`);
    const docs = parseAllDocuments(t.stdout).map((d) => d.toJSON() as K8sObject | null).filter((o): o is K8sObject => o !== null);
    for (const o of docs) {
      const Cls = modelClass(o.apiVersion, o.kind);
      try {
        new Cls(o).validate();
      } catch (e) {
        throw new Error(`${o.kind} ${o.metadata?.name}: ${(e as Error).message}`);
      }
    }
    return docs;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function find(objs: K8sObject[], kind: string, pred: (o: K8sObject) => boolean = () => true): K8sObject {
  const o = objs.find((x) => x.kind === kind && pred(x));
  assert.ok(o, `no ${kind} rendered (have ${objs.map((x) => x.kind).join(', ')})`);
  return o;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: { privileged?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  hostPID?: boolean;
  serviceAccountName?: string;
  runtimeClassName?: string;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string } }[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
}
const daemonSetPod = (o: K8sObject): PodSpec => (o.spec as { template: { spec: PodSpec } }).template.spec;

/** The installer's --flag=value arguments as a map. */
function argMap(c: Container): Map<string, string> {
  return new Map((c.args ?? []).map((a) => {
    const eq = a.indexOf('=');
    return eq < 0 ? [a.slice(2), ''] : [a.slice(2, eq), a.slice(eq + 1)];
  }));
}

/** Checks that hold for every value set: what the installer needs and how the objects meet. */
function checkWiring(objs: K8sObject[], v: { handler: string; rcName: string; label: string; configDir: string; installDir: string; linkDir: string; socketDir: string }): void {
  const installParent = path.dirname(v.installDir);
  const ds = find(objs, 'DaemonSet');
  const pod = daemonSetPod(ds);
  assert.equal(pod.hostPID, true);
  const c = pod.containers[0];
  assert.equal(c.securityContext?.privileged, true);
  assert.deepEqual(c.command, ['/payload/bin/burrow-installer', 'daemon']);
  const args = argMap(c);
  assert.equal(args.get('handler'), v.handler);
  assert.equal(args.get('node-label'), v.label);
  assert.equal(args.get('install-dir'), v.installDir);
  assert.equal(args.get('host-exec'), 'nsenter -t 1 -m -u -i -n -p --');
  // The installer itself accepts what the chart passes it.
  const parsed = installerOptions(parseArgs(['daemon', ...(c.args ?? [])]), {}, () => undefined);
  assert.equal(parsed.registration.handler, v.handler);
  assert.equal(parsed.installDir, v.installDir);
  assert.equal(parsed.shimLinkDir, v.linkDir);
  const envs = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
  assert.equal(envs.NODE_NAME, 'spec.nodeName');
  assert.equal(envs.BURROW_MODE, "metadata.annotations['burrow.dev/mode']");
  // Host paths mounted at the host's own paths.
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
  const vols = new Map((pod.volumes ?? []).map((x) => [x.name, x.hostPath?.path]));
  for (const [name, p] of [['containerd-config', v.configDir], ['install-parent', installParent], ['shim-link-dir', v.linkDir], ['containerd-socket', v.socketDir]]) {
    assert.equal(mounts.get(name), p, `mount ${name}`);
    assert.equal(vols.get(name), p, `hostPath ${name}`);
  }
  // RBAC: the service account may patch nodes (label) and its own DaemonSet (uninstall hook).
  const sa = pod.serviceAccountName;
  const crb = find(objs, 'ClusterRoleBinding');
  assert.ok((crb.subjects as { name: string }[]).some((s) => s.name === sa));
  const cr = find(objs, 'ClusterRole');
  assert.deepEqual((cr.rules as { resources: string[]; verbs: string[] }[])[0], { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] });
  const role = find(objs, 'Role');
  assert.deepEqual((role.rules as { resourceNames: string[] }[])[0].resourceNames, [ds.metadata.name]);
  // The pre-delete hook drives this DaemonSet.
  const job = find(objs, 'Job');
  assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'pre-delete');
  const jobC = (job.spec as { template: { spec: PodSpec } }).template.spec.containers[0];
  assert.deepEqual(jobC.command, ['/payload/bin/burrow-installer', 'coordinate-uninstall']);
  assert.equal(argMap(jobC).get('daemonset'), ds.metadata.name);
  assert.equal(parseArgs(['coordinate-uninstall', ...(jobC.args ?? [])]).values.get('daemonset'), ds.metadata.name);
  // The helm test pod runs with the RuntimeClass.
  const testPod = find(objs, 'Pod', (o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
  assert.equal((testPod.spec as PodSpec).runtimeClassName, v.rcName);
}

describe('charts/burrow with helm 3.17: lint, template, Kubernetes schemas, values schema', function () {
  this.timeout(120_000);

  it('uses the helm binary shipped in the npm package', function () {
    const r = helm(['version', '--short']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^v3\.17\./);
  });

  it('default values: every object valid; RuntimeClass handler, overhead and node selector', function () {
    const objs = render({});
    assert.deepEqual(objs.map((o) => o.kind).sort(), [
      'ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'Job', 'Pod', 'Role', 'RoleBinding', 'RuntimeClass', 'ServiceAccount',
    ]);
    const rc = find(objs, 'RuntimeClass');
    assert.equal(rc.metadata.name, 'burrow');
    assert.equal(rc.handler, 'burrow');
    assert.deepEqual(rc.overhead, { podFixed: { memory: '80Mi', cpu: '50m' } });
    assert.deepEqual(rc.scheduling, { nodeSelector: { 'burrow.dev/runtime': 'installed' } });
    checkWiring(objs, {
      handler: 'burrow', rcName: 'burrow', label: 'burrow.dev/runtime=installed', configDir: '/etc/containerd',
      installDir: '/opt/burrow', linkDir: '/usr/local/bin', socketDir: '/run/containerd',
    });
    const args = argMap(daemonSetPod(find(objs, 'DaemonSet')).containers[0]);
    assert.equal(args.get('restart'), 'systemd');
    assert.equal(args.get('systemd-unit'), 'containerd');
  });

  it('deploy/runtimeclass.yaml is valid and the same RuntimeClass the chart renders by default', function () {
    const file = parseAllDocuments(fs.readFileSync(path.join(ROOT, 'deploy', 'runtimeclass.yaml'), 'utf8')).map((d) => d.toJSON() as K8sObject);
    assert.equal(file.length, 1);
    const rc = file[0];
    new (modelClass(rc.apiVersion, rc.kind))(rc).validate();
    const rendered = find(render({}), 'RuntimeClass');
    for (const k of ['apiVersion', 'kind', 'handler', 'overhead', 'scheduling']) assert.deepEqual(rc[k], rendered[k], k);
    assert.equal(rc.metadata.name, rendered.metadata.name);
  });

  it('containerd 2.x node: drop-in dir mounted, custom handler and RuntimeClass name, restart command', function () {
    const objs = render({
      handler: 'burrow-v3',
      runtimeClass: { create: true, name: 'burrow-v3', overhead: { podFixed: { memory: '96Mi', cpu: '100m' } } },
      nodeLabel: { key: 'example.com/burrow', value: 'v3' },
      containerd: {
        configPath: '/etc/containerd/config.toml', dropInDir: '/etc/containerd/burrow.d', socket: '/run/containerd/containerd.sock',
        restart: { method: 'command', command: ['systemctl', 'restart', 'containerd.service'] }, waitTimeoutSeconds: 300,
      },
    });
    const rc = find(objs, 'RuntimeClass');
    assert.equal(rc.handler, 'burrow-v3');
    assert.deepEqual(rc.scheduling, { nodeSelector: { 'example.com/burrow': 'v3' } });
    checkWiring(objs, {
      handler: 'burrow-v3', rcName: 'burrow-v3', label: 'example.com/burrow=v3', configDir: '/etc/containerd',
      installDir: '/opt/burrow', linkDir: '/usr/local/bin', socketDir: '/run/containerd',
    });
    const c = daemonSetPod(find(objs, 'DaemonSet')).containers[0];
    const args = argMap(c);
    assert.equal(args.get('drop-in-dir'), '/etc/containerd/burrow.d');
    assert.equal(args.get('restart'), 'command');
    assert.equal(args.get('restart-command'), 'systemctl restart containerd.service');
    assert.equal(args.get('wait-timeout'), '300');
    assert.ok((c.volumeMounts ?? []).some((m) => m.mountPath === '/etc/containerd/burrow.d'));
  });

  it('k3s-like node: other config, socket and install paths; scheduling, pull secrets, forced uninstall', function () {
    const objs = render({
      containerd: {
        configPath: '/var/lib/rancher/k3s/agent/etc/containerd/config.toml', socket: '/run/k3s/containerd/containerd.sock',
        restart: { method: 'systemd', systemdUnit: 'k3s-agent.service' }, waitTimeoutSeconds: 120,
      },
      install: { dir: '/var/lib/burrow', shimLinkDir: '/var/lib/rancher/k3s/data/current/bin', podAnnotations: ['burrow.dev/*'], containerAnnotations: [] },
      nodeSelector: { 'node-role.kubernetes.io/worker': 'true' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'burrow', effect: 'NoSchedule' }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] }] }] } } },
      imagePullSecrets: [{ name: 'regcred' }],
      uninstall: { timeoutSeconds: 900, force: true },
      image: { repository: 'registry.example.com/burrow/installer', tag: '0.1.0-rc1', pullPolicy: 'Always' },
    });
    checkWiring(objs, {
      handler: 'burrow', rcName: 'burrow', label: 'burrow.dev/runtime=installed', configDir: '/var/lib/rancher/k3s/agent/etc/containerd',
      installDir: '/var/lib/burrow', linkDir: '/var/lib/rancher/k3s/data/current/bin', socketDir: '/run/k3s/containerd',
    });
    const pod = daemonSetPod(find(objs, 'DaemonSet'));
    assert.equal(pod.containers[0].image, 'registry.example.com/burrow/installer:0.1.0-rc1');
    // Helm merges maps with the defaults (kubernetes.io/os stays unless set to null).
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux', 'node-role.kubernetes.io/worker': 'true' });
    assert.equal(pod.tolerations?.length, 1);
    const args = argMap(pod.containers[0]);
    assert.equal(args.get('systemd-unit'), 'k3s-agent.service');
    assert.equal(args.get('pod-annotations'), 'burrow.dev/*');
    assert.equal(args.get('container-annotations'), '');
    assert.ok(args.has('force'));
    assert.equal((find(objs, 'Job').spec as { activeDeadlineSeconds: number }).activeDeadlineSeconds, 960);
  });

  it('existing RuntimeClass and service account: neither rendered, the DaemonSet uses the named account', function () {
    const objs = render({ runtimeClass: { create: false, name: 'burrow', overhead: { podFixed: {} } }, serviceAccount: { create: false, name: 'node-admin' } });
    assert.ok(!objs.some((o) => o.kind === 'RuntimeClass' || o.kind === 'ServiceAccount'));
    assert.equal(daemonSetPod(find(objs, 'DaemonSet')).serviceAccountName, 'node-admin');
  });

  it('refuses bad values through values.schema.json (lint and template)', function () {
    const bad: [string, string[], RegExp][] = [
      ['handler with capitals', ['--set', 'handler=Burrow_1'], /handler/],
      ['unknown restart method', ['--set', 'containerd.restart.method=reboot'], /containerd\.restart\.method/],
      ['restart command without argv', ['--set', 'containerd.restart.method=command'], /containerd\.restart/],
      ['relative config path', ['--set', 'containerd.configPath=etc/containerd/config.toml'], /containerd\.configPath/],
      ['not a quantity', ['--set', 'runtimeClass.overhead.podFixed.memory=lots'], /podFixed\.memory/],
      ['unknown key', ['--set', 'containerd.imports=x'], /Additional property imports/],
      ['bad node label', ['--set', 'nodeLabel.key=-bad-'], /nodeLabel\.key/],
      ['install dir directly under /', ['--set', 'install.dir=/burrow'], /install\.dir/],
    ];
    for (const [what, args, message] of bad) {
      const t = helm(['template', 'rel', CHART, ...args]);
      assert.notEqual(t.code, 0, `${what}: helm template accepted it`);
      assert.match(t.stderr, message, `${what}: ${t.stderr}`);
      const l = helm(['lint', CHART, ...args]);
      assert.notEqual(l.code, 0, `${what}: helm lint accepted it`);
    }
  });
});
