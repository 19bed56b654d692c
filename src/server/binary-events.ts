/**
 * Event streams of a binary-protocol connection (CREATE_EVSTREAM, READ_EVENT,
 * FREE_EVSTREAM). libiio's client opens a stream on a client id of its own (counting
 * down from 0xffff), asks for one event at a time on it (READ_EVENT; code ≠ 0: don't
 * wait), and frees it on the default id. Each stream reads the device's events from the
 * model one at a time: at most one event waits here for its READ_EVENT, the rest wait in
 * the backend's own queue (the kernel's, for local:).
 */
import {
  DEFAULT_CLIENT_ID,
  encodeEvent,
  EVENT_BYTES,
  OP,
  type FrameHeader,
} from '../iiod-protocol/binary';
import type { Device, EventIterator } from '../model/device';
import type { IioEvent } from '../model/event';
import type { FrameIo } from './binary-frames';
import { NEG, negErrno } from './device-ops';

type Next = { readonly event: IioEvent } | { readonly code: number };

class EventStream {
  /** An event (or the stream's failure) read ahead, waiting for a READ_EVENT. */
  private ready: Next | null = null;
  private reading = false;
  /** A blocking READ_EVENT waits for the next event. */
  private waiting = false;
  private closed = false;

  constructor(
    readonly dev: Device,
    readonly clientId: number,
    private readonly it: EventIterator,
    private readonly io: FrameIo,
  ) {
    // Read ahead at once: events from now on are kept (one here, the rest in the queue).
    this.fill();
  }

  private fill(): void {
    if (this.reading || this.ready || this.closed) return;
    this.reading = true;
    this.it.next().then(
      (r) => this.arrived(r.done ? { code: NEG.EBADF } : { event: r.value }),
      (err: unknown) => this.arrived({ code: negErrno(err) }),
    );
  }

  private arrived(n: Next): void {
    this.reading = false;
    if (this.closed) return;
    this.ready = n;
    if (this.waiting) {
      this.waiting = false;
      void this.deliver();
    }
  }

  /** Sends what is ready and reads the next one (a failure stays: every read gets it). */
  private async deliver(): Promise<void> {
    const n = this.ready!;
    if ('event' in n) {
      this.ready = null;
      this.fill();
      await this.io
        .respond(this.clientId, EVENT_BYTES, encodeEvent(n.event))
        .catch(() => undefined);
    } else {
      await this.io.respond(this.clientId, n.code).catch(() => undefined);
    }
  }

  /** READ_EVENT: now when one is there; else -EAGAIN (nonblocking) or when one comes. */
  read(nonblock: boolean): Promise<void> {
    if (this.ready) return this.deliver();
    if (nonblock) return this.io.respond(this.clientId, NEG.EAGAIN);
    if (this.waiting) return this.io.respond(this.clientId, NEG.EBUSY);
    this.waiting = true;
    return Promise.resolve();
  }

  /** A blocking READ_EVENT still waiting is dropped unanswered, as iiod cancels it. */
  async close(): Promise<void> {
    this.closed = true;
    this.waiting = false;
    await this.it.return?.().catch(() => undefined);
  }
}

export class BinaryEvents {
  private readonly streams = new Map<number, EventStream>();

  /** Whether an event stream is open. */
  get hasOpen(): boolean {
    return this.streams.size > 0;
  }

  constructor(
    private readonly io: FrameIo,
    private readonly devices: () => readonly Device[],
  ) {}

  async dispatch(h: FrameHeader): Promise<void> {
    const dev = this.devices()[h.dev];
    switch (h.op) {
      case OP.CREATE_EVSTREAM: {
        // Answered on the stream's own client id.
        if (!dev) return this.io.respond(h.clientId, NEG.EINVAL);
        if (this.streams.has(h.clientId)) return this.io.respond(h.clientId, NEG.EEXIST);
        let it: EventIterator;
        try {
          // Opened now, as iiod does: a device without events says so here.
          it = dev.events();
          await it.open();
        } catch (err) {
          return this.io.respond(h.clientId, negErrno(err));
        }
        this.streams.set(h.clientId, new EventStream(dev, h.clientId, it, this.io));
        return this.io.respond(h.clientId, 0);
      }
      case OP.READ_EVENT: {
        const s = this.streams.get(h.clientId);
        if (!s || s.dev !== dev) return this.io.respond(h.clientId, NEG.EBADF);
        return s.read(h.code !== 0);
      }
      case OP.FREE_EVSTREAM: {
        // Sent on the default id; code names the stream.
        const id = h.code & 0xffff;
        const s = this.streams.get(id);
        if (!s || s.dev !== dev) return this.io.respond(DEFAULT_CLIENT_ID, NEG.EBADF);
        this.streams.delete(id);
        await s.close();
        return this.io.respond(DEFAULT_CLIENT_ID, 0);
      }
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.streams.values()];
    this.streams.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
