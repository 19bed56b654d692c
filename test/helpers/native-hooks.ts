/**
 * The native module's test-only entry (`testHooks()`, native/addon.cc): where pool blocks
 * live and a way to write into one, so tests can prove zero copy. The production addon
 * hands them out only when IIOKIT_TEST_HOOKS=1 is in the environment (docs/decisions.md).
 */
import { loadNative, type NativeStreamHandle } from '../../src/native';
import type { NativeStream } from '../../src/native/stream';

export interface NativeTestHooks {
  /** Where a Buffer's bytes live. */
  addressOf(buffer: Buffer): bigint;
  /** The address of every pool block of a started stream. */
  blockAddresses(stream: NativeStreamHandle): bigint[];
  /** Writes one byte into pool memory. */
  poke(stream: NativeStreamHandle, block: number, offset: number, value: number): void;
}

export function nativeTestHooks(): NativeTestHooks {
  process.env.IIOKIT_TEST_HOOKS = '1';
  const addon = loadNative() as unknown as { testHooks(): NativeTestHooks };
  return addon.testHooks();
}

/** The addon object behind a NativeStream (private there: only tests reach for it). */
export function handleOf(stream: NativeStream): NativeStreamHandle {
  return (stream as unknown as { handle: NativeStreamHandle }).handle;
}
