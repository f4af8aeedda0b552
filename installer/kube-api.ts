// The few Kubernetes API calls the installer makes, over https with the pod's service account
// (no kubectl in the image): the API server from KUBERNETES_SERVICE_HOST/PORT, the token and
// CA bundle from the projected service-account volume.
import * as fs from 'fs';
import * as https from 'https';
import * as path from 'path';
import { InstallerError } from './errors';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeApi {
  /** https://host:port */
  server: string;
  token: string;
  ca: Buffer;
}

/** The in-cluster API, or undefined outside a cluster (no service host or no token). */
export function inClusterApi(env: NodeJS.ProcessEnv = process.env, saDir = SERVICE_ACCOUNT_DIR): KubeApi | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const tokenFile = path.join(saDir, 'token');
  if (!host || !fs.existsSync(tokenFile)) return undefined;
  const h = host.includes(':') ? `[${host}]` : host; // IPv6 service address
  return {
    server: `https://${h}:${port}`,
    token: fs.readFileSync(tokenFile, 'utf8').trim(),
    ca: fs.readFileSync(path.join(saDir, 'ca.crt')),
  };
}

export interface KubeResponse {
  status: number;
  body: unknown;
}

export function kubeRequest(
  api: KubeApi,
  method: 'GET' | 'PATCH',
  apiPath: string,
  body?: { contentType: string; value: unknown },
): Promise<KubeResponse> {
  const url = new URL(apiPath, api.server);
  const data = body ? Buffer.from(JSON.stringify(body.value)) : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: api.ca,
        headers: {
          Authorization: `Bearer ${api.token}`,
          Accept: 'application/json',
          ...(data ? { 'Content-Type': body!.contentType, 'Content-Length': data.length } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (e.g. a proxy's error page): keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', (e) => reject(new InstallerError(`${method} ${url.pathname} on ${api.server}: ${e.message}`)));
    req.end(data);
  });
}

/** A kubeRequest that must answer 2xx; returns the body. */
export async function kubeCall(
  api: KubeApi,
  method: 'GET' | 'PATCH',
  apiPath: string,
  body?: { contentType: string; value: unknown },
): Promise<unknown> {
  const res = await kubeRequest(api, method, apiPath, body);
  if (res.status < 200 || res.status > 299) {
    const msg = (res.body as { message?: string })?.message ?? JSON.stringify(res.body).slice(0, 300);
    throw new InstallerError(`${method} ${apiPath}: HTTP ${res.status}: ${msg}`);
  }
  return res.body;
}

export const MERGE_PATCH = 'application/merge-patch+json';
