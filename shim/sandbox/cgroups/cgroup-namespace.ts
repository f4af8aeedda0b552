// A new cgroup namespace must be rooted at the container's own cgroup (the container then sees
// itself at "/" in /proc/self/cgroup, as under runc). clone3(CLONE_NEWCGROUP) roots it at the
// cgroup the shim is in while cloning, and Burrow's native child cannot unshare later, after
// the shim moved it, as runc's init does. So the namespace is made beforehand: a helper process
// is put into the container's cgroup and runs unshare(1) --cgroup there; the init then joins
// that namespace by path instead of creating one, and the helper goes away once the init is set up.

import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import { invalidArgument } from '../errors';
import type { LaunchPlan } from '../launch-plan';
import * as L from '../linux';
import type { CgroupManager } from './manager';

const UNSHARE_PATHS = ['/usr/bin/unshare', '/bin/unshare'];
const SHELL = '/bin/sh';

/**
 * True when the plan makes a new cgroup namespace (which then has to come from a holder). With
 * a new user namespace too the holder's namespace would belong to the host's user namespace,
 * which the container could not join: refused until the native child can unshare itself.
 */
export function needsCgroupNamespaceHolder(plan: LaunchPlan): boolean {
  if ((plan.cloneFlags & L.CLONE_NEWCGROUP) === 0) return false;
  if ((plan.cloneFlags & L.CLONE_NEWUSER) !== 0) {
    throw invalidArgument(
      'linux.namespaces: a new cgroup namespace together with a new user namespace is not supported yet ' +
        '(the cgroup namespace has to be rooted at the container\'s cgroup and owned by its user namespace)',
    );
  }
  return true;
}

/** The plan with its new cgroup namespace replaced by joining `nsPath` (before the mount namespace, as JOIN_ORDER). */
export function joinCgroupNamespace(plan: LaunchPlan, nsPath: string): LaunchPlan {
  const joins = [...plan.joinNamespaces];
  const entry = { flag: L.CLONE_NEWCGROUP, path: nsPath };
  const mount = joins.findIndex((j) => j.flag === L.CLONE_NEWNS);
  if (mount >= 0) joins.splice(mount, 0, entry);
  else joins.push(entry);
  return { ...plan, cloneFlags: plan.cloneFlags & ~L.CLONE_NEWCGROUP, joinNamespaces: joins };
}

/** A process holding a cgroup namespace rooted at a container's cgroup, until dispose(). */
export class CgroupNamespaceHolder {
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /** /proc/<pid>/ns/cgroup of the holder: what the container's init joins. */
  get path(): string {
    return `/proc/${this.pid}/ns/cgroup`;
  }

  static async create(cgroup: CgroupManager, id: string, timeoutMs = 10_000): Promise<CgroupNamespaceHolder> {
    const unshare = UNSHARE_PATHS.find((p) => fs.existsSync(p));
    if (!unshare) {
      throw new Error(`container ${id}: a new cgroup namespace needs unshare(1) (util-linux) at ${UNSHARE_PATHS.join(' or ')}`);
    }
    // Waits on stdin until it is in the container's cgroup, then unshares there, says "ready"
    // and waits for stdin to close.
    const script = `read -r go && exec ${unshare} --cgroup ${SHELL} -c 'echo ready && read -r done'`;
    const child = spawn(SHELL, ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    const failed = (why: string) => new Error(`container ${id}: cgroup namespace helper: ${why}${output ? `: ${output.trim()}` : ''}`);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(failed(err.message)));
      child.once('spawn', () => resolve(child.pid!));
    });
    const holder = new CgroupNamespaceHolder(child, pid);
    try {
      cgroup.addProcess(pid);
      child.stdin!.write('go\n');
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(failed(`not ready after ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (output.includes('ready\n')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout!.on('data', check);
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(failed(`exited (${signal ?? code}) before its namespace existed`));
        });
        check();
      });
      if (fs.readlinkSync(holder.path) === fs.readlinkSync('/proc/self/ns/cgroup')) {
        throw failed('its cgroup namespace is still the shim\'s');
      }
    } catch (err) {
      await holder.dispose();
      throw err;
    }
    return holder;
  }

  /** Ends the helper (the namespace lives on in the processes that joined it). */
  async dispose(): Promise<void> {
    this.child.stdin?.end();
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 2_000).unref());
    if (!(await Promise.race([this.exited.then(() => true), timeout]))) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
