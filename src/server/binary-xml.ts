/**
 * The context's XML as a binary-protocol PRINT answers it. libiio main's client reads
 * the answer into a 64 KiB buffer (iiod_client_create_context_private_new) and takes
 * it as zstd unless it starts with `<?xml`: a plain XML fits up to 64 KiB; a larger one
 * must be compressed (and a longer answer would overrun the client's buffer).
 */
import * as zlib from 'node:zlib';
import type { Context } from '../model/context';
import { NEG, type NegErrno } from './device-ops';

/** The most PRINT may answer: libiio's client reads at most this much. */
export const MAX_PRINT_BYTES = 0x10000;

type ZstdCompress = (data: Buffer) => Buffer;

/** Node's zstd (22.15+), when this Node has it. */
const nodeZstd: ZstdCompress | undefined = (zlib as unknown as { zstdCompressSync?: ZstdCompress })
  .zstdCompressSync;

/** The bytes PRINT answers: the XML, or zstd of it when larger than the client reads. */
export function binaryContextXml(ctx: Context): Buffer | NegErrno {
  const xml = Buffer.from(ctx.toXml(), 'utf8');
  if (xml.length <= MAX_PRINT_BYTES) return xml;
  const z = nodeZstd?.(xml);
  if (z && z.length <= MAX_PRINT_BYTES) return z;
  return NEG.ENOMEM;
}
