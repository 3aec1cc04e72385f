import { statSync } from 'node:fs';
import type { Box } from './boxes.js';
import { readCodestream, tileCoding } from './codestream.js';
import { numTiles } from './geometry.js';
import { ImageIndex, type ImageIndexOptions } from './index-cache.js';
import { markerName, PROGRESSION_NAMES } from './markers.js';
import { subSource } from './source.js';

/** What `jpip-bench inspect` reports about a file: plain data, printed by the CLI. */
export interface InspectReport {
  file: string;
  size: number;
  format: 'jp2' | 'jpx' | 'raw';
  brand: string | undefined;
  boxes: BoxNode[];
  codestreams: CodestreamReport[];
}

export interface BoxNode {
  type: string;
  offset: number;
  length: number;
  children?: BoxNode[];
}

export interface CodestreamReport {
  index: number;
  kind: 'raw' | 'embedded' | 'fragment';
  /** Offset and length of the codestream in its file. */
  offset: number;
  length: number;
  /** For linked codestreams: the url as written in the file. */
  url?: string;
  /** Absent for codestreams in other files. */
  details?: CodestreamDetails;
}

export interface CodestreamDetails {
  width: number;
  height: number;
  imageOffset: [number, number];
  tileSize: [number, number];
  tileOffset: [number, number];
  tiles: number;
  tileParts: number;
  components: { precision: number; signed: boolean; dx: number; dy: number }[];
  progression: string;
  layers: number;
  levels: number;
  transform: '5/3 reversible' | '9/7 irreversible';
  codeBlock: [number, number];
  precincts: [number, number][];
  sop: boolean;
  eph: boolean;
  mct: number;
  /** Marker names present in the main and tile-part headers, with counts. */
  markers: Record<string, number>;
  comments: string[];
  packetSource: 'plt' | 'plm' | 'headers' | 'unsupported';
  packetCount: number;
  /** Why the packets could not be indexed, when they could not. */
  packetError?: string;
  packets?: PacketRow[];
}

export interface PacketRow {
  tile: number;
  layer: number;
  resolution: number;
  component: number;
  precinct: number;
  /** Offset in the file. */
  offset: number;
  length: number;
}

export interface InspectOptions extends ImageIndexOptions {
  /** List every packet. */
  packets?: boolean;
}

function boxNodes(boxes: readonly Box[]): BoxNode[] {
  return boxes.map((b) => ({
    type: b.type,
    offset: b.offset,
    length: b.length,
    ...(b.children ? { children: boxNodes(b.children) } : {}),
  }));
}

/** Reads a JPEG 2000 file (JP2, JPX, linked JPX or raw codestream) and describes it. */
export function inspectFile(path: string, opts: InspectOptions = {}): InspectReport {
  const img = ImageIndex.open(path, opts);
  try {
    const { container } = img;
    const codestreams: CodestreamReport[] = container.codestreams.map((ref) => {
      const base: CodestreamReport = { index: ref.index, kind: ref.kind, offset: ref.offset, length: ref.length };
      if (ref.kind === 'fragment' && ref.dataReference !== 0) return { ...base, url: ref.url };
      const src = subSource(img.source, ref.offset, ref.length);
      const cs = readCodestream(src);
      const { siz, cod } = cs.main;
      const coding = tileCoding(cs, 0);
      const markers: Record<string, number> = {};
      for (const seg of [...cs.main.segments, ...cs.tileParts.flatMap((tp) => tp.segments)]) {
        const n = markerName(seg.marker);
        markers[n] = (markers[n] ?? 0) + 1;
      }
      const details: CodestreamDetails = {
        width: siz.xsiz - siz.xOsiz,
        height: siz.ysiz - siz.yOsiz,
        imageOffset: [siz.xOsiz, siz.yOsiz],
        tileSize: [siz.xTsiz, siz.yTsiz],
        tileOffset: [siz.xTOsiz, siz.yTOsiz],
        tiles: numTiles(siz),
        tileParts: cs.tileParts.length,
        components: siz.components.map((c) => ({ ...c })),
        progression: PROGRESSION_NAMES[cod.progression],
        layers: cod.layers,
        levels: cod.coding.levels,
        transform: cod.coding.transform === 1 ? '5/3 reversible' : '9/7 irreversible',
        codeBlock: [1 << cod.coding.xcb, 1 << cod.coding.ycb],
        precincts: coding.components[0]!.precincts.map((p) => [2 ** p.ppx, 2 ** p.ppy]),
        sop: cod.sop,
        eph: cod.eph,
        mct: cod.mct,
        markers,
        comments: cs.main.com.flatMap((c) => (c.text !== undefined ? [c.text] : [])),
        packetSource: 'unsupported',
        packetCount: 0,
      };
      try {
        const ix = img.codestream(ref.index);
        details.packetSource = ix.lengthSource;
        const rows: PacketRow[] = [];
        for (let t = 0; t < ix.numTiles; t++) {
          const ti = ix.ensureTile(t);
          details.packetCount += ti.known;
          if (opts.packets) {
            const s = ti.sequence;
            for (let k = 0; k < ti.known; k++) {
              rows.push({
                tile: t,
                layer: s.layer[k]!,
                resolution: s.resolution[k]!,
                component: s.component[k]!,
                precinct: s.precinct[k]!,
                offset: ref.offset + ti.offsets[k]!,
                length: ti.lengths[k]!,
              });
            }
          }
        }
        if (opts.packets) details.packets = rows;
      } catch (e) {
        details.packetError = e instanceof Error ? e.message : String(e);
      }
      return { ...base, details };
    });
    return {
      file: path,
      size: statSync(path).size,
      format: container.format,
      brand: container.fileType?.brand,
      boxes: boxNodes(container.boxes),
      codestreams,
    };
  } finally {
    img.close();
  }
}

