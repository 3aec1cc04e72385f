/**
 * The JPEG 2000 layer of jpip-bench: boxes, codestream markers, geometry,
 * packet order, packet headers and the packet index. Server, client and
 * fixture generator import these modules; this file gathers their public API
 * for users of the package (`import ... from 'jpip-bench/jpeg2000'`).
 */
export * from './errors.js';
export * from './source.js';
export * from './file-source.js';
export * from './boxes.js';
export * from './linked.js';
export * from './markers.js';
export * from './codestream.js';
export * from './geometry.js';
export * from './progression.js';
export * from './packet-header.js';
export * from './packet-index.js';
export * from './index-cache.js';
export * from './archive.js';
export * from './inspect.js';
