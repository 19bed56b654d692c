/**
 * libiio's XML context description as a format: read (0.x and 1.0 dialects) and written
 * (0.x with its DTD). Used by Context.toXml, the xml: and emu: backends, the iiod client
 * (the context arrives as XML) and the server. Depends only on the model's description
 * types (model/info) and the format layer.
 */
export { parseContextXml } from './parser';
export { contextToXml } from './writer';
export { decodeXmlBytes } from './decode';
