import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium fonts-liberation`); never a downloaded browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * A reason to skip browser tests, or false to run them. Only a developer machine
 * without Chromium skips; in CI a missing browser is a failure, so launchBrowser
 * is left to throw.
 */
export function browserSkipReason(): string | false {
  if (existsSync(CHROMIUM_PATH) || process.env.CI) return false;
  return `browser tests skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install -y chromium fonts-liberation, or set CHROMIUM_PATH)`;
}

export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches headless Chromium. Playwright gives each launch a fresh temporary profile and removes it on close. */
export async function launchBrowser(): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`No Chromium at ${CHROMIUM_PATH}: apt-get install -y chromium fonts-liberation`);
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: FLAGS });
  return { browser, close: () => browser.close() };
}

/** A browser context holding the cookies of a `Cookie:` header (as TestServer.signIn returns). */
export async function contextWithCookies(browser: Browser, baseUrl: string, cookieHeader: string): Promise<BrowserContext> {
  const context = await browser.newContext();
  const cookies = cookieHeader.split(';').map((c) => c.trim()).filter(Boolean).map((pair) => {
    const at = pair.indexOf('=');
    return { name: pair.slice(0, at), value: pair.slice(at + 1), url: baseUrl };
  });
  await context.addCookies(cookies);
  return context;
}

/**
 * Collects a page's script errors and console errors into `into`. Chromium also logs
 * every refused request ("Failed to load resource"), which the owner pages' tests
 * provoke on purpose (a wrong password's 401), so those are left out.
 */
export function collectPageErrors(page: Page, into: string[]): void {
  page.on('pageerror', (err) => into.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) into.push(msg.text());
  });
}
