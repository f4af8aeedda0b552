// A process's terminal: the pty master taken from the child, relayed to the client's FIFOs by
// a native thread, kept here for ResizePty.

import * as fs from 'fs';
import type { NativeRuntime, SpawnedProcess } from './native-api';
import type { ProcessIO } from './stdio';

export class Terminal {
  private constructor(
    private readonly native: NativeRuntime,
    private master: number,
  ) {}

  /** Takes the master of a ready child (two copies: one for the relay, one for resizes). */
  static attach(native: NativeRuntime, proc: SpawnedProcess, io: ProcessIO, owner: string): Terminal {
    const childFd = proc.terminalFd();
    if (childFd === undefined) throw new Error(`${owner}: the process reported no terminal`);
    const master = native.takeFd(proc.pid, childFd);
    let relayMaster: number;
    try {
      relayMaster = native.takeFd(proc.pid, childFd);
    } catch (err) {
      fs.closeSync(master);
      throw err;
    }
    const { stdin, stdout } = io.handOverToRelay();
    native.startPtyRelay(relayMaster, stdin, stdout);
    return new Terminal(native, master);
  }

  resize(cols: number, rows: number): void {
    if (this.master >= 0) this.native.resizePty(this.master, cols, rows);
  }

  close(): void {
    if (this.master >= 0) fs.closeSync(this.master);
    this.master = -1;
  }
}
