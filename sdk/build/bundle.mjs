// Build sdk/js/salon-video.global.js, the script-tag build of salon-video:
// the ES modules of sdk/js bundled into one classic script that defines the
// global `Twilio.Video`, as twilio-video's own twilio-video.min.js does.
// Salon serves it beside the modules, at /sdk/salon-video.global.js.
//
//   sdk/build/bundle            write it
//   sdk/build/bundle --check    exit 1 if the committed file is not what the modules build to
//
// The file is generated and committed (so Salon serves it with no build
// step at run time), and scripts/test checks that it is up to date. esbuild
// is pinned in package-lock.json, so the same modules always build to the
// same bytes. It is not minified: readable, and small enough (about 30 KB gzipped).

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.resolve(here, '../js');
const output = path.join(sdk, 'salon-video.global.js');
const check = process.argv.includes('--check');
const version = JSON.parse(readFileSync(path.join(sdk, 'package.json'), 'utf8')).version;

const result = await build({
  entryPoints: [path.join(sdk, 'salon-video.js')],
  bundle: true,
  format: 'iife',
  // `var Twilio = Twilio || {}; Twilio.Video = …`: another Twilio SDK's
  // global of that name is kept.
  globalName: 'Twilio.Video',
  platform: 'browser',
  target: 'es2022',
  charset: 'utf8',
  legalComments: 'inline',
  write: false,
  banner: {
    js: `// salon-video ${version}: the script-tag build (the global Twilio.Video).\n`
      + '// Generated from the ES modules beside it by sdk/build/bundle; do not edit.',
  },
  // import.meta is empty in a classic script; signaling.js reads
  // document.currentScript instead.
  logOverride: { 'empty-import-meta': 'silent' },
});
const built = result.outputFiles[0].text;

if (check) {
  let committed = '';
  try {
    committed = readFileSync(output, 'utf8');
  } catch {
    // missing: not up to date
  }
  if (committed !== built) {
    console.error(`${path.relative(process.cwd(), output)} is out of date: run sdk/build/bundle and commit the result`);
    process.exit(1);
  }
  console.log(`${path.relative(process.cwd(), output)} is up to date`);
} else {
  writeFileSync(output, built);
  console.log(`wrote ${path.relative(process.cwd(), output)} (${Buffer.byteLength(built)} bytes)`);
}
