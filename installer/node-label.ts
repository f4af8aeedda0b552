// The node label the RuntimeClass's scheduling.nodeSelector matches: set once containerd serves
// the handler, removed before it stops serving it, so pods asking for Burrow only land on nodes
// that can run them.
import { InstallerError } from './errors';
import { KubeApi, kubeCall, MERGE_PATCH } from './kube-api';

export interface NodeLabel {
  key: string;
  value: string;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function parseNodeLabel(text: string): NodeLabel {
  const eq = text.indexOf('=');
  const key = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? 'true' : text.slice(eq + 1);
  if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) {
    throw new InstallerError(`node label ${JSON.stringify(text)} is not a valid key=value Kubernetes label`);
  }
  return { key, value };
}

function nodePath(node: string): string {
  return `/api/v1/nodes/${encodeURIComponent(node)}`;
}

/** Sets the label; returns the value it had before (undefined when absent). */
export async function setNodeLabel(api: KubeApi, node: string, label: NodeLabel): Promise<string | undefined> {
  const cur = (await kubeCall(api, 'GET', nodePath(node))) as { metadata?: { labels?: Record<string, string> } };
  const before = cur.metadata?.labels?.[label.key];
  if (before !== label.value) {
    await kubeCall(api, 'PATCH', nodePath(node), {
      contentType: MERGE_PATCH,
      value: { metadata: { labels: { [label.key]: label.value } } },
    });
  }
  return before;
}

/** Puts the label back as it was: removed (null in a merge patch) or its earlier value. */
export async function restoreNodeLabel(api: KubeApi, node: string, key: string, before: string | undefined): Promise<void> {
  await kubeCall(api, 'PATCH', nodePath(node), {
    contentType: MERGE_PATCH,
    value: { metadata: { labels: { [key]: before ?? null } } },
  });
}
