// browser.test.js on a machine whose browser is missing or broken (issue 22): `npm test` used to hang
// there, the static servers its `before` hook had started left open after the launch failed. It is run
// here in a node of its own with CHROMIUM_PATH pointing at no browser, then at one that cannot start
// (/bin/false), and must end within a minute either way: skipped, saying why, or failed at once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const LIMIT_MS = 60_000; // the suite ends in about a second either way; the old one never ended

function browserTest(chromiumPath) {
  // Run directly (not `node --test`): the tests run in this one process, which the limit kills whole.
  const { NODE_TEST_CONTEXT, ...env } = process.env; // set by `node --test`: the child would report in its wire format
  const run = spawnSync(process.execPath, ['--test-reporter=spec', join(HERE, 'browser.test.js')], {
    env: { ...env, CHROMIUM_PATH: chromiumPath },
    encoding: 'utf8',
    timeout: LIMIT_MS,
    killSignal: 'SIGKILL',
  });
  assert.equal(run.signal, null, `still running after ${LIMIT_MS / 1000} s:\n${run.stdout}${run.stderr}`);
  return { status: run.status, output: run.stdout + run.stderr };
}

test('without a browser the browser test is skipped, saying why, and ends', () => {
  const { status, output } = browserTest('/nonexistent/chromium');
  assert.equal(status, 0, output);
  assert.match(output, /the demo page in headless Chromium .*# no Chromium at \/nonexistent\/chromium: apt-get install -y chromium/);
  assert.match(output, /ℹ pass 0/);
});

test('a browser that cannot start fails the browser test at once, and it ends', () => {
  const { status, output } = browserTest('/bin/false');
  assert.equal(status, 1, output);
  assert.match(output, /✖ the demo page in headless Chromium/);
  assert.match(output, /launchPersistentContext/);
});
