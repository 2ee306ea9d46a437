// Headless Chromium from the system (Debian's /usr/bin/chromium; nothing is downloaded), driven by
// playwright-core. Used by the browser test, the benchmarks and the demo screenshot.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why Chromium cannot run here (no file at CHROMIUM), or null when it is there. */
export function chromiumMissing() {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`;
}

/** Launch headless Chromium with a fresh profile (and `extraArgs`); resolves to {context, close()}. */
export async function launch({ extraArgs = [] } = {}) {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const profile = mkdtempSync(join(tmpdir(), 'rnnedge-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        ...extraArgs,
      ],
      viewport: { width: 1180, height: 720 },
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true }); // a browser that did not start leaves no profile
    throw e;
  }
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
