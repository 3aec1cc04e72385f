import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readContainer } from '../jpeg2000/boxes.js';
import { readCodestream } from '../jpeg2000/codestream.js';
import { CodestreamIndex } from '../jpeg2000/packet-index.js';
import { MARKER } from '../jpeg2000/markers.js';
import { bufferSource } from '../jpeg2000/source.js';
import { encodePacketLength, rewritePacketMarkers, type PacketMarkers } from '../fixtures-gen/packet-markers.js';
import { findTool, runTool } from '../fixtures-gen/opj.js';
import { fixtureBytes, fixtures } from './helpers.js';

const pm = suite('packet-length markers rewritten');

function rawCodestream(file: string): Uint8Array {
  const bytes = fixtureBytes(file);
  const ref = readContainer(bytes, { file }).codestreams[0]!;
  return bytes.slice(ref.offset, ref.offset + ref.length);
}

/** Every packet's bytes, tile by tile, in codestream order. */
function packets(cs: Uint8Array, source?: 'plt' | 'plm' | 'headers'): { source: string; packets: string[] } {
  const src = bufferSource(cs);
  const ix = new CodestreamIndex(src, readCodestream(src), source ? { source } : {});
  const out: string[] = [];
  for (let t = 0; t < ix.numTiles; t++) {
    const ti = ix.ensureTile(t);
    for (let k = 0; k < ti.known; k++) out.push(Buffer.from(cs.subarray(ti.offsets[k]!, ti.offsets[k]! + ti.lengths[k]!)).toString('hex'));
  }
  return { source: ix.lengthSource, packets: out };
}

pm('packet lengths are coded 7 bits a byte, high bit on all but the last', () => {
  const out: number[] = [];
  for (const v of [0, 127, 128, 300, 2 ** 21]) encodePacketLength(v, out);
  assert.equal(out, [0x00, 0x7f, 0x81, 0x00, 0x82, 0x2c, 0x81, 0x80, 0x80, 0x00]);
});

for (const f of fixtures()) {
  pm(`${f.name}: PLT, PLM and no markers give the same packets`, () => {
    const original = rawCodestream(f.file);
    const want = packets(original, 'headers').packets;
    const modes: [PacketMarkers, string][] = [
      ['plt', 'plt'],
      ['plm', 'plm'],
      ['none', 'headers'],
    ];
    for (const [mode, source] of modes) {
      let rewritten: Uint8Array;
      try {
        rewritten = rewritePacketMarkers(original, mode, f.file);
      } catch (e) {
        // PLM holds at most 255 bytes of lengths per tile-part: big tile-parts cannot use it.
        if (mode === 'plm' && /255 bytes/.test((e as Error).message)) continue;
        throw e;
      }
      const got = packets(rewritten);
      assert.is(got.source, source, mode);
      assert.equal(got.packets, want, `${mode}: same packets`);
      const cs = readCodestream(bufferSource(rewritten));
      const hasPlt = cs.tileParts.some((tp) => tp.segments.some((s) => s.marker === MARKER.PLT));
      assert.is(hasPlt, mode === 'plt');
      assert.is(cs.main.plm.length > 0, mode === 'plm');
      assert.is(cs.main.tlm.length, 0, 'TLM dropped');
    }
  });
}

pm('a rewritten codestream decodes to the same pixels with opj_decompress (when installed)', () => {
  if (!findTool('opj_decompress')) {
    console.log('  (skipped: opj_decompress not installed; apt-get install libopenjp2-tools)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jpip-pm-'));
  try {
    for (const f of fixtures().filter((x) => !x.args.includes('-PLT')).slice(0, 3)) {
      const original = rawCodestream(f.file);
      const outs: Buffer[] = [];
      for (const [i, cs] of [original, rewritePacketMarkers(original, 'plt'), rewritePacketMarkers(original, 'plm')].entries()) {
        const input = join(dir, `${f.name}-${i}.j2k`);
        const output = join(dir, `${f.name}-${i}.raw`);
        writeFileSync(input, cs);
        runTool('opj_decompress', ['-i', input, '-o', output]);
        outs.push(readFileSync(output));
      }
      assert.ok(outs[0]!.equals(outs[1]!), `${f.name}: PLT version decodes the same`);
      assert.ok(outs[0]!.equals(outs[2]!), `${f.name}: PLM version decodes the same`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

pm.run();
