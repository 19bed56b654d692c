/**
 * @iiokit/node-red-iio: Linux Industrial I/O for Node.js and Node-RED, without libiio.
 */
export { createContext, type CreateContextOptions } from './create-context';
export { Context } from './model/context';
export { Device, type EventIterator } from './model/device';
export { Channel } from './model/channel';
export { Attr, parseAvailable, type AttrValue, type AvailableValues } from './model/attr';
export { IioBuffer, type Block, type BufferOptions, type BufferStats } from './model/buffer';
export { ChannelMask } from './model/channel-mask';
export { decodeEvent, type IioEvent } from './model/event';
export type * from './model/info';
export { IioError, strerror, errnoOf, codeOf, type IioErrorContext } from './errors';
export { parseScanType, formatScanType, valueBits, type DataFormat } from './format/scan-type';
export {
  computeScanLayout,
  type ScanLayout,
  type ScanSlot,
  type LayoutInput,
} from './format/layout';
export { convert, convertInverse, toSI, fromSI } from './format/convert';
export {
  demuxChannel,
  demuxChannelInto,
  demuxAll,
  type DemuxOptions,
  type ScaleOffset,
  type NumberSink,
} from './format/demux';
export { muxChannel, type MuxOptions } from './format/mux';
export { parseUri } from './uri';
export { registerBackend } from './backends';
export {
  serveContext,
  IIOD_PORT,
  type ServeOptions,
  type ServerHandle,
  type ServerStats,
  type ServerClientStats,
} from './server';
export type * from './model/backend';
export { LIBRARY_VERSION, PACKAGE_VERSION } from './version';
export { scanContexts, registerScanner, type ContextInfoEntry } from './scan';
export { nativeModuleStatus, type NativeStatus } from './native';
