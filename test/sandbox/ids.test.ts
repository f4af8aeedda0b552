import { strict as assert } from 'assert';
import { SandboxError } from '../../shim/sandbox/errors';
import { MAX_ID_LENGTH, validateId } from '../../shim/sandbox/ids';

function rejection(id: string, what?: string): SandboxError {
  try {
    validateId(id, what);
  } catch (err) {
    assert.ok(err instanceof SandboxError, String(err));
    assert.equal(err.kind, 'invalid-argument');
    return err;
  }
  assert.fail(`${JSON.stringify(id)} was accepted`);
}

describe('sandbox: validateId', () => {
  it('accepts containerd identifiers', () => {
    for (const id of [
      'a',
      'abc',
      'default',
      'k8s.io',
      'moby',
      'a.b-c_d',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x'.repeat(MAX_ID_LENGTH),
    ]) {
      assert.doesNotThrow(() => validateId(id), id);
    }
  });

  it('rejects ids that could leave the state directory', () => {
    for (const id of ['..', '.', '../x', 'a/b', '/abs', 'a/../b', 'a\\b', 'a\0b']) {
      const err = rejection(id);
      assert.ok(err.message.includes(JSON.stringify(id)), err.message);
    }
  });

  it('rejects separators at the ends or doubled, and other characters', () => {
    for (const id of ['-a', 'a-', '.a', 'a.', '_a', 'a..b', 'a--b', 'a b', 'a:b', 'ä', 'a\n']) rejection(id);
  });

  it('rejects the empty id', () => {
    assert.match(rejection('').message, /container id must not be empty/);
  });

  it(`rejects ids longer than ${MAX_ID_LENGTH} characters`, () => {
    assert.match(rejection('x'.repeat(MAX_ID_LENGTH + 1)).message, /longer than 76/);
  });

  it('names what was validated', () => {
    assert.match(rejection('a/b', 'namespace').message, /^namespace "a\/b"/);
    assert.match(rejection('a/b').message, /^container id "a\/b"/);
  });
});
