/**
 * TEMPORARY loader until the native branch's src/native/index.ts lands; then this file
 * goes and index.ts's loadNative() uses attemptLoad() from ./diagnose the same way.
 */
import * as path from 'node:path';
import { IioError } from '../errors';
import { attemptLoad, type NativeStatus } from './diagnose';

export type { NativeStatus } from './diagnose';

/** The addon's interface version this TypeScript expects (native/addon.cc abiVersion). */
export const NATIVE_ABI = 1;

let state: { status: NativeStatus; addon?: unknown } | undefined;

function packageRoot(): string {
  return process.env.IIOKIT_NATIVE_DIR ?? path.join(__dirname, '..', '..', '..');
}

/** Loads the addon once; throws an IioError naming the reason and the fix. */
export function loadNative<T = unknown>(): T {
  const { status, addon } = (state ??= attemptLoad(packageRoot(), NATIVE_ABI));
  if (status.loaded) return addon as T;
  throw new IioError(status.code, `${status.reason}. ${status.fix}`, {
    uri: 'local:',
    op: 'load the native module',
  });
}

/** Whether the native module loads, from which file, or why not and how to fix it. */
export function nativeModuleStatus(): NativeStatus {
  return (state ??= attemptLoad(packageRoot(), NATIVE_ABI)).status;
}
