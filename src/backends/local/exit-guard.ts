/**
 * The safety net of local buffers: when the process exits, or dies of SIGINT, SIGTERM or
 * SIGHUP that nobody else handles, every buffer still open is disabled and its sysfs
 * state restored, synchronously, so no device is left streaming for nobody.
 */

/** What the guard can close: a buffer's synchronous close. */
export interface SyncClosable {
  closeSync(): void;
}

const guarded = new Set<SyncClosable>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let exitHooked = false;

function closeAll(): void {
  for (const b of [...guarded]) b.closeSync();
}

function onSignal(sig: NodeJS.Signals): void {
  // Someone else handles this signal (Node-RED, the CLI): they close their buffers and
  // the exit hook catches the rest. Alone, we restore the devices and re-raise it so the
  // process still dies of the signal as it would have without us.
  if (process.listenerCount(sig) > 1) return;
  closeAll();
  unhookSignals();
  process.kill(process.pid, sig);
}

function unhookSignals(): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

/** Guards an open buffer until release(); the signal handlers exist only while one is. */
export function guard(b: SyncClosable): void {
  guarded.add(b);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', closeAll);
  }
  if (guarded.size === 1) for (const s of SIGNALS) process.on(s, onSignal);
}

/** Stops guarding a buffer (it closed); the last one out removes the signal handlers. */
export function release(b: SyncClosable): void {
  if (guarded.delete(b) && guarded.size === 0) unhookSignals();
}
