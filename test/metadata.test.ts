import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseBoxes, readContainer } from '../jpeg2000/boxes.js';
import { bufferSource } from '../jpeg2000/source.js';
import { metadataBin0, placeholderBox, PHLD_FLAG_CODESTREAM } from '../jpip/metadata.js';
import { fixtureBytes } from './helpers.js';

const meta = suite('metadata-bin 0');

meta('a placeholder holds flags 4, the original box header and the codestream id', () => {
  const header = Uint8Array.of(0, 0, 0x12, 0x34, 0x6a, 0x70, 0x32, 0x63); // jp2c of 0x1234 bytes
  const p = placeholderBox(header, 5);
  assert.is(p.length, 44 + 8);
  const dv = new DataView(p.buffer);
  assert.is(dv.getUint32(0), p.length);
  assert.is(String.fromCharCode(...p.subarray(4, 8)), 'phld');
  assert.is(dv.getUint32(8), PHLD_FLAG_CODESTREAM);
  assert.equal([...p.subarray(20, 28)], [...header]);
  assert.is(dv.getUint32(p.length - 4), 5);
});

for (const file of ['g128-default-jp2.jp2', 'movie/movie.jpx', 'movie/linked.jpx']) {
  meta(`${file}: the file's boxes, codestream boxes replaced by placeholders in order`, () => {
    const bytes = fixtureBytes(file);
    const container = readContainer(bytes, { file });
    const bin = metadataBin0(bufferSource(bytes, file), container);
    const boxes = parseBoxes(bin);
    const want = container.boxes.map((b) => (b.type === 'jp2c' || b.type === 'ftbl' ? 'phld' : b.type));
    assert.equal(boxes.map((b) => b.type), want);
    const ids = boxes.filter((b) => b.type === 'phld').map((b) => new DataView(bin.buffer, bin.byteOffset).getUint32(b.offset + b.length - 4));
    assert.equal(ids, container.codestreams.map((c) => c.index));
    // Every other box is copied byte for byte.
    container.boxes.forEach((b, i) => {
      if (want[i] === 'phld') return;
      const got = boxes[i]!;
      assert.equal([...bin.subarray(got.offset, got.offset + got.length)], [...bytes.subarray(b.offset, b.offset + b.length)]);
    });
  });
}

meta('a raw codestream has an empty metadata-bin 0', () => {
  const bytes = fixtureBytes('g128-default.j2k');
  assert.is(metadataBin0(bufferSource(bytes), readContainer(bytes)).length, 0);
});

meta.run();
