import { scanContexts } from '../scan';
import type { Out } from './io';

/** libiio's autodetect_context(false, ...): lists what a scan finds. */
export async function printScan(out: Out, err: Out, filter: string | undefined): Promise<void> {
  const found = await scanContexts(filter);
  if (!found.length) {
    err.line('No IIO context found.');
    return;
  }
  out.line('Available contexts:');
  found.forEach((c, i) => out.line(`\t${i}: ${c.description} [${c.uri}]`));
}
