import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as j2k from '../jpeg2000/index.js';
import { fixturePath } from './helpers.js';

test('the package entry point exposes the JPEG 2000 layer', () => {
  for (const name of ['readContainer', 'readCodestream', 'buildTileGeometry', 'packetSequence', 'readPacket', 'CodestreamIndex', 'ImageIndex', 'inspectFile', 'indexArchive', 'J2kError']) {
    assert.type((j2k as Record<string, unknown>)[name], 'function', name);
  }
  const report = j2k.inspectFile(fixturePath('movie/movie.jpx'));
  assert.is(report.format, 'jpx');
  assert.is(report.codestreams.length, 3);
  assert.ok(report.codestreams.every((c) => (c.details?.packetCount ?? 0) > 0));
});

test.run();
