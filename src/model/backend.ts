/**
 * The contract every backend fulfils, in the spirit of libiio's `iio_backend_ops`:
 * the model (src/model) talks only to this interface and never knows whether the
 * context is the local kernel, an iiod across the network, a USB gadget, an XML
 * file or the emulator.
 */
import type { ChannelMask } from './channel-mask';
import type { AttrInfo, ChannelInfo, ContextInfo, DeviceInfo } from './info';

/** Which kind of attribute an AttrRef names (libiio 1.0's IIO_ATTR_TYPE_*). */
export type AttrKind =
  'context' | 'device' | 'channel' | 'buffer' | 'debug' | 'device-event' | 'channel-event';

/** Everything a backend needs to locate one attribute. */
export interface AttrRef {
  readonly kind: AttrKind;
  /** Absent only for context attributes. */
  readonly device?: DeviceInfo;
  /** Present for channel and channel-event attributes. */
  readonly channel?: ChannelInfo;
  readonly attr: AttrInfo;
  /** Buffer attributes of a multi-buffer device (default 0). */
  readonly bufferIndex?: number;
}

/** A block of whole scans handed out by an input buffer. */
export interface RawBlock {
  /**
   * Scans in the device's layout. May alias pooled (or kernel-shared) memory: it stays
   * valid until `release()`; never write to it.
   */
  readonly data: Buffer;
  /** Returns the memory to its pool. Idempotent; a finalizer is only a safety net. */
  release(): void;
  /** Scans known to be lost just before this block (overrun, reconnect), if the backend can tell. */
  readonly lost?: number;
}

/**
 * How a buffer moves its data where the backend has a choice (`local:`): `dmabuf` is the
 * kernel's zero-copy DMABUF interface (Linux 6.11+, DMA buffers), `fileio` read()/write()
 * on the buffer's file, `auto` DMABUF when the kernel's buffer takes it, else read()/write().
 */
export type TransferMode = 'auto' | 'dmabuf' | 'fileio';

export interface BufferOpenOptions {
  /** Scans per block (libiio's samples_count). */
  readonly samples: number;
  /** Channels wanted: channel numbers of the device (positions in DeviceInfo.channels). */
  readonly mask: ChannelMask;
  /** Output buffers only: repeat the first block until closed. */
  readonly cyclic: boolean;
  /** Direction, decided by the channels in the mask. */
  readonly isOutput: boolean;
  /** Kernel/pool blocks to use (libiio's kernel buffers count); backend default if absent. */
  readonly blocks?: number;
  /** Which buffer of a multi-buffer device (default 0). */
  readonly bufferIndex?: number;
  /** Transfer mode (default `auto`); backends without a choice ignore it. */
  readonly transfer?: TransferMode;
}

/**
 * Where an open buffer's blocks are and what its data path met, for backends that can
 * tell (`local:`). Scans lost are not here: `IioBuffer.lost` (and each block's `lost`)
 * counts them, aborted DMABUF transfers included.
 */
export interface TransferStats {
  /** How the data moves: the kernel's DMABUF interface, or read()/write() on the buffer fd. */
  readonly mode: 'dmabuf' | 'fileio';
  /** Input: blocks handed to JS so far, and their bytes. */
  readonly blocks: number;
  readonly bytes: number;
  /** Output: bytes the kernel has taken. */
  readonly written: number;
  /** DMABUF: blocks the kernel has now (queued, being filled or played). */
  readonly inFlight: number;
  /** Input: blocks handed over and not yet taken by refill()/stream() (bounded by `blocks`). */
  readonly waiting: number;
  /** Input: pooled blocks taken and not yet given back (release(), or the collector). */
  readonly held: number;
  /** Input: blocks copied into fresh memory because JS held every pooled one. */
  readonly copies: number;
  /**
   * DMABUF: transfers that completed with an error (the fence's: -EINTR when the buffer
   * was disabled under them); input ones are not delivered, their scans count as lost.
   */
  readonly transferErrors: number;
  /** DMABUF input: times the device was left with no block to fill (JS had them all). */
  readonly stalls: number;
  /** Refills or pushes that timed out. */
  readonly timeouts: number;
}

/** An open buffer (stream) of one device. */
export interface BackendBuffer {
  /** The channels the backend really enabled: may be a superset of those asked for. */
  readonly mask: ChannelMask;
  /** Input: the next block. Rejects with ETIMEDOUT after the context timeout, ECANCELED after cancel(). */
  read(): Promise<RawBlock>;
  /** Output: queues whole scans; resolves when the backend has accepted all of them. */
  write(data: Buffer): Promise<void>;
  /** Output: resolves when everything written so far has left the queue (best effort). */
  drain?(): Promise<void>;
  /** Aborts a pending read/write (it rejects with ECANCELED). */
  cancel(): void;
  /** Stops streaming and restores the device; idempotent. */
  close(): Promise<void>;
  /** The data path's counters, where the backend keeps them (still readable after close). */
  stats?(): TransferStats;
}

/** A kernel event as read from the event fd (`struct iio_event_data`). */
export interface RawEvent {
  readonly id: bigint;
  readonly timestamp: bigint;
}

export interface BackendEventStream {
  /** The next event; rejects with ECANCELED once closed. */
  read(): Promise<RawEvent>;
  close(): Promise<void>;
}

/** What a backend reports about its connection (remote backends). */
export type BackendStatusEvent =
  | { readonly type: 'disconnected'; readonly error: Error }
  | { readonly type: 'reconnecting'; readonly attempt: number; readonly delayMs: number }
  | { readonly type: 'reconnected'; readonly changed: boolean }
  | { readonly type: 'error'; readonly error: Error };

export interface BackendOpenOptions {
  /** Context timeout in ms; 0 means wait forever; absent means the backend default. */
  readonly timeoutMs?: number;
  /** Receives connection status changes. */
  readonly onStatus?: (event: BackendStatusEvent) => void;
  /** Backend-specific settings (e.g. `reconnect: false` for ip:). */
  readonly [option: string]: unknown;
}

export interface Backend {
  /** As libiio names it in `IIO context created with %s backend`: `local`, `xml`, `network`, ... */
  readonly name: string;
  /** The URI the context was opened with, normalised. */
  readonly uri: string;
  /** The description of the context, read when the backend was opened. */
  readonly info: ContextInfo;

  readAttr(ref: AttrRef): Promise<string>;
  /** Writes a value; resolves with the number of bytes the backend accepted. */
  writeAttr(ref: AttrRef, value: string): Promise<number>;

  /**
   * The current trigger's name or id, or null when none is set.
   * Rejects with ENOENT when the device cannot have a trigger.
   */
  getTrigger(device: DeviceInfo): Promise<string | null>;
  /** Sets (by trigger name or id) or clears (null) the device's trigger. */
  setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void>;

  readRegister?(device: DeviceInfo, address: number): Promise<number>;
  writeRegister?(device: DeviceInfo, address: number, value: number): Promise<void>;

  openBuffer(device: DeviceInfo, options: BufferOpenOptions): Promise<BackendBuffer>;
  openEvents?(device: DeviceInfo): Promise<BackendEventStream>;

  /** Changes the timeout of later operations. */
  setTimeout?(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens a backend for a parsed URI. */
export type BackendFactory = (uri: string, options: BackendOpenOptions) => Promise<Backend>;
