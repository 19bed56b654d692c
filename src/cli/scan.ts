import { errnoOrEio, strerror } from '../errors';
import { scanContexts, type ContextInfoEntry } from '../scan';
import type { Out } from './io';

/**
 * libiio's autodetect_context(false, ...): lists what a scan finds. Resolves false when
 * the scan itself failed (an unknown backend: `Scanning for IIO contexts failed: ...`).
 */
export async function printScan(out: Out, err: Out, filter: string | undefined): Promise<boolean> {
  let found: ContextInfoEntry[];
  try {
    found = await scanContexts(filter);
  } catch (e) {
    err.line(`Scanning for IIO contexts failed: ${strerror(errnoOrEio(e))}`);
    return false;
  }
  if (!found.length) {
    err.line('No IIO context found.');
    return true;
  }
  out.line('Available contexts:');
  found.forEach((c, i) => out.line(`\t${i}: ${c.description} [${c.uri}]`));
  return true;
}
