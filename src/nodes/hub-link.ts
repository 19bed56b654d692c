/**
 * A node's way to the StreamHub of the device it names. Nodes name a device by label, name
 * or id (the editor saves label, else name; older flows and the Sparkplug node use ids),
 * and two references to one device must share one hub — the kernel gives a device one
 * buffer, so a second hub would only meet EBUSY. References are turned into one key (the
 * one the editor saves, `stableRef`) once the context is open; until then subscribers wait
 * here.
 */
import type { ContextHandle } from './context-handle';
import { resolveDevice, stableRef } from './device-ref';
import type { HubSubscriber, StreamHub } from './stream-hub';

export class HubLink {
  /** Subscribers waiting for the context to open, and the hub each one joined. */
  private readonly pending = new Set<HubSubscriber>();
  private readonly joined = new Map<HubSubscriber, StreamHub>();
  private waiting = false;
  private readonly onReady = (): void => {
    this.waiting = false;
    this.handle.off('ready', this.onReady);
    this.flush();
  };

  constructor(
    private readonly handle: ContextHandle,
    readonly ref: string,
    private readonly hint: string | undefined,
  ) {}

  subscribe(sub: HubSubscriber): void {
    this.pending.add(sub);
    this.flush();
  }

  /** Leaves the hub; resolves when the hub has closed or restarted its buffer without `sub`. */
  unsubscribe(sub: HubSubscriber): Promise<void> {
    this.pending.delete(sub);
    if (!this.pending.size && this.waiting) {
      this.waiting = false;
      this.handle.off('ready', this.onReady);
    }
    const hub = this.joined.get(sub);
    this.joined.delete(sub);
    return hub ? hub.unsubscribe(sub) : Promise.resolve();
  }

  /** The key of this reference's hub: the device's stable reference, once it resolves. */
  currentKey(): string | undefined {
    const ctx = this.handle.context;
    if (!ctx) return undefined;
    try {
      return stableRef(ctx, resolveDevice(ctx, { ref: this.ref, hint: this.hint }));
    } catch {
      return this.ref; // gone or ambiguous: its own hub says why when it opens
    }
  }

  private flush(): void {
    if (!this.pending.size) return;
    const key = this.currentKey();
    if (key === undefined) {
      if (!this.waiting) {
        this.waiting = true;
        this.handle.on('ready', this.onReady);
      }
      return;
    }
    const hub = this.handle.hubByKey(key, this.hint);
    for (const sub of this.pending) {
      this.joined.set(sub, hub);
      hub.subscribe(sub);
    }
    this.pending.clear();
  }
}
