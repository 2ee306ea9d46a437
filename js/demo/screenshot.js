// Screenshot of the demo page for the README (docs/js-demo.png): a real MNIST test digit read row by
// row, and a sentence typed word by word. Needs models in demo/models/ (see the README) and Chromium.
//   node demo/screenshot.js [out.png]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../test/browser.js';
import { serve } from '../test/static-server.js';

const JS = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(JS, '..', 'docs', 'js-demo.png');
const images = JSON.parse(readFileSync(join(JS, 'test', 'fixtures', 'clf.json'), 'utf8')).cases.images; // real MNIST test digits
const server = await serve();
const browser = await launch();
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1180, height: 600 });
  await page.goto(`${server.url}/demo/?rowDelay=0`);
  await page.evaluate(() => window.rnnedgeDemo.ready);
  const digit = images.data.slice(0, 28 * 28);
  await page.evaluate((pixels) => window.rnnedgeDemo.showDigit(pixels), digit);
  await page.locator('#text').pressSequentially('the stock market ');
  await page.evaluate(() => window.rnnedgeDemo.settled());
  await page.locator('#text').blur();
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1180, height: 560 } });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
}
