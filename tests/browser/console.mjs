#!/usr/bin/env node
// Browser test of the hub's web console (services/hub/console), driven with
// playwright-core against Debian's Chromium (CHROMIUM, else /usr/bin/chromium):
//
//   node tests/browser/console.mjs <hubBaseUrl> <bearerToken> <screenshotDir> [<calculatorUrl>]
//
// Signs in with the bearer token, connects the configured server
// `calculator`, calls its tool `add` (2 + 40 = 42), reloads the page and finds
// the same client session with `calculator` still connected and its tools
// listed, then calls `add` again (1 + 2 = 3); connects the configured server
// `everything`, gets a prompt and reads a resource; with <calculatorUrl>,
// connects it by URL as a 2026-07-28 (stateless) server through the URL form
// and calls its `add` (5 + 6 = 11). Each step saves a screenshot
// (<screenshotDir>/NN-<step>.png) and prints one JSON line to stdout; any
// console error, uncaught page error, CSP violation or failed request of the
// page fails the step. Exits 0 when every step passed; otherwise prints the
// failed step and the page's text to stderr and exits 1. The test hooks it uses
// are listed at the top of services/hub/console/app.js.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 15_000;

const [baseUrl, token, screenshotDir, calculatorUrl] = process.argv.slice(2);
if (!baseUrl || !token || !screenshotDir) {
  console.error('usage: node tests/browser/console.mjs <hubBaseUrl> <bearerToken> <screenshotDir>');
  process.exit(2);
}
const base = baseUrl.replace(/\/+$/, '');
await mkdir(screenshotDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
// A new context: a fresh profile (no storage, no cookies) for this run.
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
context.setDefaultTimeout(STEP_TIMEOUT_MS);
// CSP violations also reach the console as errors; this makes sure of it.
await context.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
  });
});
const page = await context.newPage();

const problems = [];
page.on('console', (msg) => {
  if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
});
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
page.on('requestfailed', (req) => problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
page.on('response', (res) => {
  if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.request().method()} ${res.url()}`);
});

let stepNumber = 0;

/** A full-page screenshot. Chromium leaves a stale scroll offset after one
 * (the next focus change jumps the page, so a click's mouseup can land beside
 * its mousedown): a real scroll afterwards clears it. */
async function screenshot(file) {
  await page.screenshot({ path: file, fullPage: true });
  await page.evaluate(() => window.scrollTo(0, 0));
}

/** Runs one step within STEP_TIMEOUT_MS, then screenshots it and reports it. */
async function step(name, action) {
  stepNumber += 1;
  const file = path.join(screenshotDir, `${String(stepNumber).padStart(2, '0')}-${name}.png`);
  const started = Date.now();
  let timer;
  try {
    await Promise.race([
      action(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
      }),
    ]);
    if (problems.length > 0) throw new Error(`the page reported problems:\n  ${problems.join('\n  ')}`);
    await screenshot(file);
    console.log(JSON.stringify({ step: name, ok: true, ms: Date.now() - started, screenshot: file }));
  } catch (err) {
    const failedShot = file.replace(/\.png$/, '-failed.png');
    await page.screenshot({ path: failedShot, fullPage: true, timeout: 5_000 }).catch(() => {});
    const text = await page.locator('body').innerText({ timeout: 5_000 }).catch(() => '(the page text could not be read)');
    console.log(JSON.stringify({ step: name, ok: false, ms: Date.now() - started, error: err.message, screenshot: failedShot }));
    console.error(`step ${stepNumber} "${name}" failed: ${err.message}\n--- page text ---\n${text}\n--- end of page text ---`);
    await browser.close().catch(() => {});
    process.exit(1);
  } finally {
    clearTimeout(timer);
  }
}

/** Fails the step when #error shows an error. */
async function noErrorShown() {
  const error = (await page.locator('#error').textContent())?.trim();
  if (error) throw new Error(`the console shows an error: ${error}`);
}

/** Waits until `selector` is visible, or fails as soon as #error shows an
 * error (a refused token, a failed connect). */
async function shown(selector) {
  await page.waitForFunction((sel) => {
    if (document.querySelector('#error')?.textContent.trim()) return true;
    return document.querySelector(sel)?.checkVisibility() ?? false;
  }, selector);
  await noErrorShown();
}

/** Opens <server>/add and fills its generated form. */
async function fillAdd(a, b, server = 'calculator') {
  await page.locator(`[data-testid="tool-${server}-add"]`).click();
  const form = page.locator('#tool-form');
  await form.locator('#arg-a').fill(String(a));
  await form.locator('#arg-b').fill(String(b));
}

/** Calls the tool and waits for `expected` as a whole word in one of the
 * result's text items. */
async function callFor(expected) {
  await page.locator('#tool-form #call-tool').click();
  const result = page.locator('#tool-result');
  await page.locator('#tool-result[data-state="done"], #tool-result[data-state="error"]').waitFor();
  const state = await result.getAttribute('data-state');
  const text = await result.innerText();
  if (state !== 'done' || (await result.getAttribute('class'))?.includes('is-error')) {
    throw new Error(`the call failed: ${text}`);
  }
  const items = await page.locator('#tool-result [data-testid="tool-result-text"]').allInnerTexts();
  if (!items.some((t) => new RegExp(`\\b${expected}\\b`).test(t))) {
    throw new Error(`expected ${expected} in the tool result, got: ${text}`);
  }
  await noErrorShown();
}

let sessionId;

await step('signed-in', async () => {
  await page.goto(`${base}/console`, { waitUntil: 'load' });
  await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
  await page.locator('#scheme-bearer').check();
  await page.locator('#token').fill(token);
  await page.locator('#sign-in').click();
  await shown('#session-id:not(:empty)');
  sessionId = await page.locator('#session-id').textContent();
  if (!/^cs_[0-9a-f]{32}$/.test(sessionId)) throw new Error(`unexpected client session id ${sessionId}`);
  await shown('[data-testid="connect-calculator"]');
});

await step('connected', async () => {
  await page.locator('[data-testid="connect-calculator"]').click();
  await shown('#connections [data-testid="connection-calculator"]');
  await shown('[data-testid="tool-calculator-add"]');
});

await step('tool-form', () => fillAdd(2, 40));
await step('tool-result', () => callFor(42));

await step('reloaded', async () => {
  await page.reload({ waitUntil: 'load' });
  await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
  await noErrorShown();
  if (await page.locator('#sign-in-section').isVisible()) throw new Error('the reload asked to sign in again');
  const id = await page.locator('#session-id').textContent();
  if (id !== sessionId) throw new Error(`the client session changed over the reload: ${sessionId} → ${id}`);
  await shown('#connections [data-testid="connection-calculator"]');
  await shown('[data-testid="tool-calculator-add"]');
});

await step('tool-form-after-reload', () => fillAdd(1, 2));
await step('tool-result-after-reload', () => callFor(3));

// A second server with prompts and resources (services/everything): get a
// prompt through its generated form, read a resource.
await step('connected-everything', async () => {
  await page.locator('[data-testid="connect-everything"]').click();
  await shown('#connections [data-testid="connection-everything"]');
  await shown('[data-testid="prompt-everything-test_prompt_with_arguments"]');
  await shown('[data-testid="resource-everything-static-text"]');
});

await step('prompt-result', async () => {
  await page.locator('[data-testid="prompt-everything-test_prompt_with_arguments"]').click();
  const form = page.locator('#prompt-form');
  await form.locator('#prompt-arg-arg1').fill('paris');
  await form.locator('#prompt-arg-arg2').fill('hello');
  await form.locator('#get-prompt').click();
  await page.locator('#prompt-result[data-state="done"], #prompt-result[data-state="error"]').waitFor();
  const text = await page.locator('#prompt-result').innerText();
  if (!text.includes("arg1='paris', arg2='hello'")) throw new Error(`unexpected prompt: ${text}`);
  await noErrorShown();
});

await step('resource-result', async () => {
  await page.locator('[data-testid="resource-everything-static-text"]').click();
  await page.locator('#resource-result[data-state="done"], #resource-result[data-state="error"]').waitFor();
  const text = await page.locator('#resource-result').innerText();
  if (!text.includes('This is the content of the static text resource.')) {
    throw new Error(`unexpected resource: ${text}`);
  }
  await noErrorShown();
});

if (calculatorUrl) {
  await step('connected-url-stateless', async () => {
    await page.locator('#url-server').fill('calc-2026');
    await page.locator('#url').fill(calculatorUrl);
    await page.locator('#url-transport').selectOption('stateless');
    await page.locator('#connect-url').click();
    await shown('#connections [data-testid="connection-calc-2026"]');
    await shown('[data-testid="tool-calc-2026-add"]');
  });
  await step('tool-result-url-stateless', async () => {
    await fillAdd(5, 6, 'calc-2026');
    await callFor(11);
  });
}

await browser.close();
console.log(JSON.stringify({ ok: true, steps: stepNumber, clientSession: sessionId }));
