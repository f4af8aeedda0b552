// Container and exec id validation, with containerd's own identifier rules, so that an id can
// never escape the state root as a path component.

import { invalidArgument } from './errors';

const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
export const MAX_ID_LENGTH = 76;

export function validateId(id: string, what = 'container id'): void {
  if (!id) throw invalidArgument(`${what} must not be empty`);
  if (id.length > MAX_ID_LENGTH) {
    throw invalidArgument(`${what} ${JSON.stringify(id)} is longer than ${MAX_ID_LENGTH} characters`);
  }
  if (!IDENTIFIER.test(id)) {
    throw invalidArgument(`${what} ${JSON.stringify(id)} must match ${IDENTIFIER.source}`);
  }
}
