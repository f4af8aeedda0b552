/** A refusal or failure the installer reports to its operator as one clear line (exit code 1). */
export class InstallerError extends Error {
  override name = 'InstallerError';
}
