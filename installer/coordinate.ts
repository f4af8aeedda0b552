// The chart's pre-delete hook: before Helm deletes the DaemonSet, switch it to uninstall mode
// and wait until every node has run the uninstall. A Job cannot reach every node itself; the
// DaemonSet already runs on exactly the nodes that were installed. Its pod template takes the
// mode from an annotation (downward API), so patching the annotation rolls every pod over to
// `uninstall`, and a pod reports ready only once its step finished on its node.
import { InstallerError } from './errors';
import { KubeApi, kubeCall, MERGE_PATCH } from './kube-api';

export const MODE_ANNOTATION = 'burrow.dev/mode';

interface DaemonSet {
  metadata: { generation?: number; annotations?: Record<string, string> };
  spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberReady?: number;
    numberAvailable?: number;
  };
}

/** True once the DaemonSet's controller rolled the current template out and every pod is ready. */
export function rolledOut(ds: DaemonSet): boolean {
  const s = ds.status ?? {};
  const desired = s.desiredNumberScheduled ?? 0;
  return (
    (s.observedGeneration ?? 0) >= (ds.metadata.generation ?? 0) &&
    (s.updatedNumberScheduled ?? 0) === desired &&
    (s.numberReady ?? 0) === desired
  );
}

export async function coordinateUninstall(
  api: KubeApi,
  namespace: string,
  name: string,
  timeoutMs: number,
  log: (m: string) => void,
): Promise<void> {
  const dsPath = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets/${encodeURIComponent(name)}`;
  await kubeCall(api, 'PATCH', dsPath, {
    contentType: MERGE_PATCH,
    value: { spec: { template: { metadata: { annotations: { [MODE_ANNOTATION]: 'uninstall' } } } } },
  });
  log(`daemonset ${namespace}/${name} switched to uninstall mode; waiting for every node`);
  const deadline = Date.now() + timeoutMs;
  let last: DaemonSet['status'] = {};
  while (Date.now() < deadline) {
    const ds = (await kubeCall(api, 'GET', dsPath)) as DaemonSet;
    last = ds.status;
    if (rolledOut(ds)) {
      log(`uninstalled on ${ds.status?.desiredNumberScheduled ?? 0} node(s)`);
      return;
    }
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new InstallerError(
    `daemonset ${namespace}/${name} did not finish uninstalling within ${timeoutMs} ms (status ${JSON.stringify(last)}); ` +
      'see its pods\' logs',
  );
}
