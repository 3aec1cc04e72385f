import type { BoxNode, InspectReport } from '../jpeg2000/inspect.js';
import type { ArchiveIndexResult } from '../jpeg2000/archive.js';

/** Text rendering of an inspect report (the CLI prints it). */
export function formatInspect(r: InspectReport): string {
  const lines: string[] = [];
  lines.push(`${r.file}: ${r.format.toUpperCase()}${r.brand ? ` (brand '${r.brand.trim()}')` : ''}, ${r.size} bytes`);
  if (r.boxes.length > 0) {
    lines.push('', 'Boxes:');
    const walk = (nodes: BoxNode[], depth: number): void => {
      for (const b of nodes) {
        lines.push(`${'  '.repeat(depth + 1)}${b.type.padEnd(4)}  @${b.offset}  ${b.length} bytes`);
        if (b.children) walk(b.children, depth + 1);
      }
    };
    walk(r.boxes, 0);
  }
  for (const cs of r.codestreams) {
    lines.push('', `Codestream ${cs.index} (${cs.kind}, @${cs.offset}, ${cs.length} bytes)${cs.url !== undefined ? ` -> ${cs.url}` : ''}`);
    const d = cs.details;
    if (!d) continue;
    lines.push(`  size          ${d.width} x ${d.height}  (image offset ${d.imageOffset.join(',')})`);
    lines.push(`  components    ${d.components.length}: ${d.components.map((c) => `${c.precision}-bit${c.signed ? ' signed' : ''}${c.dx !== 1 || c.dy !== 1 ? ` ${c.dx}x${c.dy}` : ''}`).join(', ')}`);
    lines.push(`  tiles         ${d.tiles} of ${d.tileSize.join(' x ')} (tile offset ${d.tileOffset.join(',')}), ${d.tileParts} tile-parts`);
    lines.push(`  progression   ${d.progression}, ${d.layers} layers, ${d.levels} levels, ${d.transform}${d.mct ? ', MCT' : ''}`);
    lines.push(`  code-blocks   ${d.codeBlock.join(' x ')}`);
    lines.push(`  precincts     ${d.precincts.map((p) => p.join('x')).join(' ')}  (resolution 0..${d.levels})`);
    lines.push(`  SOP/EPH       ${d.sop ? 'SOP' : '-'} ${d.eph ? 'EPH' : '-'}`);
    lines.push(`  markers       ${Object.entries(d.markers).map(([k, v]) => (v > 1 ? `${k}x${v}` : k)).join(' ')}`);
    for (const c of d.comments) lines.push(`  comment       ${c}`);
    if (d.packetError) lines.push(`  packets       not indexed: ${d.packetError}`);
    else lines.push(`  packets       ${d.packetCount} (lengths from ${d.packetSource === 'headers' ? 'packet headers' : d.packetSource.toUpperCase()})`);
    if (d.packets) {
      lines.push('', '  tile layer res comp precinct     offset     length');
      for (const p of d.packets) {
        lines.push(
          `  ${String(p.tile).padStart(4)} ${String(p.layer).padStart(5)} ${String(p.resolution).padStart(3)} ${String(p.component).padStart(4)} ${String(p.precinct).padStart(8)} ${String(p.offset).padStart(10)} ${String(p.length).padStart(10)}`,
        );
      }
    }
  }
  return lines.join('\n');
}

export function formatArchiveIndex(r: ArchiveIndexResult): string {
  const lines = [
    `indexed ${r.indexed} of ${r.files} files under ${r.root} in ${r.seconds.toFixed(2)} s (${r.fresh} cache files were fresh)`,
    `${r.codestreams} codestreams, ${r.packets} packets, ${r.indexBytes} bytes of packet tables; cache in ${r.cacheDir}`,
  ];
  for (const f of r.failed) lines.push(`FAILED ${f.file}: [${f.code}] ${f.message}`);
  return lines.join('\n');
}
