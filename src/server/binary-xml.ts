/**
 * The context's XML as a binary-protocol PRINT answers it. libiio main's client reads
 * the answer into 64 KiB (iiod_client_create_context_private_new) and takes it as zstd
 * unless it starts with `<?xml`: a plain XML goes as it is up to 64 KiB, a larger one
 * compressed (a longer answer would overrun the client's buffer) — with Node's zstd
 * where it has one (22.15+), else with ours (util/zstd-encode.ts).
 */
import * as zlib from 'node:zlib';
import type { Context } from '../model/context';
import { zstdCompress } from '../util/zstd-encode';
import { NEG, type NegErrno } from './device-ops';

/** The most PRINT may answer: libiio's client reads at most this much. */
export const MAX_PRINT_BYTES = 0x10000;

type Compress = (data: Buffer) => Buffer;

/** Node's zstd (22.15+), when this Node has it. */
const nodeZstd: Compress | undefined = (zlib as unknown as { zstdCompressSync?: Compress })
  .zstdCompressSync;

/** The last XML compressed, per context: every client of a big context asks for it. */
const cache = new WeakMap<Context, { xml: string; z: Buffer }>();

/** The bytes PRINT answers: the XML, or zstd of it; -ENOMEM if even that is too large. */
export function binaryContextXml(
  ctx: Context,
  compress: Compress = nodeZstd ?? zstdCompress,
): Buffer | NegErrno {
  // libiio 1.0's clients: buffer attributes as its own iiod lists them
  const text = ctx.toXml({ libiio1Buffers: true });
  const xml = Buffer.from(text, 'utf8');
  if (xml.length <= MAX_PRINT_BYTES) return xml;
  let hit = cache.get(ctx);
  if (hit?.xml !== text) {
    hit = { xml: text, z: compress(xml) };
    cache.set(ctx, hit);
  }
  return hit.z.length <= MAX_PRINT_BYTES ? hit.z : NEG.ENOMEM;
}
