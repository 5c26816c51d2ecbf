/**
 * Whether a process with `pid` exists on this machine (signal 0 probes
 * without signalling). EPERM means it exists but belongs to another user.
 * Used to take over lock files left by processes that died.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
