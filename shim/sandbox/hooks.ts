// OCI hooks that run in the runtime's namespaces (prestart, createRuntime, poststart,
// poststop): each is a program given the container's state JSON on stdin, run in order.
// (createContainer and startContainer run inside the container: see native/src/hooks.rs.)

import { spawn } from 'child_process';
import type { OciSpec } from './oci-spec';

export type RuntimeHookKind = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';

interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** The OCI runtime state, as hooks receive it. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export function ociState(spec: OciSpec, s: Omit<OciState, 'ociVersion' | 'annotations'>): OciState {
  return { ociVersion: spec.ociVersion, ...s, annotations: spec.annotations ?? {} };
}

const STDERR_LIMIT = 4096;

function runOne(kind: string, h: OciHook, state: string): Promise<void> {
  const args = h.args && h.args.length > 0 ? h.args : [h.path];
  const env: Record<string, string> = {};
  for (const e of h.env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(h.path, args.slice(1), { argv0: args[0], env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    const timer = h.timeout
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, h.timeout * 1000)
      : undefined;
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < STDERR_LIMIT) stderr += d.toString('utf8');
    });
    // A hook that does not read its stdin must not fail the write with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(state);
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${kind} hook ${JSON.stringify(h.path)}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut) return reject(new Error(`${kind} hook ${JSON.stringify(h.path)} timed out after ${h.timeout}s`));
      if (code === 0) return resolve();
      const status = code ?? `signal ${signal}`;
      const detail = stderr.trim() ? `: ${stderr.trim()}` : '';
      reject(new Error(`${kind} hook ${JSON.stringify(h.path)} exited with status ${status}${detail}`));
    });
  });
}

/** Runs the spec's hooks of `kind` in order; rejects with the first failure. */
export async function runRuntimeHooks(spec: OciSpec, kind: RuntimeHookKind, state: OciState): Promise<void> {
  const json = JSON.stringify(state);
  for (const h of (spec.hooks?.[kind] ?? []) as OciHook[]) await runOne(kind, h, json);
}
