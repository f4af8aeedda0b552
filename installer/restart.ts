// Restarting containerd so it reads its config again. Running pods must survive it: their shims
// are separate processes that containerd reconnects to after the restart, as long as stopping
// the service kills only containerd's own process (systemd KillMode=process, as containerd's
// packaged unit sets). With KillMode=control-group or mixed, a restart would kill every shim
// and so every container on the node: the installer refuses that.
import { InstallerError } from './errors';
import { runChecked } from './host-command';

export type RestartMethod = { kind: 'systemd'; unit: string } | { kind: 'command'; argv: string[] };

export function restarter(method: RestartMethod, hostExec: string[], log: (m: string) => void): () => Promise<void> {
  if (method.kind === 'command') {
    return async () => {
      await runChecked(hostExec, method.argv, 300_000);
    };
  }
  return async () => {
    const killMode = (await runChecked(hostExec, ['systemctl', 'show', '--property=KillMode', '--value', method.unit])).trim();
    if (killMode !== 'process') {
      throw new InstallerError(
        `systemd unit ${method.unit} has KillMode=${killMode || '(unset)'}: restarting it would kill every running ` +
          `container's shim; set KillMode=process (containerd's own unit does) or use another restart method`,
      );
    }
    log(`systemctl restart ${method.unit} (KillMode=process: running pods keep running)`);
    await runChecked(hostExec, ['systemctl', 'restart', method.unit], 300_000);
  };
}
