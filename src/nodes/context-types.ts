/** The types around a shared context: its states, its users, its options and events. */
import type { IioError } from '../errors';
import type { Context } from '../model/context';

/** Where a shared context stands; every user node shows it in its status. */
export type ContextState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'connecting' }
  | { readonly kind: 'connected' }
  | {
      readonly kind: 'reconnecting';
      readonly attempt: number;
      /** Counts connection losses: a new number is a new outage (reported once per node). */
      readonly outage: number;
      /** Why the connection was lost. */
      readonly cause?: IioError;
    }
  | { readonly kind: 'error'; readonly error: IioError; readonly retryMs: number };

/** A node that uses the context (the config node fans its state out to these). */
export interface ContextUser {
  readonly id: string;
  onContextState(state: ContextState): void;
}

export interface ContextHandleOptions {
  readonly uri: string;
  /** Timeout of every operation (ms); 0 waits forever; absent: backend default. */
  readonly timeoutMs?: number;
  /** Delay before trying again after a failed open or a lost connection; 0: never. */
  readonly reconnectMs: number;
  /** Serve this context (iiod protocol) on this TCP port while it is open. */
  readonly servePort?: number;
  /** Address to listen on (default: the server's, loopback only). */
  readonly serveHost?: string;
  /** Non-loopback peers allowed to connect (addresses or CIDRs). */
  readonly serveAllow?: readonly string[];
  /**
   * The log (the config node's): connect, failure, disconnect, reconnect, rate-limited
   * (first occurrence, then one counted summary per minute).
   */
  readonly log?: (level: 'info' | 'warn', text: string) => void;
  /**
   * True while a deploy that keeps this context is under way: the last user leaving then
   * does not close it (the redeployed nodes come back to it; `settle()` closes it if not).
   */
  readonly keepOpen?: () => boolean;
}

export type { Stashed } from './keeper';

export interface ContextHandleEvents {
  /** The context is (again) usable: open buffers anew. */
  ready: [Context];
  /** The context went away (closing, connection lost): stop using it. */
  lost: [];
  /**
   * The connection was lost but the backend reconnects by itself and its streams resume
   * (counting what the outage cost): keep buffers open, they wait.
   */
  interrupted: [];
  state: [ContextState];
}
