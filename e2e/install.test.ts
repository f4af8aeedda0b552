// The installer against a real containerd of each matrix version (1.6 and 1.7 with config
// version 2, 2.1 with version 3): a private containerd whose CRI config has no `burrow` handler,
// containerd's PATH a dir of links to the host tools it needs and no node (as on a Kubernetes
// node), the payload built by `npm run payload`'s code. Install registers the handler (in the
// main config on 1.x, in a conf.d drop-in the main config imports on 2.x) and restarts
// containerd; a kubelet-like pod then runs under the payload's own node; a second install
// changes nothing; uninstall gives back the original config byte for byte; a corrupt, unknown
// or incompatible config is refused and left as it was.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { parse } from 'smol-toml';
import { buildPayload } from '../installer/build-payload';
import { criStatus } from '../installer/cri-status';
import { InstallerError } from '../installer/errors';
import { InstallerOptions, install, uninstall } from '../installer/install';
import { readManifest, releaseDir } from '../installer/payload';
import { CriClient, CriError } from './cri/client';
import { readLog, runContainer, runPod, teardown, waitContainerExited } from './cri/pod';
import {
  BUSYBOX_REF, CRI_NAMESPACE, ContainerdVersion, HostSnapshot, PrivateContainerd, assertNoLeaks, buildDir,
  containerdBinaries, ensureHostTools, importImage, importPauseImage, matrixVersions, readEnviron, run, snapshotHost,
} from './harness';

/** What containerd and the shim call by name on a node; node is not among them. */
const HOST_TOOLS = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'readlink', 'sh', 'ip', 'mount', 'umount', 'unshare', 'nsenter'];

/** containerd, ctr and the runc shim of the version under test; the rest from the host. */
function which(tool: string, version: ContainerdVersion): string {
  const b = containerdBinaries(version);
  const own: Record<string, string> = { containerd: b.containerd, ctr: b.ctr, 'containerd-shim-runc-v2': b.shimRuncV2 };
  if (own[tool]) return own[tool];
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, tool);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`host tool ${tool} not found`);
}

/** A PATH dir with links to HOST_TOOLS only; the installer puts the shim link here too. */
function toolsDir(version: ContainerdVersion): string {
  const dir = path.join(buildDir('install'), `tools-${version}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const t of HOST_TOOLS) fs.symlinkSync(which(t, version), path.join(dir, t));
  return dir;
}

type Toml = Record<string, unknown>;

const parseToml = (bytes: Buffer | string): Toml => parse(bytes.toString(), { integersAsBigInt: true }) as Toml;

/** The CRI plugin holding `containerd.runtimes` in each config version. */
const RUNTIME_PLUGIN = { 2: 'io.containerd.grpc.v1.cri', 3: 'io.containerd.cri.v1.runtime' } as const;

function runtimesOf(doc: Toml, configVersion: 2 | 3): Toml | undefined {
  const plugins = doc.plugins as Toml | undefined;
  const cri = plugins?.[RUNTIME_PLUGIN[configVersion]] as Toml | undefined;
  return (cri?.containerd as Toml | undefined)?.runtimes as Toml | undefined;
}

describe('installer on each containerd version', function () {
  let payload: string;

  before(function () {
    this.timeout(600_000);
    payload = path.join(buildDir('install'), 'payload');
    buildPayload(payload);
  });

  for (const version of matrixVersions()) describe(`installer against a private containerd ${version} (config without burrow, no node on PATH)`, function () {
    this.timeout(300_000);
    const configVersion = containerdBinaries(version).configVersion;
    let c: PrivateContainerd;
    let tools: string;
    let original: Buffer;
    let baseline: HostSnapshot;
    const logs: string[] = [];
    /** Where 2.x gets the registration: conf.d beside the main config (the installer's default). */
    const dropInDir = (): string => path.join(c.instanceDir, 'conf.d');
    const dropIn = (): string => path.join(dropInDir(), 'burrow.toml');

    const options = (over: Partial<InstallerOptions> = {}): InstallerOptions => ({
      payloadDir: payload,
      installDir: path.join(c.instanceDir, 'opt-burrow'),
      shimLinkDir: tools,
      configPath: c.configFile,
      registration: { handler: 'burrow', runtimeType: 'io.containerd.burrow.v2', podAnnotations: ['*'], containerAnnotations: ['*'] },
      hostExec: [],
      // The version under test (the host's PATH has the system 1.6 first).
      containerdBinary: c.binaries.containerd,
      restart: () => c.restart(),
      criSocket: c.address,
      waitTimeoutMs: 60_000,
      nodeLabel: { key: 'burrow.dev/runtime', value: 'installed' },
      log: (m) => logs.push(m),
      ...over,
    });

    before(async function () {
      ensureHostTools(version);
      tools = toolsDir(version);
      c = await PrivateContainerd.start({
        name: `install-${version.replace('.', '')}`, version, cri: { handlers: ['runc'] }, extraEnv: { PATH: tools },
      });
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
      assert.equal(parseToml(original).version, BigInt(configVersion));
      assert.ok(runtimesOf(parseToml(original), configVersion)?.runc, 'the config has no runc runtime where the installer looks');
      const st = await criStatus(c.address);
      assert.deepEqual(st.handlers, ['runc']);
      const r = await run('sh', ['-c', 'command -v node || echo none'], { env: { PATH: tools } });
      assert.equal(r.stdout.trim(), 'none');
      // containerd itself runs with that PATH.
      assert.equal(readEnviron(c.pid!).get('PATH'), tools);
    });

    it('refuses a corrupt, unknown or incompatible config, leaving it byte for byte (CLI)', async function () {
      const cli = path.join(payload, 'bin', 'burrow-installer');
      const cases: [string, Buffer, RegExp][] = [
        ['corrupt', Buffer.from('version = 2\n[plugins."io.containerd.grpc.v1.cri"\nsandbox_image = "x"\n'), /is not valid TOML/],
        ['version 1', Buffer.from('[plugins.cri]\n  sandbox_image = "x"\n'), /has no `version` key/],
        ['version 9', Buffer.from('version = 9\n'), /only versions 2 and 3 are supported/],
      ];
      if (configVersion === 2) {
        // This containerd's own `--version` says 1.x: a version 3 file is not for it.
        const refusal = new RegExp(`is version 3, but containerd ${version.replace('.', '\\.')}\\.\\d+\\S* reads versions 1 and 2 only`);
        cases.push(['version 3 on 1.x', Buffer.from('version = 3\n'), refusal]);
      } else {
        // The main file registers the handler itself: the drop-in would fight with it.
        const own = `${original.toString()}\n[plugins."${RUNTIME_PLUGIN[3]}".containerd.runtimes.burrow]\n  runtime_type = "io.containerd.other.v2"\n`;
        cases.push(['handler in the main file', Buffer.from(own), /defines runtime handler "burrow" itself/]);
      }
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
          assert.ok(!fs.existsSync(dropInDir()), `${what}: drop-in dir created`);
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
      assert.equal(`${r.containerd.major}.${r.containerd.minor}`, version);
      const text = fs.readFileSync(c.configFile, 'utf8');
      const main = parseToml(text);
      const expected = parseToml(original);
      if (configVersion === 2) {
        // 1.x: in the main file (a drop-in naming the CRI plugin would replace its whole section).
        assert.match(text, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.burrow\]\nruntime_type = "io\.containerd\.burrow\.v2"/);
        assert.ok(!fs.existsSync(dropInDir()), 'a drop-in dir on 1.x');
        const runtimes = runtimesOf(main, 2)!;
        // smol-toml's tables have no prototype; the expectation is a plain object.
        assert.deepEqual({ ...(runtimes.burrow as Toml) }, { runtime_type: 'io.containerd.burrow.v2', pod_annotations: ['*'], container_annotations: ['*'] });
        delete runtimes.burrow;
      } else {
        // 2.x: a version 3 drop-in of its own, imported by the main file, which gains nothing else.
        const drop = fs.readFileSync(dropIn(), 'utf8');
        assert.match(drop, /^version = 3$/m);
        assert.match(drop, /\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.burrow\]\nruntime_type = "io\.containerd\.burrow\.v2"/);
        assert.deepEqual(main.imports, [dropIn()]);
        assert.doesNotMatch(text, /runtimes\.burrow/);
        delete main.imports;
      }
      // Every other setting of the original config is still there, with the same values and types.
      assert.deepEqual(main, expected);
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
              // The daemon from the payload's snapshot (built with its node), or Node's `start`'s.
              const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
              return readEnviron(Number(p)).get('TTRPC_ADDRESS') === c.ttrpcAddress && /shim-daemon\.blob|shim\.bundle\.js|main\.js/.test(cmdline);
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
      const dropBefore = configVersion === 3 ? fs.readFileSync(dropIn()) : undefined;
      const pid = c.pid;
      const r = await install(options());
      assert.equal(r.configChanged, false);
      assert.equal(r.restarted, false);
      assert.equal(c.pid, pid);
      assert.ok(fs.readFileSync(c.configFile).equals(before), 'second install changed the config');
      if (dropBefore) assert.ok(fs.readFileSync(dropIn()).equals(dropBefore), 'second install changed the drop-in');
      assert.ok(!fs.existsSync(`${dropIn()}.burrow-backup`), 'second install backed up its own drop-in');
      assert.ok(fs.readFileSync(`${c.configFile}.burrow-backup`).equals(original), 'second install replaced the backup');
      await assertNoLeaks(c, baseline);
    });

    it('uninstalls: the original config byte for byte, the handler gone, nothing of ours left', async function () {
      const r = await uninstall(options());
      assert.equal(r.configChanged, true);
      assert.ok(fs.readFileSync(c.configFile).equals(original), 'config differs from the original');
      assert.ok(!fs.existsSync(`${c.configFile}.burrow-backup`));
      assert.ok(!fs.existsSync(dropInDir()), 'the drop-in dir the installer created is still there');
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
        assert.equal(fs.existsSync(dropIn()), configVersion === 3, `drop-in ${dropIn()}`);

        const un = await run(cli, ['uninstall', ...flags], { env });
        assert.equal(un.code, 0, `${un.stdout}${un.stderr}`);
        assert.equal(restarts, 2);
        assert.ok(fs.readFileSync(c.configFile).equals(original), 'config differs from the original');
        assert.ok(!fs.existsSync(dropInDir()), 'drop-in dir left');
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
});
