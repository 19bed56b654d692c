import { IioError } from '../errors';
import type { Context } from '../model/context';
import type { Advertisement } from '.';

/** Announces a server on DNS-SD (placeholder until the advertiser lands). */
export async function advertise(_opts: {
  port: number;
  name?: string;
  ctx: Context;
}): Promise<Advertisement> {
  throw new IioError('ENOSYS', 'DNS-SD advertising is not available yet');
}
