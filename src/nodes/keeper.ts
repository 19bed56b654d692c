/** Something a node leaves in its context's handle across a redeploy (a cyclic output buffer). */
export interface Stashed {
  dispose(): Promise<void>;
}

/**
 * What nodes keep for their successors across a redeploy, by key (node id and settings):
 * taken back by the node that replaces them, disposed if nobody does.
 */
export class Keeper {
  private readonly items = new Map<string, Stashed>();

  keep(key: string, item: Stashed): void {
    const old = this.items.get(key);
    this.items.set(key, item);
    if (old && old !== item) void old.dispose().catch(() => undefined);
  }

  take(key: string): Stashed | undefined {
    const item = this.items.get(key);
    this.items.delete(key);
    return item;
  }

  /** Disposes everything not taken back (one failure does not stop the others). */
  async dropAll(onError: (err: Error) => void): Promise<void> {
    const items = [...this.items.values()];
    this.items.clear();
    for (const item of items) {
      try {
        await item.dispose();
      } catch (err) {
        onError(err as Error);
      }
    }
  }
}
