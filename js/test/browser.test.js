// The demo page in real headless Chromium (the system's, from Debian), served from 127.0.0.1 with
// the real onnxruntime-web WebAssembly: real MNIST test digits drawn through the page and a real
// PTB sentence typed into it give the Python runtime's predictions (within 1e-4). Then once more
// cross-origin isolated with 2 threads. Needs Chromium: CI installs it (see .ci/run); without it the
// suite is skipped, saying why, and a browser that fails to start fails it at once, closing the servers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromiumMissing, launch } from './browser.js';
import { assertClose, fixture } from './helpers.js';
import { serve } from './static-server.js';

const clf = fixture('clf');
const lm = fixture('lm');
const PAGE = '/demo/?digits=../test/fixtures/clf.onnx&words=../test/fixtures/lm.onnx&rowDelay=0';

async function openPage(context, server, query = '') {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url + PAGE + query);
  const ready = await page.evaluate(() => window.rnnedgeDemo.ready);
  const pageErrors = await page.evaluate(() => window.rnnedgeDemo.errors);
  assert.deepEqual([...errors, ...pageErrors], []);
  return { page, ready };
}

function digit(i) {
  const [, rows, f] = clf.cases.images.dims;
  return clf.cases.images.data.slice(i * rows * f, (i + 1) * rows * f);
}

async function checkDigits(page) {
  for (const [i, want] of clf.cases.stream_rows.entries()) {
    const got = await page.evaluate((pixels) => window.rnnedgeDemo.showDigit(pixels), digit(i));
    assert.equal(got.rows.length, 28);
    for (let t = 0; t < 28; t++) assertClose(got.rows[t], want[t], `digit ${i}, after row ${t + 1}`);
    const last = want[27];
    const label = clf.metadata.labels[last.indexOf(Math.max(...last))];
    assert.equal(await page.locator('#answer').textContent(), label);
    assert.equal(await page.locator('#rows div').count(), 28);
  }
}

describe('the demo page in headless Chromium', { skip: chromiumMissing() ?? false }, () => {
  let browser;
  let server;
  let isolatedServer;
  before(async () => {
    // ForceEagerMeasureMemory: performance.measureUserAgentSpecificMemory() answers at once, not at the next GC.
    const extraArgs = ['--enable-blink-features=ForceEagerMeasureMemory'];
    const started = await Promise.allSettled([launch({ extraArgs }), serve(), serve({ isolated: true })]);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      // What did start is closed here: an open server would keep node running after the failure.
      await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.close() : null)));
      throw failed.reason;
    }
    [browser, server, isolatedServer] = started.map((s) => s.value);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await isolatedServer?.close();
  });

  test("MNIST test digits drawn through the page give the Python runtime's prediction after every row", async () => {
    const { page, ready } = await openPage(browser.context, server);
    assert.deepEqual(ready, { digits: true, words: true, threads: 1 });
    await checkDigits(page);
    const timings = await page.evaluate(() => window.rnnedgeDemo.timings);
    assert.ok(timings.navigationToFirstPrediction > 0);
    await page.close();
  });

  test('a digit drawn with the mouse is read row by row', async () => {
    const { page } = await openPage(browser.context, server);
    const box = await page.locator('#pad').boundingBox();
    await page.mouse.move(box.x + 140, box.y + 50);
    await page.mouse.down();
    for (let y = 50; y <= 230; y += 10) await page.mouse.move(box.x + 140 + (y - 50) / 30, box.y + y);
    await page.mouse.up();
    await page.waitForFunction(() => window.rnnedgeDemo.digits?.rows.length === 28);
    const { pixels, answer } = await page.evaluate(() => window.rnnedgeDemo.digits);
    assert.ok(pixels.filter((v) => v > 0).length > 20, 'the stroke reached the model');
    assert.ok(clf.metadata.labels.includes(answer));
    await page.click('#clear');
    assert.equal(await page.locator('#answer').textContent(), '–');
    await page.close();
  });

  test("a PTB sentence typed word by word gives the Python runtime's next-word probabilities and suggestions", async () => {
    const { page } = await openPage(browser.context, server);
    const { words, steps } = lm.cases.sentence;
    const check = async (k) => {
      await page.evaluate(() => window.rnnedgeDemo.settled());
      const shown = await page.evaluate(() => window.rnnedgeDemo.words);
      assert.deepEqual(shown.words, words.slice(0, k));
      assertClose(shown.probs, steps[k].probs, `after ${k} word(s)`);
      const listed = await page.locator('#suggestions li').evaluateAll((lis) => lis.map((li) => li.dataset.word));
      assert.deepEqual(listed, steps[k].top, `suggestions after ${k} word(s)`);
    };
    await check(0); // the start of a sentence, before any key
    const input = page.locator('#text');
    for (const [k, word] of words.entries()) {
      await input.pressSequentially(`${word} `);
      await check(k + 1);
    }
    await page.close();
  });

  test('a page that loads and disposes a model in a loop does not grow', async () => {
    // Cross-origin isolated: performance.measureUserAgentSpecificMemory() counts the JavaScript heap and
    // the WebAssembly memory. Without dispose() each load of this 2.7 MB model adds about 4.7 MB.
    const { page } = await openPage(browser.context, isolatedServer);
    const grown = await page.evaluate(async () => {
      const { load } = await import('../src/index.js');
      const bytes = new Uint8Array(await (await fetch('../test/fixtures/lm.onnx')).arrayBuffer());
      const cycle = async (n) => {
        for (let i = 0; i < n; i++) {
          const model = await load(bytes);
          await model.stream().feed('the company');
          await model.dispose();
        }
        return (await performance.measureUserAgentSpecificMemory()).bytes;
      };
      const warm = await cycle(10);
      const after = await cycle(20);
      return (after - warm) / 2 ** 20;
    });
    assert.ok(grown < 8, `the page grew ${grown.toFixed(1)} MB over 20 loads and disposals`);
    await page.close();
  });

  test('a word model the server does not have: the page says which file to put where, and the digits run', async () => {
    // What a first run from the README gives: the digits' file copied, no language model in demo/models/.
    const page = await browser.context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/demo/?digits=../test/fixtures/clf.onnx&words=models/absent.onnx&rowDelay=0`);
    assert.deepEqual(await page.evaluate(() => window.rnnedgeDemo.ready), { digits: true, words: false, threads: 1 });
    assert.deepEqual(await page.evaluate(() => [window.rnnedgeDemo.errors, window.rnnedgeDemo.missing]), [[], ['words']]);
    assert.deepEqual(pageErrors, []);
    const note = await page.locator('#words .missing-note').textContent();
    for (const part of ['No model at models/absent.onnx (HTTP 404)', 'js/demo/models/ptb-small.onnx', '?words=URL']) {
      assert.ok(note.includes(part), `${JSON.stringify(part)} not in the note: ${note}`);
    }
    assert.match(await page.locator('#status').textContent(), /^ready in \d+ ms \(no words model: see below\)$/);
    await checkDigits(page);
    await page.close();
  });

  test('cross-origin isolated (COOP/COEP), with 2 threads: the same answers', async () => {
    const { page, ready } = await openPage(browser.context, isolatedServer, '&threads=2');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.deepEqual(ready, { digits: true, words: true, threads: 2 });
    await checkDigits(page);
    await page.close();
  });
});
