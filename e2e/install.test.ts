// The installer against a real containerd: a private containerd 1.6 whose CRI config has no
// `burrow` handler, containerd's PATH a dir of links to the host tools it needs and no node
// (as on a Kubernetes node), the payload built by `npm run payload`'s code. Install registers
// the handler and restarts containerd; a kubelet-like pod then runs under the payload's own
// node; a second install changes nothing; uninstall gives back the original config byte for
// byte; a corrupt or unknown config is refused and left as it was.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { buildPayload } from '../installer/build-payload';
import { criStatus } from '../installer/cri-status';
import { InstallerError } from '../installer/errors';
import { InstallerOptions, install, uninstall } from '../installer/install';
import { readManifest, releaseDir } from '../installer/payload';
import { CriClient, CriError } from './cri/client';
import { readLog, runContainer, runPod, teardown, waitContainerExited } from './cri/pod';
import {
  BUSYBOX_REF, CRI_NAMESPACE, HostSnapshot, PrivateContainerd, assertNoLeaks, buildDir, ensureHostTools, importImage,
  importPauseImage, readEnviron, run, snapshotHost,
} from './harness';

/** What containerd and the shim call by name on a node; node is not among them. */
const HOST_TOOLS = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'readlink', 'sh', 'ip', 'mount', 'umount', 'unshare', 'nsenter'];

function which(tool: string): string {
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, tool);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`host tool ${tool} not found`);
}

/** A PATH dir with links to HOST_TOOLS only; the installer puts the shim link here too. */
function toolsDir(): string {
  const dir = path.join(buildDir('install'), 'tools');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const t of HOST_TOOLS) fs.symlinkSync(which(t), path.join(dir, t));
  return dir;
}

describe('installer against a private containerd (config without burrow, no node on PATH)', function () {
  this.timeout(300_000);
  let c: PrivateContainerd;
  let tools: string;
  let payload: string;
  let original: Buffer;
  let baseline: HostSnapshot;
  const logs: string[] = [];

  const options = (over: Partial<InstallerOptions> = {}): InstallerOptions => ({
    payloadDir: payload,
    installDir: path.join(c.instanceDir, 'opt-burrow'),
    shimLinkDir: tools,
    configPath: c.configFile,
    registration: { handler: 'burrow', runtimeType: 'io.containerd.burrow.v2', podAnnotations: ['*'], containerAnnotations: ['*'] },
    hostExec: [],
    containerdBinary: 'containerd',
    restart: () => c.restart(),
    criSocket: c.address,
    waitTimeoutMs: 60_000,
    nodeLabel: { key: 'burrow.dev/runtime', value: 'installed' },
    log: (m) => logs.push(m),
    ...over,
  });

  before(async function () {
    ensureHostTools();
    payload = path.join(buildDir('install'), 'payload');
    buildPayload(payload);
    tools = toolsDir();
    c = await PrivateContainerd.start({ name: 'install', cri: { handlers: ['runc'] }, extraEnv: { PATH: tools } });
    await importPauseImage(c);
    await importImage(c, BUSYBOX_REF, CRI_NAMESPACE);
    original = fs.readFileSync(c.configFile);
    baseline = await snapshotHost(c);
  });

  after(async function () {
    if (c) await c.stop();
    if (tools) fs.rmSync(tools, { recursive: true, force: true });
  });

  it('starts without the handler, and node cannot be found on containerd\'s PATH', async function () {
    assert.doesNotMatch(fs.readFileSync(c.configFile, 'utf8'), /runtimes\.burrow/);
    const st = await criStatus(c.address);
    assert.deepEqual(st.handlers, ['runc']);
    const r = await run('sh', ['-c', 'command -v node || echo none'], { env: { PATH: tools } });
    assert.equal(r.stdout.trim(), 'none');
    // containerd itself runs with that PATH.
    assert.equal(readEnviron(c.pid!).get('PATH'), tools);
  });

  it('refuses a corrupt config and an unknown config version, leaving them byte for byte (CLI)', async function () {
    const cli = path.join(payload, 'bin', 'burrow-installer');
    const cases: [string, Buffer, RegExp][] = [
      ['corrupt', Buffer.from('version = 2\n[plugins."io.containerd.grpc.v1.cri"\nsandbox_image = "x"\n'), /is not valid TOML/],
      ['version 1', Buffer.from('[plugins.cri]\n  sandbox_image = "x"\n'), /has no `version` key/],
      ['version 9', Buffer.from('version = 9\n'), /only versions 2 and 3 are supported/],
    ];
    try {
      for (const [what, bytes, message] of cases) {
        fs.writeFileSync(c.configFile, bytes);
        const args = [
          'install', '--config', c.configFile, '--install-dir', path.join(c.instanceDir, 'opt-burrow'),
          '--shim-link-dir', tools, '--restart', 'command', '--restart-command', '/bin/false', '--cri-socket', c.address,
        ];
        const r = await run(cli, args, { env: { PATH: tools, KUBERNETES_SERVICE_HOST: undefined } });
        assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, message, what);
        assert.ok(r.stderr.includes(c.configFile), `${what}: error does not name the file: ${r.stderr}`);
        assert.ok(fs.readFileSync(c.configFile).equals(bytes), `${what}: config changed`);
        assert.ok(!fs.existsSync(path.join(c.instanceDir, 'opt-burrow')), `${what}: payload copied`);
        assert.ok(!fs.existsSync(path.join(tools, 'containerd-shim-burrow-v2')), `${what}: shim linked`);
        assert.ok(!fs.existsSync(`${c.configFile}.burrow-backup`), `${what}: backup written`);
      }
    } finally {
      fs.writeFileSync(c.configFile, original);
    }
    await assertNoLeaks(c, baseline);
  });

  it('installs: payload, shim link, config with backup, restart, handler reported; labelling skipped', async function () {
    const pidBefore = c.pid;
    const r = await install(options());
    assert.equal(r.configChanged, true);
    assert.equal(r.restarted, true);
    assert.notEqual(c.pid, pidBefore, 'containerd was not restarted');
    assert.equal(r.containerd.major, 1);
    const text = fs.readFileSync(c.configFile, 'utf8');
    assert.match(text, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.burrow\]\nruntime_type = "io\.containerd\.burrow\.v2"/);
    assert.ok(fs.readFileSync(`${c.configFile}.burrow-backup`).equals(original));
    const release = releaseDir(path.join(c.instanceDir, 'opt-burrow'), readManifest(payload));
    assert.equal(fs.readlinkSync(path.join(tools, 'containerd-shim-burrow-v2')), path.join(c.instanceDir, 'opt-burrow', 'current', 'bin', 'containerd-shim-burrow-v2'));
    assert.equal(fs.realpathSync(path.join(c.instanceDir, 'opt-burrow', 'current')), release);
    assert.deepEqual((await criStatus(c.address)).handlers, ['burrow', 'runc']);
    assert.ok(logs.some((l) => /node labelling skipped/.test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /^host check: node v\d+.* loads$/.test(l)), logs.join('\n'));
    await assertNoLeaks(c, baseline);
  });

  it('runs a pod with handler burrow on the payload\'s own node; uninstall refuses while it runs', async function () {
    const client = new CriClient(c.address);
    try {
      await client.waitReady();
      const pod = await runPod(client, { name: 'installed', handler: 'burrow', logRoot: c.cri?.podLogDir, cgroupRoot: c.cri?.cgroupRoot });
      try {
        const id = await runContainer(client, pod, { name: 'hello', image: BUSYBOX_REF, command: ['echo', 'hello from the payload'] });
        const st = await waitContainerExited(client, id);
        assert.equal(st.exit_code, 0, JSON.stringify(st));
        assert.deepEqual(readLog(st.log_path), ['hello from the payload']);

        // The pod's shim: a node process of the installed release (found by containerd's TTRPC_ADDRESS).
        const release = releaseDir(path.join(c.instanceDir, 'opt-burrow'), readManifest(payload));
        const shims = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
          try {
            return readEnviron(Number(p)).get('TTRPC_ADDRESS') === c.ttrpcAddress && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('main.js');
          } catch {
            return false;
          }
        });
        assert.ok(shims.length > 0, 'no shim process found');
        for (const p of shims) {
          assert.equal(fs.readlinkSync(`/proc/${p}/exe`), path.join(release, 'node', 'bin', 'node'));
          // Its native library and the libseccomp the payload carries, not the host's.
          const maps = fs.readFileSync(`/proc/${p}/maps`, 'utf8');
          assert.ok(maps.includes(path.join(release, 'native', 'target', 'release', 'libburrow_native.so')), `shim ${p} has no payload native library`);
          assert.ok(maps.includes(path.join(release, 'lib', 'libseccomp.so.2')), `shim ${p} does not use the payload's libseccomp`);
        }

        const before = fs.readFileSync(c.configFile);
        await assert.rejects(uninstall(options()), (e: Error) => e instanceof InstallerError && /shims are running/.test(e.message));
        assert.ok(fs.readFileSync(c.configFile).equals(before), 'refused uninstall changed the config');
      } finally {
        await teardown(client, pod);
      }
    } finally {
      client.close();
    }
    await assertNoLeaks(c, baseline);
  });

  it('installs again without changing the config or restarting containerd', async function () {
    const before = fs.readFileSync(c.configFile);
    const pid = c.pid;
    const r = await install(options());
    assert.equal(r.configChanged, false);
    assert.equal(r.restarted, false);
    assert.equal(c.pid, pid);
    assert.ok(fs.readFileSync(c.configFile).equals(before), 'second install changed the config');
    assert.ok(fs.readFileSync(`${c.configFile}.burrow-backup`).equals(original), 'second install replaced the backup');
    await assertNoLeaks(c, baseline);
  });

  it('uninstalls: the original config byte for byte, the handler gone, nothing of ours left', async function () {
    const r = await uninstall(options());
    assert.equal(r.configChanged, true);
    assert.ok(fs.readFileSync(c.configFile).equals(original), 'config differs from the original');
    assert.ok(!fs.existsSync(`${c.configFile}.burrow-backup`));
    assert.ok(!fs.existsSync(path.join(tools, 'containerd-shim-burrow-v2')));
    assert.ok(!fs.existsSync(path.join(c.instanceDir, 'opt-burrow')));
    assert.deepEqual((await criStatus(c.address)).handlers, ['runc']);
    const client = new CriClient(c.address);
    try {
      await assert.rejects(
        runPod(client, { name: 'after', handler: 'burrow', logRoot: c.cri?.podLogDir, cgroupRoot: c.cri?.cgroupRoot }),
        (e: Error) => e instanceof CriError && /burrow/.test(e.message),
      );
    } finally {
      client.close();
    }
    // A second uninstall has nothing to do.
    const again = await uninstall(options());
    assert.equal(again.configChanged, false);
    await assertNoLeaks(c, baseline);
  });

  it('the CLI, as the DaemonSet runs it (host commands through nsenter, restart command): install, then uninstall', async function () {
    // The restart command asks this process, over a unix socket, to restart the private
    // containerd (the harness owns the daemon); it runs with the payload's node.
    const sock = path.join(c.instanceDir, 'restart.sock');
    const script = path.join(buildDir('install'), 'restart-client.js');
    fs.writeFileSync(script, [
      "const s = require('net').connect(process.argv[2]); let out = '';",
      "s.on('data', (d) => (out += d)); s.on('error', (e) => { console.error(e.message); process.exit(1); });",
      "s.on('end', () => process.exit(out.startsWith('ok') ? 0 : 1));",
    ].join('\n'));
    let restarts = 0;
    const server = net.createServer((conn) => {
      restarts++;
      c.restart().then(() => conn.end('ok\n'), (e: Error) => conn.end(`failed: ${e.message}\n`));
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    const cli = path.join(payload, 'bin', 'burrow-installer');
    const flags = [
      '--config', c.configFile, '--install-dir', path.join(c.instanceDir, 'opt-burrow'), '--shim-link-dir', tools,
      // The DaemonSet enters pid 1's namespaces; this machine's pid 1 may not be entered, so the
      // same nsenter goes into this process's (the host's) namespaces.
      '--host-exec', `nsenter -t ${process.pid} -m -u -i -n -p --`, '--restart', 'command',
      '--restart-command', `${path.join(payload, 'node', 'bin', 'node')} ${script} ${sock}`,
      '--cri-socket', c.address, '--wait-timeout', '60',
    ];
    const env = { PATH: tools, KUBERNETES_SERVICE_HOST: undefined };
    try {
      const inst = await run(cli, ['install', ...flags], { env });
      assert.equal(inst.code, 0, `${inst.stdout}${inst.stderr}`);
      assert.match(inst.stdout, /restarting containerd/);
      assert.match(inst.stdout, /containerd serves runtime handler "burrow"/);
      assert.match(inst.stdout, /not in a cluster \(no service account\): node labelling skipped/);
      assert.equal(restarts, 1);
      assert.deepEqual((await criStatus(c.address)).handlers, ['burrow', 'runc']);

      const un = await run(cli, ['uninstall', ...flags], { env });
      assert.equal(un.code, 0, `${un.stdout}${un.stderr}`);
      assert.equal(restarts, 2);
      assert.ok(fs.readFileSync(c.configFile).equals(original), 'config differs from the original');
      assert.deepEqual((await criStatus(c.address)).handlers, ['runc']);
      assert.ok(!fs.existsSync(path.join(c.instanceDir, 'opt-burrow')));
      assert.ok(!fs.existsSync(path.join(tools, 'containerd-shim-burrow-v2')));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(script, { force: true });
    }
    await assertNoLeaks(c, baseline);
  });
});
