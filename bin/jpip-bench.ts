#!/usr/bin/env node
import { hideBin } from 'yargs/helpers';

const argv = hideBin(process.argv);
if (argv.find((a) => !a.startsWith('-')) === 'serve') {
  // The server's supervisor lives as long as the server: it loads the serve command alone, not
  // the toolkit's other commands and their libraries (image codecs, load generators).
  const [{ register }, { main }, { defaultIo }] = await Promise.all([import('./commands/serve.js'), import('./cli-core.js'), import('./io.js')]);
  await main(argv, defaultIo, [register]);
} else {
  const { main } = await import('./cli.js');
  await main(argv);
}
